"""What one series (task x segment) accumulates, and how a batch's events are folded in.

A `Series` holds its time buckets (`CountTiers`, `SketchTiers`) and, for ``/metrics`` and
OTLP export, cumulative counters since it was created: events by outcome, latency-threshold
hits, revenue at risk, a fixed-bucket latency histogram and an exponential histogram.

The analyzer's hot loop does not touch any of this per span: it fills a `PendingGroup` per
(series, minute); `BatchArrays` computes what every group of a batch needs in a few numpy calls,
and `Series.fold` applies each group once per batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from otel_impact.processors.durations import MINUTE_NS

from .buckets import CountTiers, Layout, SketchTiers
from .results import GroupResult
from .sketches import SketchParams

__all__ = [
    "ATTRIBUTION_COLUMNS",
    "COL_BAD",
    "COL_BAD_NO_CUSTOMER",
    "COL_NO_CUSTOMER",
    "COL_REVENUE",
    "COL_TOTAL",
    "BatchArrays",
    "ExpoHistogram",
    "PendingGroup",
    "Series",
    "expo_indexes",
    "row_width",
]

COL_TOTAL = 0
COL_BAD = 1
COL_REVENUE = 2
FIRST_THRESHOLD_COL = 3
"""A count row: total, bad, revenue, events within each latency threshold, then the attribution
columns, last so that rows of older layouts (without them) keep every other column's place."""
COL_NO_CUSTOMER = -2
"""Events without a customer (no ``impact.customer.hash``), from the end of the row."""
COL_BAD_NO_CUSTOMER = -1
"""Bad events without a customer, from the end of the row."""
ATTRIBUTION_COLUMNS = 2
EXPO_SCALE = 3
"""Exponential histogram scale: bucket bounds grow by 2**(1/8), about 9% per bucket."""
ZERO_INDEX = -(2**62)
"""Stands for a zero duration among exponential-histogram bucket indexes."""
_TINY = 1e-300
_NO_LOW = 2**62
_NO_HIGH = -(2**62)
EXPO_TABLE_LIMIT = 1 << 18
"""Cells of the (group x bucket) table `BatchArrays` counts exponential-histogram buckets in at
once (2 MB); past it, each group is counted on its own."""

DEFAULT_HISTOGRAM_BOUNDS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


TaskT = TypeVar("TaskT")
"""The task a pending group belongs to (`TaskState` for the engine; this module never reads it)."""


@dataclass(slots=True)
class PendingGroup(Generic[TaskT]):
    """One batch's events for one series in one minute (filled by the hot loop).

    ``task`` is ``None`` for events of a task that is not tracked (beyond ``max_tasks``).
    """

    task: TaskT | None
    series: Series | None
    minute: int
    bad: int = 0
    revenue: float = 0.0
    no_customer: int = 0
    """Events without a customer."""
    bad_no_customer: int = 0
    """Bad events without a customer."""
    durations_ns: list[int] = field(default_factory=list)
    users: set[Any] = field(default_factory=set)
    """Raw user attribute values while collecting; decoded strings when folded."""
    bad_users: dict[Any, int] = field(default_factory=dict)
    top_keys: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchArrays:
    """One batch's events as arrays, and what each pending group needs from them.

    numpy costs about a microsecond per call whatever the size, and a batch has many small
    groups (one per series and minute), so everything that can be is computed here in a few
    calls over the whole batch rather than in a few calls per group: histogram buckets, count
    rows, duration sums and exponential-histogram counts. Group ``i``'s events are
    ``starts[i]:starts[i + 1]``. Built by `of` from the groups in the order they are folded.
    """

    ms: npt.NDArray[np.float64]
    """Every event's duration in milliseconds (for the latency sketches)."""
    starts: list[int]
    """Where each group's events begin in ``ms``, plus the end of the last one."""
    count_rows: list[npt.NDArray[np.float64]]
    """Each group's row for `CountTiers`: total, bad, revenue, events within each threshold."""
    hist_rows: list[npt.NDArray[np.int64]]
    """Each group's counts per latency-histogram bucket of its series."""
    sums_s: list[float]
    """Each group's duration sum in seconds."""
    expo: list[tuple[int, npt.NDArray[np.int64] | None, int]]
    """Each group's exponential-histogram counts: (lowest index, counts from it on, zero durations)."""

    @classmethod
    def of(cls, groups: Sequence[PendingGroup[Any]]) -> BatchArrays:
        """Arrays for ``groups`` (each with at least one event and a series)."""
        sizes = [len(group.durations_ns) for group in groups]
        starts = [0, *accumulate(sizes)]
        ns = np.fromiter(chain.from_iterable(group.durations_ns for group in groups), dtype=np.int64, count=starts[-1])
        group_of = np.repeat(np.arange(len(groups)), sizes)
        sums_s = [float(total) / 1e9 for total in np.add.reduceat(ns, starts[:-1]).tolist()]
        count_rows, hist_rows = _rows(groups, sizes, ns, group_of)
        return cls(ns / 1e6, starts, count_rows, hist_rows, sums_s, _expo_counts(ns, group_of, starts))

    def result(self, index: int, group: PendingGroup[Any], task: str, values: tuple[str, ...]) -> GroupResult[Series]:
        """Group ``index`` (``group``, whose users are decoded) as a `GroupResult` of ``task``'s
        series with segment ``values``."""
        return GroupResult(
            task,
            values,
            group.minute,
            self.count_rows[index],
            self.hist_rows[index],
            self.sums_s[index],
            self.expo[index],
            self.ms[self.starts[index] : self.starts[index + 1]],
            group.users,
            group.bad_users,
            group.top_keys,
            group.series,
        )


def _rows(
    groups: Sequence[PendingGroup[Any]], sizes: list[int], ns: npt.NDArray[np.int64], group_of: npt.NDArray[np.intp]
) -> tuple[list[npt.NDArray[np.float64]], list[npt.NDArray[np.int64]]]:
    """Count rows and histogram rows of every group, one pass per distinct series layout."""
    count_rows: list[npt.NDArray[np.float64]] = [np.empty(0)] * len(groups)
    hist_rows: list[npt.NDArray[np.int64]] = [np.empty(0, dtype=np.int64)] * len(groups)
    layouts: dict[tuple[tuple[float, ...], tuple[float, ...]], list[int]] = {}
    for index, group in enumerate(groups):
        assert group.series is not None
        layouts.setdefault(group.series.layout_key, []).append(index)
    for members in layouts.values():
        series = groups[members[0]].series
        assert series is not None
        buckets = series.hist_counts.size
        hist = np.bincount(
            group_of * buckets + np.searchsorted(series.hist_bounds_ns, ns, side="left"),
            minlength=len(groups) * buckets,
        ).reshape(len(groups), buckets)
        rows = np.empty((len(groups), series.cumulative.size), dtype=np.float64)
        rows[:, COL_TOTAL] = sizes
        rows[:, COL_BAD] = [group.bad for group in groups]
        rows[:, COL_REVENUE] = [group.revenue for group in groups]
        thresholds = series.thresholds_ns.size
        if thresholds:
            rows[:, FIRST_THRESHOLD_COL : FIRST_THRESHOLD_COL + thresholds] = np.cumsum(hist, axis=1)[
                :, series.threshold_positions
            ]
        rows[:, COL_NO_CUSTOMER] = [group.no_customer for group in groups]
        rows[:, COL_BAD_NO_CUSTOMER] = [group.bad_no_customer for group in groups]
        for index in members:
            count_rows[index] = rows[index]
            hist_rows[index] = hist[index]
    return count_rows, hist_rows


def expo_indexes(ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Exponential-histogram bucket index of each duration (`ZERO_INDEX` for zero)."""
    seconds = ns / 1e9
    # A zero's log is taken of a tiny stand-in (no divide warning to silence) and then replaced.
    index = np.ceil(np.log2(np.maximum(seconds, _TINY)) * (1 << EXPO_SCALE)) - 1
    return np.where(seconds > 0, index, ZERO_INDEX).astype(np.int64)


def _expo_counts(
    ns: npt.NDArray[np.int64], group_of: npt.NDArray[np.intp], starts: list[int]
) -> list[tuple[int, npt.NDArray[np.int64] | None, int]]:
    """Each group's exponential-histogram counts over its own [lowest, highest] bucket index.

    One bincount over (group, index) for the whole batch when that table stays small (it nearly
    always does: a batch's durations span a few hundred buckets at most); otherwise per group.
    """
    groups = len(starts) - 1
    indexes = all_indexes = expo_indexes(ns)
    positive = indexes != ZERO_INDEX
    if positive.all():
        zeros = [0] * groups
        lows = np.minimum.reduceat(indexes, starts[:-1]).tolist()
        highs = np.maximum.reduceat(indexes, starts[:-1]).tolist()
    else:
        zeros = np.bincount(group_of[~positive], minlength=groups).tolist()
        if not positive.any():
            return [(0, None, zero) for zero in zeros]
        lows = np.minimum.reduceat(np.where(positive, indexes, _NO_LOW), starts[:-1]).tolist()
        highs = np.maximum.reduceat(np.where(positive, indexes, _NO_HIGH), starts[:-1]).tolist()
        indexes, group_of = indexes[positive], group_of[positive]
    base = min(lows)
    width = max(high for high in highs if high != _NO_HIGH) - base + 1
    rows: list[npt.NDArray[np.int64] | None]
    if groups * width <= EXPO_TABLE_LIMIT:
        table = np.bincount(group_of * width + (indexes - base), minlength=groups * width).reshape(groups, width)
        rows = [
            None if low == _NO_LOW else table[i, low - base : high - base + 1]
            for i, (low, high) in enumerate(zip(lows, highs, strict=True))
        ]
    else:
        rows = []
        for i, (low, high) in enumerate(zip(lows, highs, strict=True)):
            mine = all_indexes[starts[i] : starts[i + 1]]
            mine = mine[mine != ZERO_INDEX]
            rows.append(None if low == _NO_LOW else np.bincount(mine - low, minlength=high - low + 1))
    return [(0 if low == _NO_LOW else low, row, zero) for low, row, zero in zip(lows, rows, zeros, strict=True)]


class ExpoHistogram:
    """A cumulative base-2 exponential histogram of durations in seconds, at a fixed scale.

    Bucket *i* holds values in ``(base**i, base**(i+1)]`` with ``base = 2**(2**-scale)``, as in
    OTLP's ExponentialHistogram. Zero durations go to ``zero_count``.
    """

    __slots__ = ("counts", "offset", "zero_count")

    def __init__(self) -> None:
        self.offset = 0
        self.counts: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.zero_count = 0

    def add(self, low: int, counts: npt.NDArray[np.int64] | None, zeros: int = 0) -> None:
        """Count ``counts[k]`` durations in bucket ``low + k``, and ``zeros`` zero durations."""
        self.zero_count += zeros
        if counts is None or not counts.size:
            return
        high = low + counts.size - 1
        if not self.counts.size:
            self.offset = low
            self.counts = counts.astype(np.int64, copy=True)
            return
        if low < self.offset or high >= self.offset + self.counts.size:
            new_low = min(low, self.offset)
            new_high = max(high, self.offset + self.counts.size - 1)
            grown = np.zeros(new_high - new_low + 1, dtype=np.int64)
            grown[self.offset - new_low : self.offset - new_low + self.counts.size] = self.counts
            self.offset, self.counts = new_low, grown
        window = self.counts[low - self.offset : high - self.offset + 1]
        window += counts

    @staticmethod
    def scale() -> int:
        return EXPO_SCALE


class Series:
    """One task x segment: time buckets plus cumulative totals since ``created_ns``."""

    __slots__ = (
        "counts",
        "created_ns",
        "cumulative",
        "expo",
        "hist_bounds_ns",
        "hist_counts",
        "hist_sum_s",
        "id",
        "last_ns",
        "layout_key",
        "sketches",
        "task",
        "threshold_positions",
        "thresholds_ns",
        "values",
    )

    def __init__(
        self,
        series_id: int,
        task: str,
        values: tuple[str, ...],
        *,
        thresholds_s: tuple[float, ...],
        histogram_bounds_s: tuple[float, ...],
        count_layout: Layout,
        sketch_layout: Layout,
        sketch_params: SketchParams,
        created_ns: int,
    ) -> None:
        self.id = series_id
        self.task = task
        self.values = values
        self.layout_key = (thresholds_s, histogram_bounds_s)
        """Series with equal keys share column and histogram layouts (`BatchArrays` groups by it)."""
        self.thresholds_ns = np.array([round(t * 1e9) for t in thresholds_s], dtype=np.int64)
        self.hist_bounds_ns = np.array([round(b * 1e9) for b in histogram_bounds_s], dtype=np.int64)
        # Every threshold is a histogram bound: met counts are cumulative bucket counts.
        self.threshold_positions = np.searchsorted(self.hist_bounds_ns, self.thresholds_ns)
        self.counts = CountTiers(
            count_layout,
            row_width(len(thresholds_s)),
            saved_columns_accepted=(FIRST_THRESHOLD_COL + len(thresholds_s),),
        )
        self.sketches = SketchTiers(sketch_layout, sketch_params)
        self.cumulative = np.zeros(row_width(len(thresholds_s)), dtype=np.float64)
        self.hist_counts = np.zeros(len(histogram_bounds_s) + 1, dtype=np.int64)
        self.hist_sum_s = 0.0
        self.expo = ExpoHistogram()
        self.created_ns = created_ns
        self.last_ns = created_ns

    def fold(self, group: PendingGroup[Any], batch: BatchArrays, index: int) -> None:
        """Apply one pending group, number ``index`` of ``batch`` (its users already decoded)."""
        self.apply(batch.result(index, group, self.task, self.values))

    def apply(self, result: GroupResult[Any]) -> None:
        """Fold one group's events in (see `GroupResult`); its task and segment are this series'."""
        start_ns = result.minute * MINUTE_NS
        row = result.row
        self.counts.add(start_ns, row)
        self.cumulative += row
        self.hist_counts += result.hist
        self.hist_sum_s += result.sum_s
        self.expo.add(*result.expo)
        cell = self.sketches.cell_for(start_ns)
        if cell is not None:
            cell.add(result.durations_ms, result.users, result.bad_users, result.top_keys)
        if start_ns > self.last_ns:
            self.last_ns = start_ns

    def approx_bytes(self) -> int:
        return 400 + self.counts.nbytes() + self.sketches.approx_bytes() + 8 * self.expo.counts.size


def row_width(thresholds: int) -> int:
    """Columns of a count row with ``thresholds`` latency thresholds."""
    return FIRST_THRESHOLD_COL + thresholds + ATTRIBUTION_COLUMNS


def histogram_bounds(thresholds_s: tuple[float, ...]) -> tuple[float, ...]:
    """Prometheus histogram bucket bounds: the defaults plus every latency threshold."""
    return tuple(sorted({*DEFAULT_HISTOGRAM_BOUNDS_S, *(t for t in thresholds_s if math.isfinite(t))}))
