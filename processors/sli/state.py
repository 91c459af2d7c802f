"""The SLI state: tasks, their series and buckets, per-minute volumes, and the saved counters.

`SliState` is the data the engine derives and the queries read. It owns the methods that change
its shape (`ensure_task`, `new_series`, `overflow_series`, `prune`, `reset`, `rebuild_volumes`),
`apply`, the one way analysis results are folded in (from the analyzer in this process or from an
analysis worker process), and converts itself to and from `StateSnapshot`, the plain record a `StateStore` writes and
reads: the store never sees a `Series`, and the state never sees SQLite.

Everything here runs on the engine's thread (the processor's event loop); nothing is locked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from otel_impact.processors.durations import MINUTE_NS

from .aggregates import ATTRIBUTION_COLUMNS, Series, histogram_bounds
from .attribution import AttributionHistory
from .buckets import Layout
from .config import SliConfig
from .deltas import DeltaSink
from .edges import EdgeHistory
from .explain_tracking import ExplainTracking
from .lag import LagHistory
from .results import AnalysisResult, GroupResult
from .segments import SegmentReader
from .sketches import SketchParams
from .tasks import OVERFLOW, TaskState

__all__ = ["BucketRow", "SeriesRecord", "SliState", "StateError", "StateSnapshot", "TaskRecord"]

logger = logging.getLogger("otel_impact.sli")

BucketRow = tuple[int, int, int, int, bytes]
"""One saved bucket: ``(series id, tier, slot, stamp, bytes)`` (a count row or a sketch cell)."""


class StateError(Exception):
    """Saved state that does not fit this engine's layout (raised while restoring)."""


@dataclass(frozen=True)
class TaskRecord:
    """A task's saved counters."""

    name: str
    overflow_events: int
    late_clamped: int
    future_clamped: int


@dataclass(frozen=True)
class SeriesRecord:
    """One series as saved, without its buckets: identity and cumulative totals (array bytes)."""

    id: int
    task: str
    values: tuple[str, ...]
    created_ns: int
    last_ns: int
    cumulative: bytes
    hist_counts: bytes
    hist_sum_s: float
    expo_offset: int
    expo_counts: bytes
    expo_zero: int


@dataclass(frozen=True)
class StateSnapshot:
    """The state as plain data: counters, every task's counters, series and their buckets.

    From `SliState.take_changes`: the series and buckets changed since the previous one, in
    lists. From `StateStore.load`: every saved series, and every saved bucket in ``counts`` and
    ``sketches``, which are read from the file as they are iterated (so a restore does not hold
    the whole file in memory): iterate them once, before the store's next call.
    """

    coverage_start_ns: int
    untracked_task_events: int
    task_events: int
    tasks: list[TaskRecord]
    series: list[SeriesRecord]
    counts: Iterable[BucketRow]
    sketches: Iterable[BucketRow]


class SliState:
    """Tasks, series and counters derived so far. Built from the config; see the module docstring."""

    def __init__(self, config: SliConfig, *, now_ns: int, with_synthetic: bool = True) -> None:
        self.config = config
        self.synthetic = SliState(config, now_ns=now_ns, with_synthetic=False) if with_synthetic else None
        """The synthetic traffic's own state (same config), which `apply` folds ``result.synthetic``
        into; ``None`` in a synthetic state itself (see ``synthetic``)."""
        self.reader = SegmentReader(config.dimensions)
        self.sketch_params = SketchParams(config.hll_lg_k, config.kll_k, config.top_customers_lg_map)
        self.count_layout = Layout.from_tiers(config.count_tiers)
        self.sketch_layout = Layout.from_tiers(config.sketch_tiers)
        self.overflow_values: tuple[str, ...] = tuple(OVERFLOW for _ in self.reader.names)
        """The segment values of each task's overflow series."""
        self.tasks: dict[str, TaskState] = {}
        self.series_count = 0
        """Series of all tasks, without the overflow series (capped by ``max_series_total``)."""
        self.untracked_task_events = 0
        self.task_events = 0
        self.coverage_start_ns = now_ns
        """Since when this state holds every event (its start, or the restored checkpoint's)."""
        self.touched: set[Series] = set()
        """Series changed since the last `take_changes` (what the next checkpoint writes)."""
        self.lag = LagHistory()
        """How late task spans arrived, per task, service and minute (see ``lag``)."""
        self.attribution = AttributionHistory()
        """Task events with and without a customer, per task, service and route (see ``attribution``)."""
        self.edges = EdgeHistory()
        """Calls that kept or lost the customer, per task and service edge (see ``edges``)."""
        self.unanalysed: dict[int, dict[str, int]] = {}
        """Spans accepted but not analysed, by minute of arrival and reason (see `note_unanalysed`)."""
        self.deltas: DeltaSink | None = None
        """Receives every folded group when set (the shared-state writer's buffer)."""
        self.explain = ExplainTracking(self.sketch_layout, config.explain)
        """Explain counts per task (this processor's events only)."""
        self._next_series_id = 1
        for task in config.tasks:
            self.ensure_task(task.name)

    # -- folding --------------------------------------------------------------------------------

    def apply(self, result: AnalysisResult) -> None:
        """Fold an analysis result in: its groups into their series, its counters into the tasks.

        A group that carries its series (analysed against this state) goes straight to it;
        otherwise its task is found by name (an unknown task is created when ``auto_tasks``
        allows and ``max_tasks`` has room, or its events count as untracked) and its series by
        segment values (new while the caps allow, then the task's overflow series).
        """
        if result.synthetic is not None and self.synthetic is not None:
            self.synthetic.apply(result.synthetic)
        self.untracked_task_events += result.untracked
        for name, counters in result.counters.items():
            counted = self.tasks.get(name)
            if counted is not None:
                counted.late_clamped += counters.late_clamped
                counted.future_clamped += counters.future_clamped
        touched = self.touched
        deltas = self.deltas
        tasks = self.tasks
        events = 0
        for group in result.groups:
            count = int(group.row[0])
            task = tasks.get(group.task)
            series: Series | None = group.series
            if series is None:
                if task is None:
                    task = self._auto_task(group.task)
                if task is None:
                    self.untracked_task_events += count
                    continue
                series = self._series_of(task, group)
            assert task is not None
            series.apply(group)
            if deltas is not None:
                deltas.record(
                    task.name,
                    series.values,
                    group.minute,
                    group.row,
                    group.expo,
                    group.users,
                    group.bad_users,
                    group.top_keys,
                )
            events += count
            task.volume[group.minute] = task.volume.get(group.minute, 0) + count
            if series is task.overflow_series:
                task.overflow_events += count
            touched.add(series)
        self.task_events += events
        # After the groups: a task first seen in another process's result exists by now.
        for (name, service, minute), counts in result.lags.items():
            if name in tasks:
                self.lag.add(name, service, minute, counts)
        for (name, service, route, minute), attributed in result.attribution.items():
            if name in tasks:
                self.attribution.add((name, service, route), minute, attributed)
        self.edges.add_all(result.edges, tasks)
        if result.explain:
            self.explain.apply(result.explain, tasks.__contains__)

    def note_unanalysed(self, received_ns: int, spans: int, reason: str) -> None:
        """Note ``spans`` accepted at ``received_ns`` that were forwarded but never analysed: the
        answers covering that minute are not complete (`unanalysed_in`)."""
        if self.synthetic is not None:
            self.synthetic.note_unanalysed(received_ns, spans, reason)
        minute = received_ns // MINUTE_NS
        reasons = self.unanalysed.get(minute)
        if reasons is None:
            reasons = self.unanalysed[minute] = {}
        reasons[reason] = reasons.get(reason, 0) + spans

    def unanalysed_in(self, start_ns: int, end_ns: int) -> dict[str, int]:
        """Spans not analysed among those that arrived in ``[start_ns, end_ns)``, by reason."""
        first, last = start_ns // MINUTE_NS, (end_ns - 1) // MINUTE_NS
        found: dict[str, int] = {}
        for minute, reasons in self.unanalysed.items():
            if first <= minute <= last:
                for reason, spans in reasons.items():
                    found[reason] = found.get(reason, 0) + spans
        return found

    def _auto_task(self, name: str) -> TaskState | None:
        """A task first seen in another process's result, created if this state may track it."""
        config = self.config
        if config.auto_tasks and len(self.tasks) < config.max_tasks:
            return self.ensure_task(name)
        return None

    def _series_of(self, task: TaskState, group: GroupResult[Any]) -> Series:
        """The series of ``task`` that ``group``'s segment values fold into (created when new)."""
        series = task.series.get(group.values)
        if series is None:
            now = group.minute * MINUTE_NS
            if group.values == self.overflow_values or not self.has_room(task):
                series = self.overflow_series(task, now)
            else:
                series = self.new_series(task, group.values, now)
        return series

    # -- shape ----------------------------------------------------------------------------------

    def ensure_task(self, name: str) -> TaskState:
        """The task named ``name``, created if new (configured tasks, restored tasks, auto tasks)."""
        task = self.tasks.get(name)
        if task is None:
            task = self.tasks[name] = TaskState(name, self.config)
        return task

    def new_series(
        self, task: TaskState, values: tuple[str, ...], created_ns: int, series_id: int | None = None
    ) -> Series:
        """A new series of ``task`` for segment ``values`` (the overflow series for `overflow_values`).

        Does not check the series caps: `overflow_series` is the way past them.
        """
        if series_id is None:
            series_id = self._next_series_id
        self._next_series_id = max(self._next_series_id, series_id + 1)
        series = Series(
            series_id,
            task.name,
            values,
            thresholds_s=task.thresholds_s,
            histogram_bounds_s=histogram_bounds(task.thresholds_s),
            count_layout=self.count_layout,
            sketch_layout=self.sketch_layout,
            sketch_params=self.sketch_params,
            created_ns=created_ns,
        )
        if values == self.overflow_values:
            task.overflow_series = series
        else:
            task.series[values] = series
            self.series_count += 1
        return series

    def has_room(self, task: TaskState) -> bool:
        """Whether ``task`` may get a new series under ``max_series_per_task`` and ``max_series_total``."""
        return len(task.series) < self.config.max_series_per_task and self.series_count < self.config.max_series_total

    def overflow_series(self, task: TaskState, now: int) -> Series:
        """The series that takes ``task``'s new segments past the caps (created, with a warning, once)."""
        if task.overflow_series is None:
            self.new_series(task, self.overflow_values, now)
            logger.warning(
                "task %r reached its series cap (%d per task, %d in total); new segments go to the %s segment",
                task.name,
                self.config.max_series_per_task,
                self.config.max_series_total,
                OVERFLOW,
            )
        assert task.overflow_series is not None
        return task.overflow_series

    def all_series(self, task: TaskState) -> Iterator[Series]:
        """``task``'s series, then its overflow series if any."""
        yield from task.series.values()
        if task.overflow_series is not None:
            yield task.overflow_series

    # -- housekeeping ---------------------------------------------------------------------------

    def prune(self, now_ns: int) -> list[int]:
        """Forget per-minute volumes older than loss detection needs, and series idle past retention.

        Returns the ids of the series dropped (for the store to forget).
        """
        loss = self.config.loss_detection
        lateness_ns = round(self.config.lateness_s * 1e9)
        oldest_minute = (now_ns - lateness_ns) // MINUTE_NS - (loss.window_s + loss.baseline_s) // 60 - 2
        retention = self.count_layout.retention_ns
        dropped: list[int] = []
        self.lag.prune(now_ns)
        self.attribution.prune(now_ns)
        self.edges.prune(now_ns)
        oldest_kept = (now_ns - retention) // MINUTE_NS
        for minute in [m for m in self.unanalysed if m < oldest_kept]:
            del self.unanalysed[minute]
        for task in self.tasks.values():
            for minute in [m for m in task.volume if m < oldest_minute]:
                del task.volume[minute]
            idle = [values for values, series in task.series.items() if series.last_ns < now_ns - retention]
            for values in idle:
                series = task.series.pop(values)
                self.series_count -= 1
                task.raw_keys.clear()
                self.touched.discard(series)
                dropped.append(series.id)
        return dropped

    def reset(self, now_ns: int) -> None:
        """Drop all derived state (a checkpoint that did not restore) and start afresh at ``now_ns``."""
        self.tasks = {}
        self.series_count = 0
        self.untracked_task_events = self.task_events = 0
        self.unanalysed = {}
        self.lag = LagHistory()
        self.attribution = AttributionHistory()
        self.edges = EdgeHistory()
        self.explain = ExplainTracking(self.sketch_layout, self.config.explain)
        self.touched.clear()
        self.coverage_start_ns = now_ns
        for task in self.config.tasks:
            self.ensure_task(task.name)

    def rebuild_volumes(self) -> None:
        """Recompute each task's per-minute volumes from its first count tier (after a restore)."""
        minute_tier_width = self.count_layout.widths_ns[0]
        for task in self.tasks.values():
            task.volume = {}
            for series in self.all_series(task):
                stamps, values = series.counts.stamps[0], series.counts.values[0]
                if stamps is None or values is None:
                    continue
                for stamp, total in zip(stamps.tolist(), values[:, 0].tolist(), strict=True):
                    if stamp >= 0 and total:
                        minute = stamp * minute_tier_width // MINUTE_NS
                        task.volume[minute] = task.volume.get(minute, 0) + int(total)

    def fingerprint(self) -> str:
        """What shapes the saved state; a checkpoint with another fingerprint is not loaded."""
        config = self.config
        parts = [
            ",".join(f"{d.name}={d.attribute or ''}/{d.flag or ''}" for d in config.dimensions),
            ",".join(map(repr, config.latency_thresholds_s)),
            ";".join(
                f"{t.name}:{t.latency_thresholds_s!r}" for t in config.tasks if t.latency_thresholds_s is not None
            ),
            repr(config.count_tiers),
            repr(config.sketch_tiers),
            f"{config.hll_lg_k}/{config.kll_k}/{config.top_customers_lg_map}",
        ]
        return "|".join(parts)

    def approx_bytes(self) -> int:
        """Approximate memory held by all series."""
        return sum(series.approx_bytes() for task in self.tasks.values() for series in self.all_series(task))

    # -- snapshots ------------------------------------------------------------------------------

    def take_changes(self) -> StateSnapshot:
        """What changed since the previous call: counters, every task, touched series, changed buckets.

        Marks everything returned as saved (touched series and dirty buckets are cleared).
        """
        touched, self.touched = self.touched, set()
        counts: list[BucketRow] = []
        sketches: list[BucketRow] = []
        for series in touched:
            counts.extend((series.id, *row) for row in series.counts.take_dirty())
            sketches.extend((series.id, *cell) for cell in series.sketches.take_dirty())
        return StateSnapshot(
            coverage_start_ns=self.coverage_start_ns,
            untracked_task_events=self.untracked_task_events,
            task_events=self.task_events,
            tasks=[
                TaskRecord(t.name, t.overflow_events, t.late_clamped, t.future_clamped) for t in self.tasks.values()
            ],
            series=[_record(series) for series in touched],
            counts=counts,
            sketches=sketches,
        )

    def restore(self, snapshot: StateSnapshot) -> None:
        """Load a full snapshot into this freshly built state.

        Raises `StateError` or ``ValueError`` when the snapshot does not fit the layout (and
        whatever iterating its buckets raises, e.g. a store's read errors); the state is then
        partly filled and must be `reset`.
        """
        self.coverage_start_ns = snapshot.coverage_start_ns
        self.untracked_task_events = snapshot.untracked_task_events
        self.task_events = snapshot.task_events
        for saved in snapshot.tasks:
            task = self.ensure_task(saved.name)
            task.overflow_events, task.late_clamped, task.future_clamped = (
                saved.overflow_events,
                saved.late_clamped,
                saved.future_clamped,
            )
        by_id: dict[int, Series] = {}
        for record in sorted(snapshot.series, key=lambda r: r.id):
            if len(record.values) != len(self.reader.names):
                raise StateError(f"series {record.id} has a segment that does not fit the dimensions")
            series = self.new_series(self.ensure_task(record.task), record.values, record.created_ns, record.id)
            series.last_ns = record.last_ns
            saved_row = np.frombuffer(record.cumulative, dtype=np.float64)
            if saved_row.size not in (series.cumulative.size, series.cumulative.size - ATTRIBUTION_COLUMNS):
                raise StateError("a saved array has the wrong length")
            series.cumulative[: saved_row.size] = saved_row  # saved before the attribution columns: they start at 0
            series.hist_counts[:] = _array(record.hist_counts, np.int64, series.hist_counts.size)
            series.hist_sum_s = record.hist_sum_s
            series.expo.offset = record.expo_offset
            series.expo.counts = np.frombuffer(record.expo_counts, dtype=np.int64).copy()
            series.expo.zero_count = record.expo_zero
            by_id[record.id] = series
        for series_id, tier, slot, stamp, row in snapshot.counts:
            _saved(by_id, series_id).counts.load(tier, slot, stamp, row)
        for series_id, tier, slot, stamp, cell in snapshot.sketches:
            _saved(by_id, series_id).sketches.load(tier, slot, stamp, cell)
        self.rebuild_volumes()


def _record(series: Series) -> SeriesRecord:
    return SeriesRecord(
        id=series.id,
        task=series.task,
        values=series.values,
        created_ns=series.created_ns,
        last_ns=series.last_ns,
        cumulative=series.cumulative.tobytes(),
        hist_counts=series.hist_counts.tobytes(),
        hist_sum_s=series.hist_sum_s,
        expo_offset=series.expo.offset,
        expo_counts=series.expo.counts.tobytes(),
        expo_zero=series.expo.zero_count,
    )


def _saved(by_id: dict[int, Series], series_id: int) -> Series:
    series = by_id.get(series_id)
    if series is None:
        raise StateError(f"a bucket refers to series {series_id}, which is not saved")
    return series


def _array(data: bytes, dtype: type[np.generic], size: int) -> npt.NDArray[np.generic]:
    array = np.frombuffer(data, dtype=dtype)
    if array.size != size:
        raise StateError("a saved array has the wrong length")
    return array
