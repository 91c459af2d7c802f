"""Real SDK, real OTLP exporters (gRPC and HTTP), a real receiver: what arrives, and what never does."""

from __future__ import annotations

import pytest
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from support.canaries import CANARIES, TEST_KEY_HEX, assert_no_canary
from support.otlp_sink import OtlpSink

import otel_impact
from otel_impact import HashKey, Pseudonymizer

EXPECTED = {c: Pseudonymizer(HashKey(bytes.fromhex(TEST_KEY_HEX), source="t")).pseudonymize(c) for c in CANARIES}


@pytest.fixture(scope="module")
def sink() -> OtlpSink:
    with OtlpSink() as running:
        yield running  # type: ignore[misc]


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_enriched_spans_arrive_and_no_raw_id_leaves(sink: OtlpSink, hash_key: str, transport: str) -> None:
    sink.received.clear()
    exporter = (
        GrpcExporter(endpoint=sink.grpc_endpoint, insecure=True)
        if transport == "grpc"
        else HttpExporter(endpoint=sink.http_traces_url)
    )
    provider = TracerProvider(resource=Resource({"service.name": f"svc-{transport}"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    otel_impact.configure(provider)
    tracer = provider.get_tracer("t")
    headers: list[dict[str, str]] = []

    for canary in CANARIES:
        with tracer.start_as_current_span("POST /checkout", kind=trace.SpanKind.SERVER) as server:
            server.set_attribute("enduser.id", canary)  # a raw ID set by other code
            otel_impact.set_customer(canary, tier="pro")
            otel_impact.set_feature_flag("new_checkout", "on")
            with otel_impact.user_task("checkout", value=12.5, tracer_provider=provider):
                with tracer.start_as_current_span("call payments", kind=trace.SpanKind.CLIENT):
                    carrier: dict[str, str] = {}
                    propagate.inject(carrier)
                    headers.append(carrier)
    assert provider.force_flush()

    spans = sink.wait_for_spans(3 * len(CANARIES))
    assert len(spans) == 3 * len(CANARIES)
    assert {s.resource["service.name"] for s in spans} == {f"svc-{transport}"}
    key_id = otel_impact.impact_resource().attributes["impact.hash.key_id"]
    assert {s.resource["impact.hash.key_id"] for s in spans} == {key_id}
    hashes = set()
    for span in spans:
        assert span.attributes["impact.customer.tier"] == "pro"
        assert span.attributes["impact.feature_flags"] == ("new_checkout=on",)
        hashes.add(span.attributes["impact.customer.hash"])
        if span.name == "POST /checkout":
            assert span.attributes["enduser.id"] == span.attributes["impact.customer.hash"]
        else:
            assert span.attributes["impact.task.name"] == "checkout"
            assert span.attributes["impact.task.root"] is (span.name == "checkout")
    assert hashes == set(EXPECTED.values())

    assert_no_canary(sink.raw_bytes(), where=f"OTLP/{transport} export")
    for carrier in headers:
        assert_no_canary(repr(carrier).encode(), where="outgoing headers")
        assert "impact.customer.hash" in carrier["baggage"]
    provider.shutdown()
