"""What the SLI engine folded since it was last asked: the delta shape other state merges in.

The analyzer hands every group it folds (one series of a task, one minute) to a `DeltaSink`.
`DeltaBuffer` is the sink that keeps them, merged per (task, series values, minute), until
`take` hands them over, e.g. to the shared-state writer, which applies them to Redis. A delta
holds what the state's buckets are made of and nothing derived: the count row (total, bad,
revenue, events within each latency threshold), the exponential-histogram counts of the
durations, the distinct users and impacted users, and bad events per impacted customer.

The buffer is bounded in bytes (an estimate of what it holds); a group that does not fit is
not kept and its events are counted in ``dropped_events`` (the caller reports them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["DeltaBuffer", "DeltaSink", "SeriesDelta", "TaskDelta"]

_BASE_BYTES = 240
_PER_USER_BYTES = 90
_PER_PART_BYTES = 130


class DeltaSink(Protocol):
    """Receives each folded group (see `DeltaBuffer.record` for the arguments)."""

    def record(
        self,
        task: str,
        values: tuple[str, ...],
        minute: int,
        row: npt.NDArray[np.float64],
        expo: tuple[int, npt.NDArray[np.int64] | None, int],
        users: Iterable[str],
        bad_users: Iterable[str],
        top_keys: Mapping[str, int],
    ) -> None: ...


@dataclass(slots=True)
class SeriesDelta:
    """One series' events in one minute since the last `take`."""

    row: npt.NDArray[np.float64]
    """Count row: total, bad, revenue, events within each latency threshold, then events and bad
    events without a customer (`aggregates.row_width`)."""
    expo_parts: list[tuple[int, npt.NDArray[np.int64]]] = field(default_factory=list)
    """Exponential-histogram counts as recorded: (lowest bucket index, counts from it on);
    merged only when read (`expo`), once per flush rather than once per batch."""
    zero_durations: int = 0
    users: set[str] = field(default_factory=set)
    bad_users: set[str] = field(default_factory=set)
    top: dict[str, int] = field(default_factory=dict)
    """Bad events per impacted customer (pseudonyms, or the not-a-pseudonym stand-in)."""

    @property
    def events(self) -> int:
        return int(self.row[0])

    def expo(self) -> dict[int, int]:
        """Exponential-histogram bucket index (scale `EXPO_SCALE`) → durations in it."""
        parts = self.expo_parts
        if not parts:
            return {}
        starts = [start for start, _ in parts]
        low = min(starts)
        high = max(start + counts.size for start, counts in parts)
        total = np.zeros(high - low, dtype=np.int64)
        for start, counts in parts:
            window = total[start - low : start - low + counts.size]
            window += counts
        if len(self.expo_parts) > 1:
            self.expo_parts = [(low, total)]
        return {low + offset: int(total[offset]) for offset in np.flatnonzero(total).tolist()}


@dataclass(slots=True)
class TaskDelta:
    """One task's deltas: ``series[values][minute]``, and its counters' increments."""

    series: dict[tuple[str, ...], dict[int, SeriesDelta]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    """``late_clamped``, ``future_clamped``, ``overflow_events`` increments (absent: zero)."""

    @property
    def events(self) -> int:
        return sum(delta.events for minutes in self.series.values() for delta in minutes.values())


class DeltaBuffer:
    """Deltas by task since the last `take`, at most ``max_bytes`` (estimated). Event-loop only."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.dropped_events = 0
        """Events not kept because the buffer was full (cumulative)."""
        self._tasks: dict[str, TaskDelta] = {}

    def record(
        self,
        task: str,
        values: tuple[str, ...],
        minute: int,
        row: npt.NDArray[np.float64],
        expo: tuple[int, npt.NDArray[np.int64] | None, int],
        users: Iterable[str],
        bad_users: Iterable[str],
        top_keys: Mapping[str, int],
    ) -> None:
        """Merge one folded group: its count ``row``, exponential-histogram counts ``expo``
        (lowest index, counts from it on, zero durations), users, impacted users and bad events
        per customer."""
        low, counts, zeros = expo
        if not isinstance(users, (set, frozenset)):
            users = set(users)
        if not isinstance(bad_users, (set, frozenset)):
            bad_users = set(bad_users)
        task_delta = self._tasks.get(task)
        if task_delta is None:
            task_delta = self._tasks[task] = TaskDelta()
        minutes = task_delta.series.setdefault(values, {})
        delta = minutes.get(minute)
        # The most this group can add: checked before anything is merged, so the bound holds.
        worst = (0 if counts is None else _PER_PART_BYTES + 8 * counts.size) + _PER_USER_BYTES * (
            len(users) + len(bad_users) + len(top_keys)
        )
        if delta is None:
            worst += _BASE_BYTES + 8 * row.size
        if self.bytes + worst > self.max_bytes:
            self.dropped_events += int(row[0])
            return
        grown = 0
        if delta is None:
            grown = _BASE_BYTES + 8 * row.size
            delta = minutes[minute] = SeriesDelta(row.copy())
        else:
            delta.row += row
        delta.zero_durations += zeros
        if counts is not None:
            delta.expo_parts.append((low, counts.copy()))  # a copy: the batch's table is large
            grown += _PER_PART_BYTES + 8 * counts.size
        before = len(delta.users) + len(delta.bad_users) + len(delta.top)
        delta.users.update(users)
        delta.bad_users.update(bad_users)
        top = delta.top
        for key, count in top_keys.items():
            top[key] = top.get(key, 0) + count
        grown += _PER_USER_BYTES * (len(delta.users) + len(delta.bad_users) + len(delta.top) - before)
        self.bytes += grown

    def count(self, task: str, counter: str, increment: int) -> None:
        """Add ``increment`` to one of a task's counters (``late_clamped`` ...)."""
        if increment:
            counters = self._tasks.setdefault(task, TaskDelta()).counters
            counters[counter] = counters.get(counter, 0) + increment

    def take(self) -> dict[str, TaskDelta]:
        """Everything recorded since the last call; the buffer starts empty again."""
        taken, self._tasks = self._tasks, {}
        self.bytes = 0
        return taken
