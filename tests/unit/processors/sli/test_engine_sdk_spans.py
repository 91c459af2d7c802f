"""The engine reads real SDK spans, as the SDK's own OTLP exporter encodes them."""

from __future__ import annotations

import time

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from support.canaries import CANARY_EMAIL, assert_no_canary
from support.otlp_traces import batch, sdk_request

import otel_impact
from otel_impact import ImpactSpanProcessor, Pseudonymizer, load_hash_key
from otel_impact.processors.api.documents import impact_document, top_customers_document
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.queries import SliQueries

MINUTE = 60 * 10**9


@pytest.fixture
def sdk(hash_key: str) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop", "cloud.region": "eu-west-1"}))
    provider.add_span_processor(ImpactSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def engine_at_now(config: SliConfig | None = None) -> tuple[SliEngine, SliQueries, ManualClock]:
    clock = ManualClock(start_ns=time.time_ns() - 30 * MINUTE)
    engine = SliEngine(config or SliConfig(), clock=clock)  # it has watched for 30 minutes
    clock.advance(30 * 60)
    return engine, SliQueries(engine), clock


def window(clock: ManualClock) -> tuple[int, int]:
    end = clock.now_ns() - clock.now_ns() % MINUTE + MINUTE
    return end - 10 * MINUTE, end


def test_task_roots_count_once_and_children_are_attribution(sdk: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = sdk
    tracer = provider.get_tracer("shop")
    customers = {"pro": ["p1", "p2"], "free": ["f1"]}
    for tier, ids in customers.items():
        for customer in ids:
            with otel_impact.set_customer(customer, tier=tier):
                with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER) as server:
                    server.set_attribute("http.response.status_code", 200)
                    with otel_impact.user_task("checkout", value=30.0, tracer_provider=provider) as task:
                        with tracer.start_as_current_span("charge"):
                            pass
                        with tracer.start_as_current_span("db"):
                            pass
                        if tier == "pro":
                            task.fail("payment_backend_down")
    spans = exporter.get_finished_spans()
    assert len(spans) == 3 * 4
    engine, queries, clock = engine_at_now()
    engine.analyze(batch(sdk_request(spans), clock.now_ns()))

    start, end = window(clock)
    counts = queries.counts("checkout", start, end, by=["tier"])
    assert counts[("pro",)].total == 2 and counts[("pro",)].bad == 2
    assert counts[("free",)].total == 1 and counts[("free",)].good == 1
    impact = impact_document(queries.impact("checkout", start, end))
    assert impact["events"] == {"total": 3, "good": 1, "bad": 2}
    assert impact["impacted_users"]["estimate"] == 2 and impact["users"]["estimate"] == 3
    assert impact["revenue_at_risk"] == 60.0
    pro = next(s for s in impact["segments"] if s["segment"] == {"tier": "pro"})
    assert pro["impacted_users"] == {"estimate": 2, "lower": 2, "upper": 2}
    top = top_customers_document(queries.top_customers("checkout", start, end))
    key = load_hash_key()
    assert key is not None
    pseudonyms = Pseudonymizer(key)
    assert {c["customer"] for c in top["customers"]} == {pseudonyms.pseudonymize("p1"), pseudonyms.pseudonymize("p2")}


def test_http_status_and_status_code_decide_by_default(sdk: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = sdk
    tracer = provider.get_tracer("api")
    cases = [
        ({"http.response.status_code": 503}, None, True),
        ({"http.response.status_code": 404}, None, False),
        ({"http.status_code": 500}, None, True),  # the older attribute, as a fallback
        ({"http.response.status_code": 200}, StatusCode.ERROR, True),
        ({}, None, False),
    ]
    for attributes, status, _ in cases:
        with tracer.start_as_current_span("GET /search", attributes={"impact.task.name": "search", **attributes}) as s:
            if status is not None:
                s.set_status(Status(status))
    engine, queries, clock = engine_at_now()
    engine.analyze(batch(sdk_request(exporter.get_finished_spans()), clock.now_ns()))
    counts = queries.counts("search", *window(clock))[()]
    assert (counts.total, counts.bad) == (len(cases), sum(bad for *_, bad in cases))


def test_flags_from_attributes_and_openfeature_events(sdk: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = sdk
    tracer = provider.get_tracer("web")
    with otel_impact.set_customer("c1", tier="pro"), otel_impact.set_feature_flag("new_checkout", "on"):
        with otel_impact.user_task("checkout", tracer_provider=provider):
            pass
    with otel_impact.set_customer("c2", tier="pro"):
        with tracer.start_as_current_span("checkout", attributes={"impact.task.name": "checkout"}) as s:
            s.add_event(
                "feature_flag.evaluation", {"feature_flag.key": "new_checkout", "feature_flag.result.variant": "off"}
            )
    config = SliConfig.from_mapping(
        {
            "dimensions": [
                {"name": "tier", "attribute": "impact.customer.tier"},
                {"name": "region", "attribute": "cloud.region"},
                {"name": "checkout_variant", "flag": "new_checkout"},
            ]
        }
    )
    engine, queries, clock = engine_at_now(config)
    engine.analyze(batch(sdk_request(exporter.get_finished_spans()), clock.now_ns()))
    counts = queries.counts("checkout", *window(clock), by=["flag:new_checkout", "region"])
    assert {key: c.total for key, c in counts.items()} == {("on", "eu-west-1"): 1, ("off", "eu-west-1"): 1}


def test_explicit_outcome_wins_over_status(sdk: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = sdk
    tracer = provider.get_tracer("web")
    with tracer.start_as_current_span("a", attributes={"impact.task.name": "t", "impact.task.outcome": "success"}) as s:
        s.set_status(Status(StatusCode.ERROR))
    with tracer.start_as_current_span("b", attributes={"impact.task.name": "t", "impact.task.outcome": "failure"}):
        pass
    with tracer.start_as_current_span("c", attributes={"impact.task.name": "t", "impact.task.root": False}):
        pass  # an inherited task span: attribution only
    engine, queries, clock = engine_at_now()
    engine.analyze(batch(sdk_request(exporter.get_finished_spans()), clock.now_ns()))
    counts = queries.counts("t", *window(clock))[()]
    assert (counts.total, counts.good, counts.bad) == (2, 1, 1)


def test_raw_identity_never_reaches_answers(sdk: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    """A misconfigured user attribute carrying raw IDs is counted but never listed or stored."""
    provider, exporter = sdk
    tracer = provider.get_tracer("web")
    attributes = {"impact.task.name": "login", "enduser.id": CANARY_EMAIL, "http.response.status_code": 500}
    with tracer.start_as_current_span("login", attributes=attributes):
        pass
    engine, queries, clock = engine_at_now(SliConfig(user_attribute="enduser.id"))
    engine.analyze(batch(sdk_request(exporter.get_finished_spans()), clock.now_ns()))
    start, end = window(clock)
    impact = impact_document(queries.impact("login", start, end))
    top = top_customers_document(queries.top_customers("login", start, end))
    assert impact["impacted_users"]["estimate"] == 1
    assert [c["customer"] for c in top["customers"]] == ["(not a pseudonym)"]
    assert_no_canary(repr((impact, top)).encode(), where="SLI answers")
    for series in engine.all_series(engine.tasks["login"]):
        for _, cell in series.sketches.overlapping(start, end):
            assert_no_canary(cell.to_bytes(), where="sketch state")


def test_no_tracer_spans_without_task_are_ignored(sdk: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = sdk
    with trace.get_tracer("x", tracer_provider=provider).start_as_current_span("plain"):
        pass
    engine, queries, clock = engine_at_now()
    engine.analyze(batch(sdk_request(exporter.get_finished_spans()), clock.now_ns()))
    assert queries.tasks() == [] and engine.task_events == 0
