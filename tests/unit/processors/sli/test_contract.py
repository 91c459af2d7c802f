"""The query contract the SLO engine builds on, and the analyzer protocol the pipeline calls."""

from __future__ import annotations

import pytest
from support.otlp_traces import batch, request, span

import otel_impact.processors.sli as sli
from otel_impact.processors.api.documents import impact_document
from otel_impact.processors.batch import BatchAnalyzer
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import EventCounts, ImpactQueries, SliConfig, SliEngine, SliQueries

MINUTE = 60 * 10**9
T0 = 1_800_000_000 * 10**9 // MINUTE * MINUTE


def test_public_names() -> None:
    assert set(sli.__all__) == {
        "DimensionConfig",
        "EventCounts",
        "ImpactQueries",
        "LossDetectionConfig",
        "SliCollector",
        "SliConfig",
        "SliEngine",
        "SliQueries",
        "SuccessConfig",
        "TaskConfig",
        "TaskMatch",
        "TierConfig",
        "build_metrics_request",
    }


def test_engine_is_an_analyzer_and_queries_fit_the_contract() -> None:
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(
        SliConfig.from_mapping({"tasks": [{"name": "checkout", "latency_thresholds": ["250ms"]}]}), clock=clock
    )
    assert isinstance(engine, BatchAnalyzer) and engine.name == "sli"
    queries = SliQueries(engine)
    assert isinstance(queries, ImpactQueries)
    clock.advance(120)
    now = clock.now_ns()
    spans = [
        span(end_ns=now - 30 * 10**9, duration_ms=100 * i, attributes={"impact.task.name": "checkout"})
        for i in range(5)
    ]
    engine.analyze(batch(request(spans), now))
    assert queries.tasks() == ["checkout"]
    assert list(queries.dimensions("checkout")) == ["tier"]
    assert list(queries.latency_thresholds("checkout")) == [0.25]
    # Bounds are floored to the minute: [now - 5m + 59s, now + 59s) is [now - 5m, now).
    result = queries.counts("checkout", now - 5 * MINUTE + 59 * 10**9, now + 59 * 10**9)
    assert result == {(): EventCounts(total=5, good=5, bad=0, latency_met={0.25: 3})}
    assert queries.counts("checkout", now - 5 * MINUTE, now, by=["tier"]) == {
        ("unknown",): EventCounts(total=5, good=5, bad=0, latency_met={0.25: 3})
    }
    assert queries.counts("checkout", now - 5 * MINUTE, now, by=["tier"], where={"tier": "pro"}) == {}
    assert queries.counts("checkout", now - 40 * 86_400 * 10**9 // 8, now)[()].total == 5  # 5 days
    assert impact_document(queries.impact("checkout", now - 5 * MINUTE, now + MINUTE))["events"]["total"] == 5
    assert queries.telemetry_complete("checkout", now) == (True, None)
    for call in (
        lambda: queries.counts("nope", now - MINUTE, now),
        lambda: queries.dimensions("nope"),
        lambda: queries.latency_thresholds("nope"),
        lambda: queries.impact("nope", now - MINUTE, now),
        lambda: queries.telemetry_complete("nope", now),
    ):
        with pytest.raises(KeyError):
            call()
    with pytest.raises(ValueError, match="unknown dimension"):
        queries.counts("checkout", now - MINUTE, now, by=["region"])
    with pytest.raises(ValueError, match="35 days"):
        queries.counts("checkout", now - 36 * 86_400 * 10**9, now)


def test_a_failing_batch_is_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    engine = SliEngine(SliConfig(), clock=ManualClock(start_ns=T0))
    broken = batch(request([span(end_ns=T0, attributes={"impact.task.name": "x"})]), T0)
    object.__setattr__(broken, "view", object())  # not a parsed view at all (None now means "parse the data")
    engine.analyze(broken)
    assert engine.errors == 1 and "still forwarded" in caplog.text
