"""Pipeline lag (issue 15, part 3): how late spans arrive, per service and per task; spans sent
90 s late turn ``telemetry.delayed`` on, and it goes off again once they arrive on time."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from support.otlp_traces import batch, request, span

from otel_impact.processors.api.documents import impact_document
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliCollector, SliConfig, SliEngine
from otel_impact.processors.sli.lag import LAG_BOUNDS_S, LagHistory, lag_counts, quantiles
from otel_impact.processors.sli.queries import SliQueries

SECOND = 10**9
MINUTE = 60 * SECOND
T0 = 1_800_000_000 * SECOND // (60 * MINUTE) * (60 * MINUTE)
BUCKET_WIDTH = 2**0.25  # neighbouring lag bounds: a quantile is within one bucket


def setup() -> tuple[SliEngine, SliQueries, ManualClock]:
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(SliConfig(), clock=clock)
    return engine, SliQueries(engine), clock


def send(engine: SliEngine, clock: ManualClock, count: int, late_s: float, service: str = "checkout-api") -> None:
    now = clock.now_ns()
    spans: list[Any] = [
        span(end_ns=now - int(late_s * SECOND) - i * 10**6, attributes={"impact.task.name": "checkout"})
        for i in range(count)
    ]
    engine.analyze(batch(request(spans, resource={"service.name": service}), now))


def last(clock: ManualClock, minutes: int) -> tuple[int, int]:
    end = clock.now_ns() - clock.now_ns() % MINUTE + MINUTE
    return end - minutes * MINUTE, end


def test_spans_90s_late_turn_delayed_on_and_on_time_spans_turn_it_off() -> None:
    engine, queries, clock = setup()
    for _ in range(3):
        clock.advance(20)
        send(engine, clock, 50, late_s=90)
    document = impact_document(queries.impact("checkout", *last(clock, 5)))
    telemetry = document["telemetry"]
    assert telemetry["delayed"] is True
    assert 90 / BUCKET_WIDTH <= telemetry["lag_seconds"]["p50"] <= 90 * BUCKET_WIDTH
    assert 90 / BUCKET_WIDTH <= telemetry["behind_seconds"] <= 90 * BUCKET_WIDTH
    assert "arrive late" in telemetry["delay_reason"] and "sli.delay_threshold 60s" in telemetry["delay_reason"]
    assert "late" not in (telemetry["reason"] or "")  # late data is data still coming: not a completeness matter

    clock.advance(7 * 60)  # the late spans are now older than the 5 minutes the decision looks at
    for _ in range(3):
        clock.advance(20)
        send(engine, clock, 50, late_s=0.5)
    telemetry = impact_document(queries.impact("checkout", *last(clock, 5)))["telemetry"]
    assert telemetry["delayed"] is False and telemetry["delay_reason"] is None and telemetry["behind_seconds"] is None
    assert telemetry["lag_seconds"]["p99"] <= 0.5 * BUCKET_WIDTH
    # The whole window still says how late its spans were: half of them 90 s.
    whole = impact_document(queries.impact("checkout", *last(clock, 15)))["telemetry"]["lag_seconds"]
    assert whole["p99"] >= 90 / BUCKET_WIDTH


def test_the_threshold_is_configurable_and_checked() -> None:
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(SliConfig.from_mapping({"delay_threshold": "2m"}), clock=clock)
    send(engine, clock, 20, late_s=90)
    lag = SliQueries(engine).pipeline_lag("checkout", *last(clock, 5))
    assert lag.delayed is False and lag.recent_p99_s is not None and lag.recent_p99_s < 120
    with pytest.raises(ValueError, match=r"sli\.delay_threshold"):
        SliConfig.from_mapping({"delay_threshold": "0s"})


def test_lag_per_service_on_metrics() -> None:
    engine, queries, clock = setup()
    send(engine, clock, 10, late_s=3, service="checkout-api")
    send(engine, clock, 5, late_s=30, service="payments")
    registry = CollectorRegistry()
    registry.register(SliCollector(queries))
    text = generate_latest(registry).decode()
    assert 'impact_pipeline_lag_seconds_count{service="checkout-api"} 10.0' in text
    assert 'impact_pipeline_lag_seconds_count{service="payments"} 5.0' in text
    assert 'impact_pipeline_lag_seconds_bucket{le="1.6",service="checkout-api"} 0.0' in text
    assert 'impact_pipeline_lag_seconds_bucket{le="3.2",service="checkout-api"} 10.0' in text
    assert 'impact_pipeline_lag_seconds_bucket{le="25.6",service="payments"} 0.0' in text
    assert 'impact_pipeline_lag_seconds_sum{service="payments"} 150.01\n' in text


def test_quantiles_interpolate_within_a_bucket_and_the_history_is_bounded() -> None:
    counts = lag_counts([int(10 * SECOND)] * 99 + [int(1000 * SECOND)])
    figures = quantiles(counts)
    assert figures.events == 100
    assert 10 / BUCKET_WIDTH <= figures.p50_s <= 10 * BUCKET_WIDTH
    assert 10 / BUCKET_WIDTH <= figures.p99_s <= 10 * BUCKET_WIDTH  # the 99th of 100 is still a 10 s one
    assert counts[-1] == 99 * 10_000 + 1_000_000  # the sum, in milliseconds
    assert quantiles(np.zeros(len(LAG_BOUNDS_S) + 2, dtype=np.int64)).p50_s is None
    history = LagHistory()
    for index in range(1100):
        history.add("checkout", f"service-{index}", 0, counts)
    assert len(history.by_service) <= 1024 + 1
    assert "_other" in history.by_service
    history.prune(7 * 3600 * SECOND)
    assert history.quantiles("checkout", 0, MINUTE).events == 0
