"""What one series (task x segment) accumulates, and how a batch's events are folded in.

A `Series` holds its time buckets (`CountTiers`, `SketchTiers`) and, for ``/metrics`` and
OTLP export, cumulative counters since it was created: events by outcome, latency-threshold
hits, revenue at risk, a fixed-bucket latency histogram and an exponential histogram.

The engine's hot loop does not touch any of this per span: it fills a `PendingGroup` per
(series, minute) and `Series.fold` applies each group once per batch, vectorized with numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from otel_impact.processors.durations import MINUTE_NS

from .buckets import CountTiers, Layout, SketchTiers
from .sketches import SketchParams

if TYPE_CHECKING:
    from .tasks import TaskState

__all__ = ["COL_BAD", "COL_REVENUE", "COL_TOTAL", "BatchDurations", "ExpoHistogram", "PendingGroup", "Series"]

COL_TOTAL = 0
COL_BAD = 1
COL_REVENUE = 2
FIRST_THRESHOLD_COL = 3
EXPO_SCALE = 3
"""Exponential histogram scale: bucket bounds grow by 2**(1/8), about 9% per bucket."""
ZERO_INDEX = -(2**62)
"""Stands for a zero duration among exponential-histogram bucket indexes."""

DEFAULT_HISTOGRAM_BOUNDS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class PendingGroup:
    """One batch's events for one series in one minute (filled by the hot loop).

    ``task`` is ``None`` for events of a task that is not tracked (beyond ``max_tasks``).
    """

    task: TaskState | None
    series: Series | None
    minute: int
    bad: int = 0
    revenue: float = 0.0
    durations_ns: list[int] = field(default_factory=list)
    users: set[Any] = field(default_factory=set)
    """Raw user attribute values while collecting; decoded strings when folded."""
    bad_users: dict[Any, int] = field(default_factory=dict)
    top_keys: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchDurations:
    """A batch's durations in the units each consumer needs, computed once for all groups."""

    ns: npt.NDArray[np.int64]
    ms: npt.NDArray[np.float64]
    expo_index: npt.NDArray[np.int64]
    """Exponential-histogram bucket index of each duration (`ZERO_INDEX` for zero)."""

    @classmethod
    def of(cls, groups: list[PendingGroup]) -> BatchDurations:
        count = sum(len(group.durations_ns) for group in groups)
        ns = np.fromiter(chain.from_iterable(group.durations_ns for group in groups), dtype=np.int64, count=count)
        seconds = ns / 1e9
        positive = seconds > 0
        with np.errstate(divide="ignore"):
            index = np.ceil(np.log2(seconds) * (1 << EXPO_SCALE)) - 1
        expo_index = np.where(positive, index, ZERO_INDEX).astype(np.int64)
        return cls(ns, ns / 1e6, expo_index)

    def slice(self, start: int, count: int) -> BatchDurations:
        end = start + count
        return BatchDurations(self.ns[start:end], self.ms[start:end], self.expo_index[start:end])


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

    def add(self, indexes: npt.NDArray[np.int64]) -> None:
        """Count durations given by their bucket indexes (see `BatchDurations.expo_index`)."""
        low = int(indexes.min())
        if low == ZERO_INDEX:
            positive = indexes[indexes != ZERO_INDEX]
            self.zero_count += int(indexes.size - positive.size)
            if not positive.size:
                return
            indexes = positive
            low = int(indexes.min())
        high = int(indexes.max())
        if not self.counts.size:
            self.offset = low
            self.counts = np.zeros(high - low + 1, dtype=np.int64)
        elif low < self.offset or high >= self.offset + self.counts.size:
            new_low = min(low, self.offset)
            new_high = max(high, self.offset + self.counts.size - 1)
            grown = np.zeros(new_high - new_low + 1, dtype=np.int64)
            grown[self.offset - new_low : self.offset - new_low + self.counts.size] = self.counts
            self.offset, self.counts = new_low, grown
        self.counts += np.bincount(indexes - self.offset, minlength=self.counts.size)

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
        self.thresholds_ns = np.array([round(t * 1e9) for t in thresholds_s], dtype=np.int64)
        self.hist_bounds_ns = np.array([round(b * 1e9) for b in histogram_bounds_s], dtype=np.int64)
        # Every threshold is a histogram bound: met counts are cumulative bucket counts.
        self.threshold_positions = np.searchsorted(self.hist_bounds_ns, self.thresholds_ns)
        self.counts = CountTiers(count_layout, FIRST_THRESHOLD_COL + len(thresholds_s))
        self.sketches = SketchTiers(sketch_layout, sketch_params)
        self.cumulative = np.zeros(FIRST_THRESHOLD_COL + len(thresholds_s), dtype=np.float64)
        self.hist_counts = np.zeros(len(histogram_bounds_s) + 1, dtype=np.int64)
        self.hist_sum_s = 0.0
        self.expo = ExpoHistogram()
        self.created_ns = created_ns
        self.last_ns = created_ns

    def fold(self, group: PendingGroup, durations: BatchDurations) -> None:
        """Apply one pending group (its events' durations are ``durations``)."""
        hist = np.bincount(
            np.searchsorted(self.hist_bounds_ns, durations.ns, side="left"), minlength=self.hist_counts.size
        )
        row = np.empty(self.cumulative.size, dtype=np.float64)
        row[COL_TOTAL] = durations.ns.size
        row[COL_BAD] = group.bad
        row[COL_REVENUE] = group.revenue
        if self.thresholds_ns.size:
            row[FIRST_THRESHOLD_COL:] = np.cumsum(hist)[self.threshold_positions]
        start_ns = group.minute * MINUTE_NS
        self.counts.add(start_ns, row)
        self.cumulative += row
        self.hist_counts += hist
        self.hist_sum_s += float(durations.ns.sum()) / 1e9
        self.expo.add(durations.expo_index)
        cell = self.sketches.cell_for(start_ns)
        if cell is not None:
            cell.add(durations.ms, group.users, group.bad_users, group.top_keys)
        self.last_ns = max(self.last_ns, start_ns)

    def approx_bytes(self) -> int:
        return 400 + self.counts.nbytes() + self.sketches.approx_bytes() + 8 * self.expo.counts.size


def histogram_bounds(thresholds_s: tuple[float, ...]) -> tuple[float, ...]:
    """Prometheus histogram bucket bounds: the defaults plus every latency threshold."""
    return tuple(sorted({*DEFAULT_HISTOGRAM_BOUNDS_S, *(t for t in thresholds_s if math.isfinite(t))}))
