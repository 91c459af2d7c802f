"""The derived series as an OTLP ``ExportMetricsServiceRequest`` (for export to a downstream).

`build_metrics_request` snapshots the engine into opentelemetry-proto messages; the caller's
transport sends the bytes to ``/v1/metrics`` or the gRPC MetricsService. Temporality is
cumulative since each series was created (``start_time_unix_nano``), so replicas add up.

====================================  ======================  =====================================
metric                                type                    attributes
====================================  ======================  =====================================
``impact.task.events``                Sum, monotonic, int     task, outcome, <dims>
``impact.task.latency_met``           Sum, monotonic, int     task, threshold (s), <dims>
``impact.task.duration``              ExponentialHistogram s  task, <dims>
``impact.task.revenue_at_risk``       Sum, monotonic, double  task, <dims>
``impact.task.users``                 Gauge                   task, <dims>, window, bound
``impact.task.impacted_users``        Gauge                   task, <dims>, window, bound
``impact.telemetry.complete``         Gauge, int              task
====================================  ======================  =====================================
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2 as pb

from otel_impact.processors.durations import MINUTE_NS, SECOND_NS, floor_minute, format_duration
from otel_impact.version import __version__

from .aggregates import COL_BAD, COL_REVENUE, COL_TOTAL, FIRST_THRESHOLD_COL, ExpoHistogram, Series
from .queries import SliQueries
from .sketches import SketchMerger

__all__ = ["build_metrics_request"]

CUMULATIVE = pb.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


def build_metrics_request(queries: SliQueries, *, service_name: str = "otel-impact-processor") -> bytes:
    """The serialized ``ExportMetricsServiceRequest`` of the engine's current state."""
    engine = queries.engine
    now = engine.clock.now_ns()
    dims = engine.reader.names
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    resource_metrics.resource.attributes.append(_kv("service.name", service_name))
    scope_metrics = resource_metrics.scope_metrics.add()
    scope_metrics.scope.name = "otel_impact.sli"
    scope_metrics.scope.version = __version__

    def metric(name: str, description: str, unit: str) -> pb.Metric:
        created: pb.Metric = scope_metrics.metrics.add()
        created.name, created.description, created.unit = name, description, unit
        return created

    events = metric("impact.task.events", "Task events by outcome.", "{event}")
    events.sum.aggregation_temporality, events.sum.is_monotonic = CUMULATIVE, True
    met = metric("impact.task.latency_met", "Task events with duration <= threshold.", "{event}")
    met.sum.aggregation_temporality, met.sum.is_monotonic = CUMULATIVE, True
    duration = metric("impact.task.duration", "Task event durations.", "s")
    duration.exponential_histogram.aggregation_temporality = CUMULATIVE
    revenue = metric("impact.task.revenue_at_risk", "Sum of impact.task.value over bad events.", "1")
    revenue.sum.aggregation_temporality, revenue.sum.is_monotonic = CUMULATIVE, True
    users = metric("impact.task.users", "Distinct users over the window (HLL).", "{user}")
    impacted = metric("impact.task.impacted_users", "Distinct users with a bad event over the window (HLL).", "{user}")
    complete = metric("impact.telemetry.complete", "1 unless the task's span volume looks lost.", "1")
    end = floor_minute(now) + MINUTE_NS

    for name in queries.tasks():
        task = engine.tasks[name]
        for series in engine.all_series(task):
            base = [_kv("task", name), *(_kv(dim, value) for dim, value in zip(dims, series.values, strict=True))]
            cumulative = series.cumulative
            for outcome, value in (("good", cumulative[COL_TOTAL] - cumulative[COL_BAD]), ("bad", cumulative[COL_BAD])):
                point = events.sum.data_points.add()
                _stamp(point, series.created_ns, now, [*base, _kv("outcome", outcome)])
                point.as_int = int(value)
            for index, threshold in enumerate(task.thresholds_s):
                point = met.sum.data_points.add()
                _stamp(point, series.created_ns, now, [*base, _kv("threshold", format(threshold, "g"))])
                point.as_int = int(cumulative[FIRST_THRESHOLD_COL + index])
            point = revenue.sum.data_points.add()
            _stamp(point, series.created_ns, now, base)
            point.as_double = float(cumulative[COL_REVENUE])
            _expo_point(duration.exponential_histogram.data_points.add(), series.expo, series, now, base)
            for window_s in engine.config.metrics_windows_s:
                merger = SketchMerger(engine.sketch_params)
                for _, cell in series.sketches.overlapping(end - window_s * SECOND_NS, end):
                    merger.add(cell)
                window = _kv("window", format_duration(window_s))
                for gauge, bounds in ((users, merger.users()), (impacted, merger.impacted())):
                    for bound, value in (
                        ("estimate", bounds.estimate),
                        ("lower", bounds.lower),
                        ("upper", bounds.upper),
                    ):
                        if value is None:  # a sketch's bounds always have an upper end
                            continue
                        gauge_point = gauge.gauge.data_points.add()
                        _stamp(gauge_point, 0, now, [*base, window, _kv("bound", bound)])
                        gauge_point.as_double = round(value, 1)
        ok, _ = queries.telemetry_complete(name, now)
        flag = complete.gauge.data_points.add()
        _stamp(flag, 0, now, [_kv("task", name)])
        flag.as_int = 1 if ok else 0
    return request.SerializeToString()  # type: ignore[no-any-return]


def _expo_point(
    point: pb.ExponentialHistogramDataPoint, expo: ExpoHistogram, series: Series, now: int, labels: list[KeyValue]
) -> None:
    _stamp(point, series.created_ns, now, labels)
    total = int(expo.counts.sum()) + expo.zero_count
    point.count = total
    point.sum = series.hist_sum_s
    point.scale = ExpoHistogram.scale()
    point.zero_count = expo.zero_count
    if expo.counts.size:
        point.positive.offset = expo.offset
        point.positive.bucket_counts.extend(int(c) for c in expo.counts.tolist())


def _stamp(point: object, start_ns: int, now: int, labels: Iterable[KeyValue]) -> None:
    point.start_time_unix_nano = start_ns  # type: ignore[attr-defined]
    point.time_unix_nano = now  # type: ignore[attr-defined]
    point.attributes.extend(labels)  # type: ignore[attr-defined]


def _kv(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))
