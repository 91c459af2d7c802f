"""The figures of some series over one window, from what the shared state returns.

`Figures` turns summed count columns, summed latency log-buckets and HyperLogLog estimates into
the `ImpactFigures` fields of a report or a segment: exact counts, users with bounds at 2
standard deviations of Redis HyperLogLog's error, and quantiles at the geometric middle of
their log bucket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

from otel_impact.processors.impact_queries import Bounds, EventTotals, LatencyQuantiles
from otel_impact.processors.sli.aggregates import COL_REVENUE, EXPO_SCALE, row_width
from otel_impact.processors.sli.queries import QUANTILES, attribution_of, event_counts
from otel_impact.processors.sli.tasks import TaskState

from .encode import ZERO_FIELD

__all__ = ["HLL_RELATIVE_ERROR", "LATENCY_RELATIVE_ERROR", "Figures", "add_row", "hll_bounds", "quantiles_ms"]

HLL_RELATIVE_ERROR: Final = 1.04 / math.sqrt(16_384)
"""Redis HyperLogLog's standard error (16,384 registers): 0.81%."""
LATENCY_RELATIVE_ERROR: Final = round(2 ** (1 / 2 ** (EXPO_SCALE + 1)) - 1, 4)
"""Largest relative error of a quantile read at a log bucket's geometric middle."""


class Figures:
    """Counts, latency and user estimates of some series over one window."""

    def __init__(
        self,
        state: TaskState,
        counts: Mapping[str, float],
        latency: Mapping[str, float],
        sids: Sequence[str],
        users: int,
        impacted: int,
    ) -> None:
        self.state = state
        self.row = [0.0] * row_width(len(state.thresholds_s))
        for sid in sids:
            add_row(self.row, counts, sid)
        self.buckets: dict[int | None, float] = {}
        wanted = set(sids)
        for name, count in latency.items():
            sid, _, index = name.partition(":")
            if sid in wanted:
                key = None if index == ZERO_FIELD else int(index)
                self.buckets[key] = self.buckets.get(key, 0.0) + count
        self.users = users
        self.impacted = impacted

    def figures(self, lower_only: bool) -> dict[str, Any]:
        counts = event_counts(self.row, self.state.thresholds_s)
        p50, p95, p99 = quantiles_ms(self.buckets, QUANTILES)
        attribution = attribution_of(self.row)
        return {
            "attribution": attribution,
            "events": EventTotals(counts.total, counts.good, counts.bad),
            "success_ratio": None if not counts.total else round(counts.good / counts.total, 6),
            "users": hll_bounds(self.users).whole(lower_bound_only=lower_only),
            "impacted_users": hll_bounds(self.impacted).whole(
                lower_bound_only=lower_only or attribution.bad_events_without_customer > 0
            ),
            "revenue_at_risk": round(float(self.row[COL_REVENUE]), 2),
            "latency_ms": LatencyQuantiles(p50, p95, p99),
            "latency_met": dict(counts.latency_met),
        }


def add_row(row: list[float], sums: Mapping[str, float], sid: str) -> None:
    for column in range(len(row)):
        row[column] += sums.get(f"{sid}:{column}", 0.0)


def hll_bounds(estimate: int) -> Bounds:
    spread = 2 * HLL_RELATIVE_ERROR * estimate
    return Bounds(float(estimate), max(0.0, estimate - spread), estimate + spread)


def quantiles_ms(buckets: Mapping[int | None, float], ranks: Sequence[float]) -> list[float | None]:
    """Quantiles from exponential-histogram buckets (``None`` key: zero durations)."""
    total = sum(buckets.values())
    if not total:
        return [None for _ in ranks]
    ordered = sorted(buckets.items(), key=lambda item: -math.inf if item[0] is None else item[0])
    base = 2 ** (2**-EXPO_SCALE)
    answers: list[float | None] = []
    for rank in ranks:
        target, seen = rank * total, 0.0
        value = 0.0
        for index, count in ordered:
            seen += count
            if seen >= target:
                value = 0.0 if index is None else 1000 * base ** (index + 0.5)
                break
        answers.append(round(value, 3))
    return answers
