"""Two services over real HTTP: B's spans carry A's pseudonym; forged baggage is not trusted."""

from __future__ import annotations

import requests
from opentelemetry import baggage as baggage_api
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from support.canaries import CANARY_EMAIL, TEST_KEY_HEX, assert_no_canary
from support.otlp_sink import OtlpSink
from support.processes import service

import otel_impact
from otel_impact import is_pseudonym
from otel_impact._baggage import BAGGAGE_CONTEXT_KEY

KEY_ENV = {"OTEL_IMPACT_HASH_KEY": TEST_KEY_HEX}


def test_downstream_service_carries_the_callers_pseudonym(hash_key: str) -> None:
    with (
        OtlpSink() as sink,
        service(
            "wsgi_service.py", [sink.http_traces_url], {**KEY_ENV, "OTEL_IMPACT_TRUST_INCOMING_BAGGAGE": "true"}
        ) as b,
    ):
        provider = TracerProvider(resource=Resource({"service.name": "service-a"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=sink.http_traces_url)))
        otel_impact.configure(provider)
        instrumentor = RequestsInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        try:
            tracer = provider.get_tracer("a")
            with tracer.start_as_current_span("a.request"):
                otel_impact.set_customer(CANARY_EMAIL, tier="enterprise")
                otel_impact.set_feature_flag("new_checkout", "on")
                with otel_impact.user_task("checkout", tracer_provider=provider):
                    echoed = requests.get(f"http://127.0.0.1:{b.port}/pay", timeout=10).text
        finally:
            instrumentor.uninstrument()
        spans = sink.wait_for_spans(5)  # A: its request, the task and the call; B: its two
        provider.shutdown()

    assert len(spans) == 5, sorted((s.resource["service.name"], s.name) for s in spans)
    assert_no_canary(echoed.encode(), where="the baggage header B received")
    assert_no_canary(sink.raw_bytes(), where="exported spans")
    a_hash = next(s.attributes["impact.customer.hash"] for s in spans if s.name == "a.request")
    assert is_pseudonym(a_hash)
    b_spans = [s for s in spans if s.resource["service.name"] == "service-b"]
    assert len(b_spans) == 2 and "b.work" in {s.name for s in b_spans}
    for span in b_spans:
        assert span.attributes["impact.customer.hash"] == a_hash
        assert span.attributes["impact.customer.tier"] == "enterprise"
        assert span.attributes["impact.feature_flags"] == ("new_checkout=on",)
        assert span.attributes["impact.task.name"] == "checkout"
        assert span.attributes["impact.task.root"] is False  # one task event: A's root span


def test_forged_baggage_is_ignored_by_an_edge_service_that_does_not_trust_it() -> None:
    forged = "impact.customer.tier=enterprise,impact.customer.hash=" + "b" * 32 + ",impact.task.name=checkout"
    with OtlpSink() as sink, service("wsgi_service.py", [sink.http_traces_url], KEY_ENV) as b:
        echoed = requests.get(f"http://127.0.0.1:{b.port}/pay", headers={"baggage": forged}, timeout=10).text
        spans = sink.wait_for_spans(2)
    assert "impact.customer.tier=enterprise" in echoed  # it did arrive...
    assert len(spans) == 2
    for span in spans:  # ...and was not believed
        assert not any(key.startswith("impact.") for key in span.attributes)


def test_the_api_still_keeps_baggage_where_the_direct_read_looks() -> None:
    """`_baggage` reads and writes the API's baggage dict under its context key, for speed (one
    parse per request, one context copy per change), falling back to the public functions when
    the key is gone. This fails, naming the change, when an API upgrade moves it."""
    assert BAGGAGE_CONTEXT_KEY is not None, "opentelemetry-api no longer has opentelemetry.baggage._BAGGAGE_KEY"
    ctx = baggage_api.set_baggage("k", "v")
    assert dict(ctx.get(BAGGAGE_CONTEXT_KEY) or {}) == {"k": "v"}, (
        "opentelemetry-api no longer keeps the baggage dict under opentelemetry.baggage._BAGGAGE_KEY"
    )
