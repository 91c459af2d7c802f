from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link
from support.canaries import CANARIES, CANARY_EMAIL, CANARY_NUMBER, TEST_KEY_HEX

from otel_impact import HashKey, PiiGuardSpanExporter, Pseudonymizer, is_pseudonym

PSEUDONYMIZER = Pseudonymizer(HashKey(bytes.fromhex(TEST_KEY_HEX), source="test"))


def guarded_provider(**guard_kwargs: object) -> tuple[TracerProvider, InMemorySpanExporter, PiiGuardSpanExporter]:
    inner = InMemorySpanExporter()
    guard = PiiGuardSpanExporter(inner, **guard_kwargs)  # type: ignore[arg-type]
    provider = TracerProvider(resource=Resource({"service.name": "svc", "user.id": CANARY_NUMBER}))
    provider.add_span_processor(SimpleSpanProcessor(guard))
    return provider, inner, guard


def test_raw_identity_is_replaced_by_the_same_pseudonym_as_set_customer() -> None:
    provider, inner, guard = guarded_provider(pseudonymizer=PSEUDONYMIZER)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("s", attributes={"enduser.id": CANARY_EMAIL, "http.route": "/x"}) as span:
        span.add_event("login", {"user.email": CANARY_EMAIL})
        span.set_attribute("user.id", [CANARY_NUMBER, CANARY_EMAIL])
    with tracer.start_as_current_span("linked", links=[Link(span.get_span_context(), {"enduser.id": CANARY_NUMBER})]):
        pass
    first, second = inner.get_finished_spans()
    assert first.attributes["enduser.id"] == PSEUDONYMIZER.pseudonymize(CANARY_EMAIL)  # type: ignore[index]
    assert first.attributes["http.route"] == "/x"  # type: ignore[index]
    assert first.attributes["user.id"] == tuple(PSEUDONYMIZER.pseudonymize(x) for x in (CANARY_NUMBER, CANARY_EMAIL))  # type: ignore[index]
    assert is_pseudonym(first.events[0].attributes["user.email"])  # type: ignore[index]
    assert is_pseudonym(second.links[0].attributes["enduser.id"])  # type: ignore[index]
    assert first.resource.attributes["user.id"] == PSEUDONYMIZER.pseudonymize(CANARY_NUMBER)
    assert first.resource.attributes["service.name"] == "svc"
    assert guard.guard.replaced >= 5
    for span in (first, second):
        assert not any(c in repr(span.to_json()) for c in CANARIES)


def test_clean_spans_pass_through_as_the_same_objects() -> None:
    inner = InMemorySpanExporter()
    guard = PiiGuardSpanExporter(inner, pseudonymizer=PSEUDONYMIZER)
    span = ReadableSpan("s", resource=Resource({"service.name": "svc"}), attributes={"http.route": "/x"})
    guard.export([span])
    assert inner.get_finished_spans()[0] is span


def test_a_raw_value_in_the_hash_attribute_is_pseudonymized() -> None:
    provider, inner, _ = guarded_provider(pseudonymizer=PSEUDONYMIZER)
    with provider.get_tracer("t").start_as_current_span("s", attributes={"impact.customer.hash": CANARY_EMAIL}):
        pass
    assert inner.get_finished_spans()[0].attributes["impact.customer.hash"] == PSEUDONYMIZER.pseudonymize(  # type: ignore[index]
        CANARY_EMAIL
    )


def test_without_key_raw_identity_is_removed(caplog: pytest.LogCaptureFixture) -> None:
    provider, inner, guard = guarded_provider(pseudonymizer=None)
    with caplog.at_level(logging.WARNING, logger="otel_impact"):
        for _ in range(2):
            with provider.get_tracer("t").start_as_current_span("s", attributes={"enduser.id": CANARY_EMAIL, "k": 1}):
                pass
    for span in inner.get_finished_spans():
        assert dict(span.attributes or {}) == {"k": 1}
        assert "user.id" not in span.resource.attributes
    assert guard.guard.removed >= 2
    assert len([r for r in caplog.records if "PII guard removed" in r.getMessage()]) == 1


def test_configurable_attribute_list() -> None:
    provider, inner, _ = guarded_provider(pseudonymizer=PSEUDONYMIZER, attributes=["app.account"])
    with provider.get_tracer("t").start_as_current_span("s", attributes={"app.account": "acct-1", "enduser.id": "e"}):
        pass
    attributes = inner.get_finished_spans()[0].attributes or {}
    assert is_pseudonym(attributes["app.account"])
    assert attributes["enduser.id"] == "e"  # no longer on the list


def test_odd_values_never_break_export() -> None:
    provider, inner, guard = guarded_provider(pseudonymizer=PSEUDONYMIZER)
    with provider.get_tracer("t").start_as_current_span("s", attributes={"enduser.id": 3.5, "user.id": True}):
        pass
    attributes = inner.get_finished_spans()[0].attributes or {}
    assert "enduser.id" not in attributes and "user.id" not in attributes
    assert guard.guard.removed == 2


def test_delegates_lifecycle() -> None:
    inner = InMemorySpanExporter()
    guard = PiiGuardSpanExporter(inner, pseudonymizer=PSEUDONYMIZER)
    assert guard.force_flush() is True
    guard.shutdown()
    assert inner._stopped  # type: ignore[attr-defined]


def test_spans_after_a_clean_one_are_still_guarded() -> None:
    """Once a resource is known clean, spans with nothing to clean pass through untouched, and
    every span that carries raw identity, in attributes, events, links or the hash attribute, is
    still cleaned."""
    inner = InMemorySpanExporter()
    guard = PiiGuardSpanExporter(inner, pseudonymizer=PSEUDONYMIZER)
    provider = TracerProvider(resource=Resource({"service.name": "svc"}))
    provider.add_span_processor(SimpleSpanProcessor(guard))
    tracer = provider.get_tracer("t")
    pseudonym = PSEUDONYMIZER.pseudonymize(CANARY_NUMBER)
    with tracer.start_as_current_span("clean", attributes={"http.route": "/x"}) as clean:
        pass
    with tracer.start_as_current_span("stamped", attributes={"impact.customer.hash": pseudonym}):
        pass
    with tracer.start_as_current_span("raw", attributes={"enduser.id": CANARY_EMAIL}):
        pass
    with tracer.start_as_current_span("raw-hash", attributes={"impact.customer.hash": CANARY_EMAIL}):
        pass
    with tracer.start_as_current_span("event") as span:
        span.add_event("login", {"user.email": CANARY_EMAIL})
    with tracer.start_as_current_span("linked", links=[Link(clean.get_span_context(), {"user.id": CANARY_NUMBER})]):
        pass
    spans = {span.name: span for span in inner.get_finished_spans()}
    assert spans["clean"].attributes == {"http.route": "/x"}
    assert spans["stamped"].attributes == {"impact.customer.hash": pseudonym}
    assert spans["raw"].attributes == {"enduser.id": PSEUDONYMIZER.pseudonymize(CANARY_EMAIL)}
    assert spans["raw-hash"].attributes == {"impact.customer.hash": PSEUDONYMIZER.pseudonymize(CANARY_EMAIL)}
    assert spans["event"].events[0].attributes == {"user.email": PSEUDONYMIZER.pseudonymize(CANARY_EMAIL)}
    assert spans["linked"].links[0].attributes == {"user.id": pseudonym}
    for span in spans.values():
        assert not any(c in span.to_json() for c in CANARIES)


def test_a_span_of_another_layout_takes_the_full_path() -> None:
    inner = InMemorySpanExporter()
    guard = PiiGuardSpanExporter(inner, pseudonymizer=PSEUDONYMIZER)
    resource = Resource({"service.name": "svc"})
    guard.export([ReadableSpan("warm", resource=resource)])  # the resource is now known clean
    stamped = ReadableSpan(
        "stamped", resource=resource, attributes={"impact.customer.hash": PSEUDONYMIZER.pseudonymize(CANARY_EMAIL)}
    )
    guard.export([stamped])
    assert inner.get_finished_spans()[-1] is stamped  # nothing to clean: the same object

    class Unusual(ReadableSpan):
        @property
        def attributes(self) -> dict[str, object]:  # type: ignore[override]
            return {"enduser.id": CANARY_EMAIL}

    odd = Unusual("odd", resource=resource, attributes={"http.route": "/x"})
    odd._attributes = "not a mapping the guard knows"  # type: ignore[assignment]
    guard.export([odd])
    assert inner.get_finished_spans()[-1].attributes == {"enduser.id": PSEUDONYMIZER.pseudonymize(CANARY_EMAIL)}
