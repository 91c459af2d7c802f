from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

import otel_impact
from otel_impact import ImpactSpanProcessor, _span_write
from otel_impact._span_write import fast_path_available, write_attributes
from otel_impact._state import STATE_KEY, ImpactState

STATE = ImpactState(customer_hash="0" * 32, tier="pro", flags=(("a", "on"),), task="checkout")


def make_provider(**kwargs: Any) -> tuple[TracerProvider, InMemorySpanExporter, ImpactSpanProcessor]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(**kwargs)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    processor = ImpactSpanProcessor(trust_incoming_baggage=False)
    provider.add_span_processor(processor)
    return provider, exporter, processor


def test_this_sdk_supports_the_fast_path() -> None:
    """If an SDK upgrade changes its attribute layout, this fails: the fallback still works,
    but the overhead figures in benchmarks/README.md no longer hold."""
    assert fast_path_available() and _span_write.FAST_PATH


def test_stamps_from_the_parent_context() -> None:
    provider, exporter, _ = make_provider()
    with provider.get_tracer("t").start_as_current_span("s", context=context.set_value(STATE_KEY, STATE)):
        pass
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {
        "impact.customer.hash": "0" * 32,
        "impact.customer.tier": "pro",
        "impact.feature_flags": ("a=on",),
        "impact.task.name": "checkout",
        "impact.task.root": False,
    }


def test_fast_path_and_public_path_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    results = []
    for fast in (True, False):
        provider, exporter, _ = make_provider()
        monkeypatch.setattr(_span_write, "FAST_PATH", fast)
        with provider.get_tracer("t").start_as_current_span(
            "s", context=context.set_value(STATE_KEY, STATE), attributes={"http.route": "/x"}
        ):
            pass
        results.append(dict(exporter.get_finished_spans()[0].attributes or {}))
    assert results[0] == results[1]


def test_attribute_limits_are_respected() -> None:
    provider, exporter, _ = make_provider(span_limits=SpanLimits(max_span_attributes=3))
    with provider.get_tracer("t").start_as_current_span(
        "s", context=context.set_value(STATE_KEY, STATE), attributes={"a": 1, "b": 2}
    ):
        pass
    span = exporter.get_finished_spans()[0]
    assert len(span.attributes or {}) == 3
    assert span.dropped_attributes == 4  # the SDK's own accounting still applies


def test_value_length_limit_is_respected() -> None:
    provider, exporter, _ = make_provider(span_limits=SpanLimits(max_attribute_length=4))
    with provider.get_tracer("t").start_as_current_span("s", context=context.set_value(STATE_KEY, STATE)):
        pass
    assert exporter.get_finished_spans()[0].attributes["impact.customer.tier"] == "pro"  # type: ignore[index]
    assert exporter.get_finished_spans()[0].attributes["impact.customer.hash"] == "0000"  # type: ignore[index]


def test_non_recording_spans_are_left_alone() -> None:
    provider, exporter, processor = make_provider(sampler=ALWAYS_OFF)
    with provider.get_tracer("t").start_as_current_span("s", context=context.set_value(STATE_KEY, STATE)) as span:
        assert not span.is_recording()
    assert exporter.get_finished_spans() == ()
    assert processor.failures == 0


def test_never_raises_and_counts_failures(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        @property
        def span_attributes(self) -> Any:
            raise RuntimeError("corrupt state")

    provider, exporter, processor = make_provider()
    with caplog.at_level(logging.ERROR, logger="otel_impact"):
        for _ in range(3):
            with provider.get_tracer("t").start_as_current_span("s", context=context.set_value(STATE_KEY, Broken())):
                pass
    assert len(exporter.get_finished_spans()) == 3
    assert processor.failures == 3
    assert len([r for r in caplog.records if "could not stamp" in r.getMessage()]) == 1


def test_untrusted_baggage_is_ignored_and_trusted_baggage_is_used() -> None:
    forged = context.get_current()
    for key, value in {
        "impact.customer.hash": "f" * 32,
        "impact.customer.tier": "enterprise",
        "impact.task.name": "checkout",
    }.items():
        forged = baggage.set_baggage(key, value, forged)
    provider, exporter, _ = make_provider()
    trusted = ImpactSpanProcessor(trust_incoming_baggage=True)
    trusting_exporter = InMemorySpanExporter()
    trusting = TracerProvider()
    trusting.add_span_processor(SimpleSpanProcessor(trusting_exporter))
    trusting.add_span_processor(trusted)
    token = context.attach(forged)  # as a server instrumentation attaches the extracted context
    try:
        for tracer in (provider.get_tracer("t"), trusting.get_tracer("t")):
            with tracer.start_as_current_span("s"):
                with tracer.start_as_current_span("child"):
                    pass
    finally:
        context.detach(token)
    assert all("impact.customer.tier" not in (s.attributes or {}) for s in exporter.get_finished_spans())
    for span in trusting_exporter.get_finished_spans():
        assert span.attributes["impact.customer.tier"] == "enterprise"  # type: ignore[index]
        assert span.attributes["impact.task.root"] is False  # type: ignore[index]


def test_trusted_baggage_with_a_raw_id_in_the_hash_slot_is_not_stamped() -> None:
    ctx = baggage.set_baggage("impact.customer.hash", "alice@example.com")
    ctx = baggage.set_baggage("impact.customer.tier", "pro", ctx)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(ImpactSpanProcessor(trust_incoming_baggage=True))
    with provider.get_tracer("t").start_as_current_span("s", context=ctx):
        pass
    attributes = dict(exporter.get_finished_spans()[0].attributes or {})
    assert attributes == {"impact.customer.tier": "pro"}


def test_trust_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_IMPACT_TRUST_INCOMING_BAGGAGE", "true")
    otel_impact._runtime.reset_runtime()
    assert ImpactSpanProcessor().trust_incoming_baggage is True


def test_shutdown_and_flush_are_harmless() -> None:
    processor = ImpactSpanProcessor(trust_incoming_baggage=False)
    assert processor.force_flush() is True
    processor.shutdown()
    processor.shutdown()
    trace.get_current_span()  # nothing global was disturbed


@pytest.mark.parametrize("fast", [True, False])
def test_writing_onto_a_running_span(monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    monkeypatch.setattr(_span_write, "FAST_PATH", fast)
    provider, exporter, _ = make_provider(span_limits=SpanLimits(max_span_attributes=4))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("s", attributes={"a": 1}) as span:
        write_attributes(span, {"impact.customer.tier": "pro", "impact.customer.hash": "0" * 32})
        write_attributes(span, {"x": "1", "y": "2"})  # over the limit of 4: the SDK's own rules apply
    ended = tracer.start_span("ended")
    ended.end()
    write_attributes(ended, {"impact.customer.tier": "pro"})  # ignored, as the SDK ignores it
    first, second = exporter.get_finished_spans()
    assert first.attributes is not None and len(first.attributes) == 4
    assert first.attributes["impact.customer.tier"] == "pro" and first.dropped_attributes == 1
    assert "impact.customer.tier" not in (second.attributes or {})


def test_the_sdk_spans_still_have_the_layout_the_span_writer_writes_to() -> None:
    """Fails when an SDK upgrade changes the span fields `_span_write` writes to directly. The
    writer then takes the public ``Span.set_attributes`` route (same attributes, slower: the
    span processor's overhead figures no longer hold); update `_span_write` to the new layout."""
    provider, _, _ = make_provider()
    span = provider.get_tracer("t").start_span("s")
    problem = _span_write.layout_problem(span)
    span.end()
    assert problem is None, f"opentelemetry-sdk changed shape: {problem}"
    assert _span_write.layout_problem(span) is not None  # an ended span is not written to directly


@pytest.mark.parametrize("values", [STATE.span_attributes, {"impact.customer.tier": "pro"}, {}])
def test_a_span_of_another_layout_gets_the_same_attributes_through_the_public_api(values: Any) -> None:
    """The fallback: a span whose fields are not the known layout is written with ``set_attributes``."""

    class OtherAttributes(BoundedAttributes):  # not exactly the SDK's container: the public route
        pass

    results = []
    for changed in (False, True):
        provider, exporter, _ = make_provider()
        with provider.get_tracer("t").start_as_current_span("s", attributes={"http.route": "/x"}) as span:
            if changed:
                span._attributes = OtherAttributes(  # type: ignore[attr-defined]
                    maxlen=128, attributes=dict(span.attributes or {}), immutable=False
                )
                assert _span_write.layout_problem(span) is not None
            _span_write.write_starting(span, values)
            write_attributes(span, {"impact.task.name": "checkout"})
        results.append(dict(exporter.get_finished_spans()[0].attributes or {}))
    assert results[0] == results[1] == {"http.route": "/x", **values, "impact.task.name": "checkout"}
