"""Prometheus series of synthetic traffic, under names of their own.

Synthetic task events are exposed apart from the real-user series, under an ``impact_synthetic_``
prefix, rather than as a ``traffic`` label on the real names: a recording rule, alert or
dashboard that sums ``impact_task_events_total`` then keeps counting real users only, as it did
before synthetic traffic was split off. Label sets are those of the real series.

=========================================================== =======  ===================================
series                                                      type     meaning
=========================================================== =======  ===================================
``impact_synthetic_task_events_total{task,outcome,<dims>}`` counter  synthetic task events, good or bad
``impact_synthetic_task_latency_met_total{task,threshold,…}`` counter synthetic events within threshold (s)
=========================================================== =======  ===================================
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from .aggregates import COL_BAD, COL_TOTAL, FIRST_THRESHOLD_COL
from .queries import SliQueries

__all__ = ["SYNTHETIC_PREFIX", "SyntheticCollector"]

SYNTHETIC_PREFIX = "impact_synthetic_"


class SyntheticCollector(Collector):
    """Collects the synthetic state's series behind ``queries`` (a synthetic engine's) at scrape time."""

    def __init__(self, queries: SliQueries) -> None:
        self.queries = queries

    def describe(self) -> list[Metric]:
        return []  # the label sets depend on the data

    def collect(self) -> Iterator[Metric]:
        engine = self.queries.engine
        dims = list(engine.reader.names)
        events = CounterMetricFamily(
            f"{SYNTHETIC_PREFIX}task_events",
            "Synthetic task events (impact.synthetic or user_agent.synthetic.type) by outcome.",
            labels=["task", "outcome", *dims],
        )
        met = CounterMetricFamily(
            f"{SYNTHETIC_PREFIX}task_latency_met",
            "Synthetic task events with duration <= threshold seconds.",
            labels=["task", "threshold", *dims],
        )
        for name in self.queries.tasks():
            task = engine.tasks[name]
            for series in engine.all_series(task):
                cumulative = series.cumulative
                total, bad = float(cumulative[COL_TOTAL]), float(cumulative[COL_BAD])
                if not total:
                    continue
                events.add_metric([name, "good", *series.values], total - bad)
                events.add_metric([name, "bad", *series.values], bad)
                for index, threshold in enumerate(task.thresholds_s):
                    met.add_metric(
                        [name, format(threshold, "g"), *series.values], float(cumulative[FIRST_THRESHOLD_COL + index])
                    )
        yield from (events, met)
