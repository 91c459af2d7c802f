from __future__ import annotations

from importlib.metadata import entry_points

import pytest
from opentelemetry import baggage, propagate
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider
from support.canaries import CANARY_EMAIL

import otel_impact
from otel_impact import ImpactSpanProcessor, PiiGuardSpanExporter, SdkSettings
from otel_impact._baggage import ImpactBaggageFilter
from otel_impact._setup import _sdk_exporter_slots, _sdk_replace_resource, guard_exporters

FORGED = {
    "baggage": "impact.customer.tier=enterprise,impact.customer.hash=" + "a" * 32 + ",other=kept",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
}


def test_configure_wires_everything_once(hash_key: str) -> None:
    batch_exporter, simple_exporter = InMemorySpanExporter(), InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "svc"}))
    batch = BatchSpanProcessor(batch_exporter)
    simple = SimpleSpanProcessor(simple_exporter)
    provider.add_span_processor(batch)
    provider.add_span_processor(simple)

    processor = otel_impact.configure(provider)
    assert isinstance(processor, ImpactSpanProcessor)
    assert otel_impact.configure(provider) is processor  # idempotent
    assert isinstance(simple.span_exporter, PiiGuardSpanExporter)
    assert isinstance(batch._batch_processor._exporter, PiiGuardSpanExporter)  # type: ignore[attr-defined]
    assert guard_exporters(provider) == 2  # not wrapped twice
    assert not isinstance(simple.span_exporter.exporter, PiiGuardSpanExporter)  # type: ignore[attr-defined]

    key_id = provider.resource.attributes["impact.hash.key_id"]
    assert key_id == otel_impact.impact_resource().attributes["impact.hash.key_id"]
    with provider.get_tracer("t").start_as_current_span("s", attributes={"enduser.id": CANARY_EMAIL}):
        otel_impact.set_customer(CANARY_EMAIL, tier="pro")
    (span,) = simple_exporter.get_finished_spans()
    assert span.resource.attributes["impact.hash.key_id"] == key_id
    assert span.attributes["enduser.id"] == span.attributes["impact.customer.hash"]  # type: ignore[index]
    assert isinstance(propagate.get_global_textmap(), ImpactBaggageFilter)
    provider.shutdown()


def test_configure_refuses_a_non_sdk_provider() -> None:
    with pytest.raises(TypeError, match=r"needs an opentelemetry\.sdk\.trace\.TracerProvider"):
        otel_impact.configure(NoOpTracerProvider())  # type: ignore[arg-type]


def test_configure_without_key_adds_no_key_id() -> None:
    provider = TracerProvider(resource=Resource({"service.name": "svc"}))
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    otel_impact.configure(provider)
    assert "impact.hash.key_id" not in provider.resource.attributes


@pytest.mark.parametrize("trust", [False, True])
def test_untrusted_incoming_baggage_is_dropped_at_extract(trust: bool) -> None:
    provider = TracerProvider()
    otel_impact.configure(provider, settings=SdkSettings(trust_incoming_baggage=trust))
    extracted = baggage.get_all(propagate.extract(FORGED))
    assert extracted.get("other") == "kept"
    assert ("impact.customer.tier" in extracted) is trust
    # the filter is replaced, not stacked
    otel_impact.configure(TracerProvider(), settings=SdkSettings(trust_incoming_baggage=trust))
    textmap = propagate.get_global_textmap()
    assert isinstance(textmap, ImpactBaggageFilter) and not isinstance(textmap.inner, ImpactBaggageFilter)


def test_the_resource_detector_entry_point(hash_key: str) -> None:
    (entry,) = [e for e in entry_points(group="opentelemetry_resource_detector") if e.name == "otel_impact"]
    detected = entry.load()().detect()
    assert detected.attributes["impact.hash.key_id"] == otel_impact.impact_resource().attributes["impact.hash.key_id"]


def test_the_sdk_still_has_the_layout_configure_reaches_into() -> None:
    """`configure` reaches SDK fields that have no public API (see `_sdk_exporter_slots` and
    `_sdk_replace_resource`). When an SDK upgrade moves one, this names it; `configure` then
    guards no exporter (and warns) or leaves the resource as it is."""
    provider = TracerProvider(resource=Resource({"service.name": "svc"}), shutdown_on_exit=False)
    batch_exporter, simple_exporter = InMemorySpanExporter(), InMemorySpanExporter()
    batch = BatchSpanProcessor(batch_exporter)
    provider.add_span_processor(batch)
    provider.add_span_processor(SimpleSpanProcessor(simple_exporter))
    try:
        active = getattr(provider, "_active_span_processor", None)
        assert batch in tuple(getattr(active, "_span_processors", ())), (
            "opentelemetry-sdk changed shape: TracerProvider._active_span_processor._span_processors "
            "no longer lists the added span processors"
        )
        exporters = [getattr(holder, name) for holder, name in _sdk_exporter_slots(provider)]
        assert exporters == [batch_exporter, simple_exporter], (
            "opentelemetry-sdk changed shape: BatchSpanProcessor._batch_processor._exporter or "
            "SimpleSpanProcessor.span_exporter no longer holds the exporter"
        )
        merged = provider.resource.merge(Resource({"impact.hash.key_id": "k"}))
        assert _sdk_replace_resource(provider, merged), (
            "opentelemetry-sdk changed shape: TracerProvider keeps its resource elsewhere than in `_resource`"
        )
        assert provider.resource is merged
        assert provider.get_tracer("t").resource is merged  # tracers made later carry it
    finally:
        provider.shutdown()
