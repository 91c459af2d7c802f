"""Cost of one SLO evaluation pass, against the bare queries it has to make, in the same run.

The evaluation runs on the processor's event loop, so its cost is time that span intake waits.
The query source here answers from precomputed dictionaries (as fast as a query can be), so the
ratio shows what the engine itself adds: tallies, budgets, burn rates, the five burn conditions,
the impact score, alert bookkeeping and the JSON snapshot. Figures are per SLO segment
(10 segments of one SLO, no alert firing, no delivery).

    python benchmarks/bench_slo_evaluate.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from _harness import Case, measure, report, write_json

from otel_impact.processors.clock import ManualClock
from otel_impact.processors.impact_queries import Completeness
from otel_impact.processors.slo import EventCounts, SloEngine
from otel_impact.processors.slo.alerting_config import AlertingConfig
from otel_impact.processors.slo.config import SloConfig
from otel_impact.processors.slo.windows import BURN_WINDOWS

SEGMENTS = 10
TIERS = [f"tier{i}" for i in range(SEGMENTS)]


class PrecomputedQueries:
    """Constant answers: every window holds 1000 events per segment, 1 of them bad."""

    def __init__(self) -> None:
        counts = EventCounts(total=1000, good=999, bad=1, latency_met={0.3: 990})
        self._by_tier = {(tier,): counts for tier in TIERS}
        users = {"estimate": 10.0, "lower": 9.0, "upper": 11.0}
        self._impact = {
            "events": {"total": 1000, "good": 999, "bad": 1},
            "users": users,
            "impacted_users": users,
            "revenue_at_risk": 12.5,
            "telemetry": {"complete": True},
            "segments": [],
        }

    def tasks(self) -> Sequence[str]:
        return ["checkout"]

    def dimensions(self, task: str) -> Sequence[str]:
        return ["tier"]

    def latency_thresholds(self, task: str) -> Sequence[float]:
        return [0.3]

    def counts(
        self, task: str, start_ns: int, end_ns: int, *, by: Sequence[str] = (), where: Mapping[str, str] | None = None
    ) -> Mapping[tuple[str, ...], EventCounts]:
        return self._by_tier

    def impact(
        self, task: str, start_ns: int, end_ns: int, *, by: Sequence[str] = (), where: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        return self._impact

    def telemetry_complete(self, task: str, at_ns: int) -> tuple[bool, str | None]:
        return True, None

    def window_completeness(self, task: str, start_ns: int, end_ns: int) -> Completeness:
        return Completeness(True, None, start_ns, end_ns, 0, (end_ns - start_ns) / 1e9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few short rounds, to check that it runs")
    parser.add_argument("--json", help="write the summary here")
    args = parser.parse_args()
    operations, rounds = (5, 3) if args.quick else (200, 21)

    queries = PrecomputedQueries()
    slo = SloConfig(name="checkout", task="checkout", objective=99.9, by=("tier",))
    engine = SloEngine([slo], AlertingConfig(), queries, clock=ManualClock())

    def bare_queries(n: int) -> None:
        # What one pass must ask: the period and 7 windows, plus one impact query per segment.
        for _ in range(n):
            queries.tasks()
            queries.dimensions("checkout")
            for window in (*BURN_WINDOWS, 30 * 86400.0):
                queries.counts("checkout", 0, int(window * 1e9), by=("tier",))
            for tier in TIERS:
                queries.impact("checkout", 0, 1, by=(), where={"tier": tier})
            queries.window_completeness("checkout", 0, int(30 * 86400 * 1e9))

    def evaluate(n: int) -> None:
        for _ in range(n):
            engine.evaluate()

    cases = [Case("bare queries (baseline)", bare_queries), Case("engine.evaluate()", evaluate)]
    measure(cases, operations=operations, rounds=rounds)
    for case in cases:  # per SLO segment
        case.samples_us = [sample / SEGMENTS for sample in case.samples_us]
    summary = report(
        f"One evaluation pass, µs per SLO segment ({SEGMENTS} segments)",
        cases,
        "bare queries (baseline)",
        extra={"segments": SEGMENTS},
    )
    write_json(summary, args.json)


if __name__ == "__main__":
    main()
