from __future__ import annotations

import logging

import pytest
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.canaries import CANARIES, CANARY_EMAIL

import otel_impact
from otel_impact import ImpactSpanProcessor, is_pseudonym


@pytest.fixture
def tracer(provider: TracerProvider, hash_key: str) -> trace.Tracer:
    provider.add_span_processor(ImpactSpanProcessor())
    return provider.get_tracer("test")


def by_name(exporter: InMemorySpanExporter) -> dict[str, dict[str, object]]:
    return {span.name: dict(span.attributes or {}) for span in exporter.get_finished_spans()}


def test_set_customer_stamps_the_current_span_and_later_spans(
    tracer: trace.Tracer, exporter: InMemorySpanExporter
) -> None:
    with tracer.start_as_current_span("server"):
        otel_impact.set_customer(CANARY_EMAIL, tier="pro")
        with tracer.start_as_current_span("child"):
            pass
    spans = by_name(exporter)
    for name in ("server", "child"):
        assert is_pseudonym(spans[name]["impact.customer.hash"])
        assert spans[name]["impact.customer.tier"] == "pro"
    assert spans["server"]["impact.customer.hash"] == spans["child"]["impact.customer.hash"]


def test_same_customer_same_pseudonym_across_requests(tracer: trace.Tracer, exporter: InMemorySpanExporter) -> None:
    for _ in range(2):
        with tracer.start_as_current_span("server"):
            otel_impact.set_customer("42")
    first, second = (s.attributes["impact.customer.hash"] for s in exporter.get_finished_spans())  # type: ignore[index]
    assert first == second


def test_baggage_carries_only_the_pseudonym(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("server"):
        otel_impact.set_customer(CANARY_EMAIL, tier="enterprise")
        otel_impact.set_feature_flag("new_checkout", "on")
        entries = dict(baggage.get_all())
    assert is_pseudonym(entries["impact.customer.hash"])
    assert entries["impact.customer.tier"] == "enterprise"
    assert entries["impact.feature_flags"] == "new_checkout=on"
    assert all(CANARY_EMAIL not in str(value) for value in entries.values())


def test_feature_flags_accumulate_and_replace(tracer: trace.Tracer, exporter: InMemorySpanExporter) -> None:
    with tracer.start_as_current_span("server"):
        otel_impact.set_feature_flag("a", "on")
        otel_impact.set_feature_flag("b", True)  # type: ignore[arg-type]
        otel_impact.set_feature_flag("a", "off")
        with tracer.start_as_current_span("child"):
            pass
    spans = by_name(exporter)
    assert spans["child"]["impact.feature_flags"] == ("b=true", "a=off")
    assert spans["server"]["impact.feature_flags"] == ("b=true", "a=off")


@pytest.mark.parametrize(
    "customer_id",
    [None, "", 12345, b"bytes-id", "x" * 1_000_000, *CANARIES, 1.5, object(), ["list"], True],
)
def test_bad_and_odd_ids_never_raise(tracer: trace.Tracer, exporter: InMemorySpanExporter, customer_id: object) -> None:
    with tracer.start_as_current_span("server"):
        otel_impact.set_customer(customer_id, tier="free")
    attributes = by_name(exporter)["server"]
    assert attributes["impact.customer.tier"] == "free"
    usable = isinstance(customer_id, (str, bytes, int)) and not isinstance(customer_id, bool) and customer_id != ""
    assert ("impact.customer.hash" in attributes) == usable
    if usable:
        assert is_pseudonym(attributes["impact.customer.hash"])


@pytest.mark.parametrize("tier", ["", "x" * 65, 3, "bad\ntier"])
def test_bad_tier_is_ignored(tracer: trace.Tracer, exporter: InMemorySpanExporter, tier: object) -> None:
    with tracer.start_as_current_span("server"):
        otel_impact.set_customer("42", tier=tier)  # type: ignore[arg-type]
    attributes = by_name(exporter)["server"]
    assert "impact.customer.tier" not in attributes
    assert "impact.customer.hash" in attributes


@pytest.mark.parametrize(("key", "variant"), [("", "on"), ("a=b", "on"), ("k", "x,y"), ("k", None), (None, "on")])
def test_bad_flags_are_ignored(
    tracer: trace.Tracer, exporter: InMemorySpanExporter, key: object, variant: object
) -> None:
    with tracer.start_as_current_span("server"):
        otel_impact.set_feature_flag(key, variant)  # type: ignore[arg-type]
    assert "impact.feature_flags" not in by_name(exporter)["server"]


def test_flag_count_is_bounded(tracer: trace.Tracer, exporter: InMemorySpanExporter) -> None:
    with tracer.start_as_current_span("server"):
        for i in range(40):
            otel_impact.set_feature_flag(f"flag{i}", "on")
    assert len(by_name(exporter)["server"]["impact.feature_flags"]) == 32  # type: ignore[arg-type]


def test_without_key_identity_is_refused_with_one_warning(
    provider: TracerProvider, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    provider.add_span_processor(ImpactSpanProcessor())
    tracer = provider.get_tracer("test")
    with caplog.at_level(logging.WARNING, logger="otel_impact"):
        for _ in range(3):
            with tracer.start_as_current_span("server"):
                otel_impact.set_customer(CANARY_EMAIL, tier="pro")
                assert "impact.customer.hash" not in baggage.get_all()
    for span in exporter.get_finished_spans():
        assert "impact.customer.hash" not in (span.attributes or {})
        assert span.attributes["impact.customer.tier"] == "pro"  # type: ignore[index]
    refusals = [r for r in caplog.records if "set_customer() ignored the customer ID" in r.getMessage()]
    assert len(refusals) == 1
    assert all(CANARY_EMAIL not in r.getMessage() for r in caplog.records)


def test_scope_restores_the_previous_context(tracer: trace.Tracer) -> None:
    with otel_impact.set_customer("42", tier="pro"):
        assert baggage.get_baggage("impact.customer.tier") == "pro"
    assert baggage.get_baggage("impact.customer.tier") is None
