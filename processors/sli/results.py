"""What analysing batches produced, in a form that can cross a process boundary.

The analyzer turns a batch's task events into one `GroupResult` per (task, segment, minute):
everything a series needs to fold them in (count row, histogram row, exponential-histogram
counts, durations for the latency sketch, users), computed with the whole batch's numpy work
done at once. An `AnalysisResult` gathers the groups of one or more batches with the counters
that go with them. `SliState.apply` folds a result into the state; it is the one merge path,
whether the analysis ran in the same process (the result then carries the series it resolved)
or in an analysis worker process (the result is pickled, and the state resolves each group's
series by task name and segment values).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from .explain_delta import ExplainDelta, merge_deltas
from .propagation import EdgeReport

__all__ = ["AnalysisResult", "GroupResult", "TaskCounters", "add_counts"]


SeriesT = TypeVar("SeriesT")
"""The series a result was resolved to (`Series` for the SLI state; this module never reads it)."""


@dataclass(slots=True)
class GroupResult(Generic[SeriesT]):
    """One batch's events of one series (task x segment values) in one minute, ready to fold."""

    task: str
    values: tuple[str, ...]
    minute: int
    row: npt.NDArray[np.float64]
    """Count row: total, bad, revenue, events within each latency threshold, then events and bad
    events without a customer (`aggregates.row_width`)."""
    hist: npt.NDArray[np.int64]
    """Events per latency-histogram bucket of the task's series."""
    sum_s: float
    """Sum of the events' durations in seconds."""
    expo: tuple[int, npt.NDArray[np.int64] | None, int]
    """Exponential-histogram counts: (lowest bucket index, counts from it on, zero durations)."""
    durations_ms: npt.NDArray[np.float64]
    """Each event's duration in milliseconds (for the latency sketch)."""
    users: set[str]
    """Distinct users (decoded; never empty strings)."""
    bad_users: dict[str, int]
    """Bad events per impacted user."""
    top_keys: dict[str, int]
    """Bad events per impacted customer as the heavy-hitters sketch lists them (pseudonyms, or
    the not-a-pseudonym stand-in)."""
    series: SeriesT | None = None
    """The series the analyzer resolved, when it analysed into this same state; ``None`` when
    the result comes from another process (the state then resolves it by ``task`` and ``values``)."""

    def __getstate__(self) -> tuple[object, ...]:
        # Pickled without the resolved series (it belongs to the process that analysed), and with
        # the arrays as raw bytes: pickling a numpy array costs about 5 µs, its bytes a tenth.
        low, counts, zeros = self.expo
        return (
            self.task,
            self.values,
            self.minute,
            self.row.tobytes(),
            self.hist.tobytes(),
            self.sum_s,
            (low, None if counts is None else counts.tobytes(), zeros),
            self.durations_ms.tobytes(),
            self.users,
            self.bad_users,
            self.top_keys,
        )

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        # The arrays are read-only views of the pickled bytes (folding only reads them), but for the
        # durations, which the latency sketch takes only as a writable array.
        (task, values, minute, row, hist, sum_s, (low, counts, zeros), durations, users, bad, top) = state
        self.task, self.values, self.minute = task, values, minute
        self.row = np.frombuffer(row, dtype=np.float64)
        self.hist = np.frombuffer(hist, dtype=np.int64)
        self.sum_s = sum_s
        self.expo = (low, None if counts is None else np.frombuffer(counts, dtype=np.int64), zeros)
        self.durations_ms = np.frombuffer(durations, dtype=np.float64).copy()
        self.users, self.bad_users, self.top_keys = users, bad, top
        self.series = None

    @property
    def events(self) -> int:
        return int(self.row[0])


def add_counts(first: tuple[int, int, int], second: tuple[int, int, int]) -> tuple[int, int, int]:
    """Two attribution counts added column by column."""
    return (first[0] + second[0], first[1] + second[1], first[2] + second[2])


@dataclass(slots=True)
class TaskCounters:
    """Per-task counters a batch moved: events whose end time was clamped."""

    late_clamped: int = 0
    future_clamped: int = 0


@dataclass(slots=True)
class AnalysisResult:
    """What analysing one or more batches adds to the state (see `SliState.apply`)."""

    groups: list[GroupResult[Any]] = field(default_factory=list)
    counters: dict[str, TaskCounters] = field(default_factory=dict)
    """By task name; only tasks whose counters moved."""
    untracked: int = 0
    """Task events of tasks not tracked (beyond ``max_tasks``)."""
    lags: dict[tuple[str, str, int], npt.NDArray[np.int64]] = field(default_factory=dict)
    """Lag bucket counts (``sli.lag``) by (task, service, minute of arrival)."""
    attribution: dict[tuple[str, str, str, int], tuple[int, int, int]] = field(default_factory=dict)
    """Events with a customer, without one, and bad without one (``sli.attribution``), by
    (task, service, route, minute of arrival)."""
    edges: EdgeReport = field(default_factory=EdgeReport)
    """Children with and without the customer per service edge (``sli.propagation``)."""
    synthetic: AnalysisResult | None = None
    """The synthetic task events' result, for the synthetic state (``sli.synthetic``); ``None``
    when there were none. The fields above never count a synthetic event."""
    explain: dict[tuple[str, int], ExplainDelta] = field(default_factory=dict)
    """Explain counts (``sli.explain``) by (task, minute): see `explain_tracking`."""

    def counters_of(self, task: str) -> TaskCounters:
        """``task``'s counters in this result, created at zero when absent."""
        counters = self.counters.get(task)
        if counters is None:
            counters = self.counters[task] = TaskCounters()
        return counters

    def extend(self, other: AnalysisResult) -> None:
        """Add ``other``'s groups and counters to this result."""
        self.groups.extend(other.groups)
        for task, counters in other.counters.items():
            mine = self.counters_of(task)
            mine.late_clamped += counters.late_clamped
            mine.future_clamped += counters.future_clamped
        self.untracked += other.untracked
        for key, counts in other.lags.items():
            held = self.lags.get(key)
            self.lags[key] = counts.copy() if held is None else held + counts
        for place, attributed in other.attribution.items():
            before = self.attribution.get(place)
            self.attribution[place] = attributed if before is None else add_counts(before, attributed)
        self.edges.add(other.edges)
        if other.synthetic is not None:
            if self.synthetic is None:
                self.synthetic = AnalysisResult()
            self.synthetic.extend(other.synthetic)
        merge_deltas(self.explain, other.explain)

    @property
    def events(self) -> int:
        return sum(group.events for group in self.groups)
