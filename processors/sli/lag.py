"""Pipeline lag: how late task spans reach the processor (arrival time minus span end).

The analyzer measures each task event's lag and hands them over per (task, service, minute of
arrival) as counts in fixed log-spaced buckets (`LAG_BOUNDS_S`, about 19% apart from 50 ms to
4 h); `LagHistory` keeps them for `LAG_HISTORY_S` and answers quantiles over a window of
arrivals, with the value interpolated inside its bucket (so within one bucket's width, about
19%). It also keeps cumulative counts per service since the processor started, for the
``impact_pipeline_lag_seconds`` histogram.

Bounded: at most `MAX_LAG_SERIES` (task, service) pairs (later pairs are counted under the
service `OTHER_SERVICE`), one bucket array per pair and minute, older minutes pruned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from otel_impact.processors.durations import MINUTE_NS, SECOND_NS

from .minutes import forget_before

__all__ = [
    "LAG_BOUNDS_S",
    "LAG_HISTORY_S",
    "MAX_LAG_SERIES",
    "OTHER_SERVICE",
    "LagHistory",
    "LagQuantiles",
    "lag_counts",
]

LAG_BOUNDS_S: Final = tuple(round(0.05 * 2 ** (i / 4), 6) for i in range(73))
"""Upper bounds of the lag buckets in seconds: 0.05 s to about 4.5 h, 2**(1/4) apart. A lag
above the last bound (or a span that ended in the future: a negative lag, counted as 0) falls
in the first or an extra last bucket."""
_BOUNDS_NS: Final = np.array([round(b * SECOND_NS) for b in LAG_BOUNDS_S], dtype=np.int64)
BUCKETS: Final = len(LAG_BOUNDS_S) + 1
SUM_INDEX: Final = BUCKETS
"""A counts array holds `BUCKETS` bucket counts, then the sum of the lags in milliseconds."""
LAG_HISTORY_S: Final = 6 * 3600
"""How long per-minute lag counts are kept: quantiles cover at most the last 6 hours of a window."""
MAX_LAG_SERIES: Final = 1024
OTHER_SERVICE: Final = "_other"
UNKNOWN_SERVICE: Final = "unknown"


def lag_counts(lags_ns: Iterable[int]) -> npt.NDArray[np.int64]:
    """Bucket counts of lags in nanoseconds, then their sum in milliseconds (negative lags, from
    spans that ended after they arrived, count as 0)."""
    lags = np.maximum(np.fromiter(lags_ns, dtype=np.int64), 0)
    counts = np.zeros(BUCKETS + 1, dtype=np.int64)
    counts[:BUCKETS] = np.bincount(np.searchsorted(_BOUNDS_NS, lags, side="left"), minlength=BUCKETS)
    counts[SUM_INDEX] = int(lags.sum()) // 1_000_000
    return counts


@dataclass(frozen=True)
class LagQuantiles:
    """Lag over a window of arrivals: its median and 99th percentile in seconds, from ``events``."""

    p50_s: float | None
    p99_s: float | None
    events: int


def quantiles(counts: npt.NDArray[np.int64]) -> LagQuantiles:
    """p50 and p99 of ``counts`` (see `lag_counts`), interpolated linearly inside the bucket."""
    counts = counts[:BUCKETS]
    total = int(counts.sum())
    if not total:
        return LagQuantiles(None, None, 0)
    cumulative = np.cumsum(counts)

    def at(q: float) -> float:
        rank = q * total
        index = int(np.searchsorted(cumulative, rank, side="left"))
        if index >= len(LAG_BOUNDS_S):
            return LAG_BOUNDS_S[-1]
        low = 0.0 if index == 0 else LAG_BOUNDS_S[index - 1]
        high = LAG_BOUNDS_S[index]
        before = 0 if index == 0 else int(cumulative[index - 1])
        inside = int(counts[index])
        share = (rank - before) / inside if inside else 1.0
        return round(low + (high - low) * min(max(share, 0.0), 1.0), 3)

    return LagQuantiles(at(0.5), at(0.99), total)


class LagHistory:
    """Lag counts per (task, service) and minute of arrival; see the module docstring."""

    def __init__(self) -> None:
        self._minutes: dict[tuple[str, str], dict[int, npt.NDArray[np.int64]]] = {}
        self.by_service: dict[str, npt.NDArray[np.int64]] = {}
        """Cumulative counts per service since the processor started (for ``/metrics``)."""

    def add(self, task: str, service: str, minute: int, counts: npt.NDArray[np.int64]) -> None:
        """Count ``counts`` (bucket counts) for ``task``'s spans from ``service`` that arrived in ``minute``."""
        key = (task, service)
        minutes = self._minutes.get(key)
        if minutes is None:
            if len(self._minutes) >= MAX_LAG_SERIES:
                key = (task, OTHER_SERVICE)
                service = OTHER_SERVICE
                minutes = self._minutes.get(key)
            if minutes is None:
                minutes = self._minutes[key] = {}
        held = minutes.get(minute)
        if held is None:
            minutes[minute] = counts.copy()
        else:
            held += counts
        cumulative = self.by_service.get(service)
        if cumulative is None:
            if len(self.by_service) >= MAX_LAG_SERIES:
                service = OTHER_SERVICE
                cumulative = self.by_service.get(service)
            if cumulative is None:
                cumulative = self.by_service[service] = np.zeros(BUCKETS + 1, dtype=np.int64)
        cumulative += counts

    def quantiles(self, task: str, start_ns: int, end_ns: int) -> LagQuantiles:
        """Lag quantiles of ``task``'s spans that arrived in ``[start_ns, end_ns)`` (within the history kept)."""
        first, last = start_ns // MINUTE_NS, (end_ns - 1) // MINUTE_NS
        total = np.zeros(BUCKETS + 1, dtype=np.int64)
        # Copies of the maps (each taken in one step under the GIL): the shared state asks from a
        # worker thread while the event loop adds.
        for (each, _), minutes in list(self._minutes.items()):
            if each != task:
                continue
            for minute, counts in list(minutes.items()):
                if first <= minute <= last:
                    total += counts
        return quantiles(total)

    def prune(self, now_ns: int) -> None:
        """Forget minutes older than `LAG_HISTORY_S`, and pairs left with none."""
        forget_before(self._minutes, now_ns, LAG_HISTORY_S)
