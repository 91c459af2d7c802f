"""Prometheus series of the SLI engine, as a prometheus_client custom collector.

Register with any registry: ``registry.register(SliCollector(queries))``. Every label set has
``task`` plus one label per configured dimension. Counters and histograms count since the series
was created (restored across restarts from the checkpoint) and are additive across replicas:
sum them. The users gauges are not additive (distinct counts do not sum).

=================================================== =========  ==========================================
series                                              type       meaning
=================================================== =========  ==========================================
``impact_task_events_total{task,outcome,<dims>}``   counter    task events, ``outcome`` good or bad
``impact_task_latency_met_total{task,threshold,…}`` counter    events with duration <= threshold (s)
``impact_task_duration_seconds{task,<dims>}``       histogram  durations; bounds include every threshold
``impact_task_revenue_at_risk_total{task,<dims>}``  counter    sum of impact.task.value over bad events
``impact_task_users{task,<dims>,window,bound}``     gauge      distinct users (estimate, lower, upper)
``impact_task_impacted_users{…same}``               gauge      distinct users with a bad event
``impact_telemetry_complete{task}``                 gauge      1, or 0 while span volume looks lost
``impact_segment_overflow_events_total{task}``      counter    events filed in the overflow segment
``impact_sli_clamped_events_total{task,reason}``    counter    event times clamped (late, future)
``impact_sli_untracked_task_events_total``          counter    task spans beyond max_tasks
``impact_sli_series``                               gauge      active series (without overflow)
``impact_sli_analysis_errors_total``                counter    spans (or batches) whose analysis failed
``impact_pipeline_lag_seconds{service}``            histogram  how late task spans arrive (arrival - span end)
``impact_task_events_without_customer_total``       counter    task events with no customer (outcome all / bad)
``impact_propagation_children_total{task,…}``       counter    calls whose caller had the customer, by
                                                               caller, callee and customer (kept, lost)
``impact_propagation_misses_total{reason}``         counter    children never matched to their parent
                                                               (``unresolved``), span ids forgotten early
                                                               because the map was full (``map_full``)
=================================================== =========  ==========================================
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from otel_impact.processors.durations import MINUTE_NS, SECOND_NS, floor_minute, format_duration

from .aggregates import (
    COL_BAD,
    COL_BAD_NO_CUSTOMER,
    COL_NO_CUSTOMER,
    COL_REVENUE,
    COL_TOTAL,
    FIRST_THRESHOLD_COL,
    histogram_bounds,
)
from .lag import LAG_BOUNDS_S, SUM_INDEX
from .queries import SliQueries
from .sketches import SketchMerger

__all__ = ["SliCollector"]

USERS_CACHE_S = 15.0


EXPOSED_LAG_BUCKETS = range(0, len(LAG_BOUNDS_S), 4)
"""Which lag buckets ``/metrics`` shows: every 4th (bounds 0.05 s, 0.1 s, 0.2 s ... doubling)."""


class SliCollector(Collector):
    """Collects the derived series from the engine behind ``queries`` at scrape time."""

    def __init__(self, queries: SliQueries) -> None:
        self.queries = queries
        self._users_cache: tuple[float, list[Metric]] | None = None

    def describe(self) -> list[Metric]:
        return []  # the label sets depend on the data; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        engine = self.queries.engine
        dims = list(engine.reader.names)
        events = CounterMetricFamily("impact_task_events", "Task events by outcome.", labels=["task", "outcome", *dims])
        met = CounterMetricFamily(
            "impact_task_latency_met",
            "Task events with duration <= threshold seconds.",
            labels=["task", "threshold", *dims],
        )
        duration = HistogramMetricFamily(
            "impact_task_duration_seconds", "Task event durations.", labels=["task", *dims]
        )
        revenue = CounterMetricFamily(
            "impact_task_revenue_at_risk", "Sum of impact.task.value over bad task events.", labels=["task", *dims]
        )
        complete = GaugeMetricFamily(
            "impact_telemetry_complete", "1 unless the task's span volume looks lost.", labels=["task"]
        )
        overflow = CounterMetricFamily(
            "impact_segment_overflow_events", "Task events filed in the overflow segment.", labels=["task"]
        )
        clamped = CounterMetricFamily(
            "impact_sli_clamped_events", "Task events whose end time was clamped.", labels=["task", "reason"]
        )
        without_customer = CounterMetricFamily(
            "impact_task_events_without_customer",
            "Task events that carry no customer (outcome all), and the bad ones among them (outcome bad).",
            labels=["task", "outcome", *dims],
        )
        now = engine.clock.now_ns()
        for name in self.queries.tasks():
            task = engine.tasks[name]
            bounds = [format(b, "g") for b in histogram_bounds(task.thresholds_s)]
            for series in engine.all_series(task):
                labels = [name, *series.values]
                cumulative = series.cumulative
                total = float(cumulative[COL_TOTAL])
                bad = float(cumulative[COL_BAD])
                events.add_metric([name, "good", *series.values], total - bad)
                events.add_metric([name, "bad", *series.values], bad)
                for index, threshold in enumerate(task.thresholds_s):
                    met.add_metric(
                        [name, format(threshold, "g"), *series.values], float(cumulative[FIRST_THRESHOLD_COL + index])
                    )
                running = 0
                buckets = []
                for bound, count in zip([*bounds, "+Inf"], series.hist_counts.tolist(), strict=True):
                    running += count
                    buckets.append((bound, float(running)))
                duration.add_metric(labels, buckets, series.hist_sum_s)
                revenue.add_metric(labels, float(cumulative[COL_REVENUE]))
                without_customer.add_metric([*labels[:1], "all", *labels[1:]], float(cumulative[COL_NO_CUSTOMER]))
                without_customer.add_metric([*labels[:1], "bad", *labels[1:]], float(cumulative[COL_BAD_NO_CUSTOMER]))
            ok, _ = self.queries.telemetry_complete(name, now)
            complete.add_metric([name], 1.0 if ok else 0.0)
            overflow.add_metric([name], float(task.overflow_events))
            clamped.add_metric([name, "late"], float(task.late_clamped))
            clamped.add_metric([name, "future"], float(task.future_clamped))
        yield from (events, met, duration, revenue, without_customer, complete, overflow, clamped)
        yield from self._users_gauges(dims)
        untracked = CounterMetricFamily("impact_sli_untracked_task_events", "Task spans of tasks beyond max_tasks.")
        untracked.add_metric([], float(engine.untracked_task_events))
        series_gauge = GaugeMetricFamily("impact_sli_series", "Active SLI series (without overflow segments).")
        series_gauge.add_metric([], float(engine.series_count))
        errors = CounterMetricFamily(
            "impact_sli_analysis_errors", "Spans, or whole batches, whose SLI analysis failed (still forwarded)."
        )
        errors.add_metric([], float(engine.errors))
        yield from (untracked, series_gauge, errors, self._lag_histogram(), self._edge_counter(), self._edge_misses())

    def _edge_counter(self) -> Metric:
        """Calls per service edge since the process started (at most `edges.MAX_EDGES` edges)."""
        children = CounterMetricFamily(
            "impact_propagation_children",
            "Calls into another service whose caller span carried the customer, by whether the "
            "callee's first span kept it (sampled traces, sli.propagation).",
            labels=["task", "caller", "callee", "customer"],
        )
        edges = self.queries.engine.state.edges
        for (task, caller, callee), (kept, lost) in sorted(edges.totals.items()):
            children.add_metric([task, caller, callee, "kept"], float(kept))
            children.add_metric([task, caller, callee, "lost"], float(lost))
        return children

    def _edge_misses(self) -> Metric:
        """What the bounded edge maps missed (see ``sli.propagation``)."""
        edges = self.queries.engine.state.edges
        misses = CounterMetricFamily(
            "impact_propagation_misses",
            "Children never matched to their parent span (unresolved), span ids forgotten early "
            "because the edge map was full (map_full).",
            labels=["reason"],
        )
        misses.add_metric(["unresolved"], float(edges.unresolved))
        misses.add_metric(["map_full"], float(edges.dropped_early))
        return misses

    def _lag_histogram(self) -> Metric:
        """Pipeline lag of task spans per service since the process started (every 4th lag bucket)."""
        lag = HistogramMetricFamily(
            "impact_pipeline_lag_seconds",
            "How late task spans arrive: arrival time minus span end.",
            labels=["service"],
        )
        for service, counts in sorted(self.queries.engine.state.lag.by_service.items()):
            cumulative = np.cumsum(counts[:SUM_INDEX])
            buckets = [(f"{LAG_BOUNDS_S[i]:g}", float(cumulative[i])) for i in EXPOSED_LAG_BUCKETS]
            buckets.append(("+Inf", float(cumulative[-1])))
            lag.add_metric([service], buckets, float(counts[SUM_INDEX]) / 1000)
        return lag

    def _users_gauges(self, dims: list[str]) -> list[Metric]:
        """Users / impacted-users gauges per window, recomputed at most every 15 s."""
        engine = self.queries.engine
        monotonic = engine.clock.monotonic()
        if self._users_cache is not None and monotonic - self._users_cache[0] < USERS_CACHE_S:
            return self._users_cache[1]
        labels = ["task", *dims, "window", "bound"]
        users = GaugeMetricFamily("impact_task_users", "Distinct users over the window (HLL).", labels=labels)
        impacted = GaugeMetricFamily(
            "impact_task_impacted_users", "Distinct users with a bad event over the window (HLL).", labels=labels
        )
        end = floor_minute(engine.clock.now_ns()) + MINUTE_NS
        for name in self.queries.tasks():
            for series in engine.all_series(engine.tasks[name]):
                for window_s in engine.config.metrics_windows_s:
                    merger = SketchMerger(engine.sketch_params)
                    for _, cell in series.sketches.overlapping(end - window_s * SECOND_NS, end):
                        merger.add(cell)
                    window = format_duration(window_s)
                    for family, bounds in ((users, merger.users()), (impacted, merger.impacted())):
                        for bound, value in (
                            ("estimate", bounds.estimate),
                            ("lower", bounds.lower),
                            ("upper", bounds.upper),
                        ):
                            if value is not None:  # a sketch's bounds always have an upper end
                                family.add_metric([name, *series.values, window, bound], round(value, 1))
        metrics: list[Metric] = [users, impacted]
        self._users_cache = (monotonic, metrics)
        return metrics
