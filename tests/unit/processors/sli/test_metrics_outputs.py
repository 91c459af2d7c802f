"""The derived series: Prometheus exposition through a real registry, and the OTLP metrics request."""

from __future__ import annotations

import math
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from support.otlp_traces import batch, request, span

from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.otlp_metrics import build_metrics_request
from otel_impact.processors.sli.prometheus import SliCollector
from otel_impact.processors.sli.queries import SliQueries

MINUTE = 60 * 10**9
T0 = 1_800_000_000 * 10**9 // MINUTE * MINUTE
DURATIONS_MS = (20.0, 200.0, 450.0, 2000.0)


def engine_with_data() -> SliEngine:
    config = SliConfig.from_mapping(
        {
            "dimensions": [{"name": "tier", "attribute": "impact.customer.tier"}],
            "tasks": [{"name": "checkout", "latency_thresholds": ["300ms", "1s"], "value": 5.0}],
        }
    )
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(config, clock=clock)
    clock.advance(600)
    now = clock.now_ns()
    spans = []
    for i, duration in enumerate(DURATIONS_MS * 5):
        tier = "pro" if i % 2 else "free"
        attributes = {
            "impact.task.name": "checkout",
            "impact.customer.tier": tier,
            "impact.customer.hash": f"{i % 7:032x}",
        }
        spans.append(
            span(end_ns=now, duration_ms=duration, attributes=attributes, error=tier == "pro" and duration > 1000)
        )
    engine.analyze(batch(request(spans), now))
    return engine


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset(values.items())


def test_prometheus_series_from_any_registry() -> None:
    engine = engine_with_data()
    registry = CollectorRegistry()
    registry.register(SliCollector(SliQueries(engine)))
    text = generate_latest(registry).decode()
    got = samples(text)
    # Even i are free (20 ms and 450 ms, five each); odd i are pro (200 ms, and 2 s which fails).
    assert got[("impact_task_events_total", labels(task="checkout", outcome="good", tier="free"))] == 10
    assert got[("impact_task_events_total", labels(task="checkout", outcome="bad", tier="pro"))] == 5
    assert got[("impact_task_events_total", labels(task="checkout", outcome="good", tier="pro"))] == 5
    assert got[("impact_task_latency_met_total", labels(task="checkout", threshold="0.3", tier="free"))] == 5
    assert got[("impact_task_latency_met_total", labels(task="checkout", threshold="1", tier="pro"))] == 5
    assert got[("impact_task_revenue_at_risk_total", labels(task="checkout", tier="pro"))] == 25.0
    bucket = "impact_task_duration_seconds_bucket"
    assert got[(bucket, labels(task="checkout", tier="free", le="0.3"))] == 5
    assert got[(bucket, labels(task="checkout", tier="free", le="0.5"))] == 10
    assert got[(bucket, labels(task="checkout", tier="pro", le="+Inf"))] == 10
    assert got[("impact_task_duration_seconds_count", labels(task="checkout", tier="pro"))] == 10
    assert math.isclose(got[("impact_task_duration_seconds_sum", labels(task="checkout", tier="pro"))], 5 * 2.2)
    users = ("impact_task_users", labels(task="checkout", tier="pro", window="5m", bound="estimate"))
    assert got[users] == 7  # i % 7 over odd i takes every value
    impacted = ("impact_task_impacted_users", labels(task="checkout", tier="pro", window="1h", bound="estimate"))
    assert got[impacted] == 5  # i = 3, 7, 11, 15, 19
    assert got[("impact_telemetry_complete", labels(task="checkout"))] == 1
    assert got[("impact_segment_overflow_events_total", labels(task="checkout"))] == 0
    assert got[("impact_sli_series", labels())] == 2
    assert "# TYPE impact_task_duration_seconds histogram" in text


def test_otlp_metrics_request_content() -> None:
    engine = engine_with_data()
    assert isinstance(engine.clock, ManualClock)
    engine.clock.advance(30)
    message = ExportMetricsServiceRequest.FromString(build_metrics_request(SliQueries(engine)))
    (resource_metrics,) = message.resource_metrics
    assert resource_metrics.resource.attributes[0].value.string_value == "otel-impact-processor"
    metrics = {m.name: m for m in resource_metrics.scope_metrics[0].metrics}
    assert set(metrics) == {
        "impact.task.events",
        "impact.task.latency_met",
        "impact.task.duration",
        "impact.task.revenue_at_risk",
        "impact.task.users",
        "impact.task.impacted_users",
        "impact.telemetry.complete",
    }

    def attrs(point: Any) -> dict[str, str]:
        return {kv.key: kv.value.string_value for kv in point.attributes}

    events = {(attrs(p)["tier"], attrs(p)["outcome"]): p.as_int for p in metrics["impact.task.events"].sum.data_points}
    assert events == {("free", "good"): 10, ("free", "bad"): 0, ("pro", "good"): 5, ("pro", "bad"): 5}
    assert metrics["impact.task.events"].sum.is_monotonic
    points = {attrs(p)["tier"]: p for p in metrics["impact.task.duration"].exponential_histogram.data_points}
    pro = points["pro"]
    assert pro.count == 10 and math.isclose(pro.sum, 11.0) and pro.scale == 3
    assert sum(pro.positive.bucket_counts) + pro.zero_count == pro.count
    base = 2 ** (2**-pro.scale)
    for duration_ms in (200.0, 2000.0):  # each value lands in the bucket (base**i, base**(i+1)]
        index = math.ceil(math.log(duration_ms / 1000, base)) - 1
        assert pro.positive.bucket_counts[index - pro.positive.offset] == 5
    assert pro.start_time_unix_nano < pro.time_unix_nano == engine.clock.now_ns()
    gauge = {
        (attrs(p)["tier"], attrs(p)["window"], attrs(p)["bound"]): p.as_double
        for p in metrics["impact.task.users"].gauge.data_points
    }
    assert gauge[("free", "5m", "estimate")] == 7
    assert [p.as_int for p in metrics["impact.telemetry.complete"].gauge.data_points] == [1]
