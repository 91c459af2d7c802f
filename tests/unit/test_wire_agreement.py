"""The SDK and the impact processor read the wire contract the same way.

Both sides import `otel_impact._attributes`; these tests check the behaviour, not the imports:
the same key and customer ID give the same pseudonym whether the SDK (``set_customer``, the PII
guard) or the processor's identity rewriter makes it; the same attribute keys count as raw
identity on both sides; and a task name is valid on both sides up to the same length.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.canaries import CANARIES, CANARY_EMAIL, CANARY_NUMBER, CANARY_UNICODE, TEST_KEY_HEX, assert_no_canary
from support.otlp_traces import batch, sdk_request

import otel_impact
from otel_impact import HashKey, ImpactSpanProcessor, PiiGuardSpanExporter, Pseudonymizer
from otel_impact import _attributes as wire
from otel_impact._pii_guard import AttributeGuard
from otel_impact._state import valid_task_name
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.pipeline.identity import IdentityRewriter
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.queries import SliQueries
from otel_impact.proto import view

PSEUDONYMIZER = Pseudonymizer(HashKey(bytes.fromhex(TEST_KEY_HEX), source="test"))
CONFIGURED = wire.DEFAULT_PII_ATTRIBUTES
"""The same configured list on both sides: ``OTEL_IMPACT_PII_ATTRIBUTES`` and ``pseudonymization.attributes``."""


def raw_spans(attributes: dict[str, Any]) -> list[ReadableSpan]:
    """An SDK span carrying ``attributes`` as written, with no guard in the way."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("s", attributes=attributes):
        pass
    return list(exporter.get_finished_spans())


def through_sdk_guard(spans: list[ReadableSpan]) -> tuple[dict[str, Any], bytes]:
    """The span's attributes after the SDK's PII guard, and the OTLP bytes the SDK would send."""
    inner = InMemorySpanExporter()
    PiiGuardSpanExporter(inner, attributes=CONFIGURED, pseudonymizer=PSEUDONYMIZER).export(spans)
    guarded = inner.get_finished_spans()
    return dict(guarded[0].attributes or {}), sdk_request(guarded)


def through_processor(spans: list[ReadableSpan]) -> tuple[dict[str, Any], bytes]:
    """The span's attributes after the processor's identity rewriter, and the bytes it forwards."""
    rewriter = IdentityRewriter(CONFIGURED, PSEUDONYMIZER)
    data = sdk_request(spans)  # what a service without the plugin sends
    if rewriter.may_need_rewrite(data) and rewriter.needs_rewrite(view.parse_traces(data)):
        data, _, _ = rewriter.rewrite(data)
    span = ExportTraceServiceRequest.FromString(data).resource_spans[0].scope_spans[0].spans[0]
    return {kv.key: _value(kv.value) for kv in span.attributes}, data


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    return getattr(value, kind)


@pytest.mark.parametrize("customer_id", [*CANARIES, int(CANARY_NUMBER)])
def test_set_customer_and_the_processor_give_the_same_pseudonym(hash_key: str, customer_id: str | int) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(ImpactSpanProcessor(trust_incoming_baggage=False))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with otel_impact.set_customer(customer_id, tier="pro"):
        with provider.get_tracer("t").start_as_current_span("s"):
            pass
    from_sdk = (exporter.get_finished_spans()[0].attributes or {})[wire.CUSTOMER_HASH]

    # A service without the SDK sends the raw ID; the processor rewrites it.
    from_processor, forwarded = through_processor(raw_spans({"enduser.id": customer_id}))

    assert wire.is_pseudonym(from_sdk)
    assert from_processor["enduser.id"] == from_sdk
    assert_no_canary(sdk_request(exporter.get_finished_spans()), where="the SDK's spans")
    assert_no_canary(forwarded, where="the processor's forwarded request")


# Each case: attributes a span carries. Both sides must leave the same attributes, raw identity
# pseudonymized (or removed when it cannot be), everything else untouched.
CASES: dict[str, dict[str, Any]] = {
    "enduser.id": {"enduser.id": CANARY_EMAIL, "other": "x"},
    "user.id as an int": {"user.id": int(CANARY_NUMBER)},
    "user.email": {"user.email": CANARY_UNICODE},
    "an array of IDs": {"enduser.id": [CANARY_EMAIL, CANARY_NUMBER]},
    "the OpenFeature targeting key": {wire.FEATURE_FLAG_CONTEXT_ID: CANARY_EMAIL},
    "a raw ID in the pseudonym slot": {wire.CUSTOMER_HASH: CANARY_NUMBER},
    "a pseudonym in the pseudonym slot": {wire.CUSTOMER_HASH: "0123456789abcdef" * 2, "enduser.id": CANARY_EMAIL},
    "an uppercase pseudonym is not one": {wire.CUSTOMER_HASH: "0123456789ABCDEF" * 2},
    "a value that cannot be pseudonymized": {"enduser.id": 1.5, "other": "x"},
    "no identity at all": {"other": "x", "http.route": "/checkout"},
}


@pytest.mark.parametrize("attributes", CASES.values(), ids=CASES.keys())
def test_the_same_attributes_are_raw_identity_on_both_sides(attributes: dict[str, Any]) -> None:
    spans = raw_spans(attributes)
    from_sdk, sdk_bytes = through_sdk_guard(spans)
    from_processor, processor_bytes = through_processor(spans)
    assert from_sdk == from_processor
    for key, value in attributes.items():
        raw_identity = key in wire.raw_identity_keys(CONFIGURED) or (
            key in wire.CLAIMED_PSEUDONYMS and not wire.is_pseudonym(value)
        )
        if not raw_identity:
            assert from_sdk[key] == value
        elif key in from_sdk:
            assert from_sdk[key] == (
                PSEUDONYMIZER.pseudonymize(value)
                if not isinstance(value, list)
                else tuple(PSEUDONYMIZER.pseudonymize(item) for item in value)
            )
    assert_no_canary(sdk_bytes, where="the SDK guard's output")
    assert_no_canary(processor_bytes, where="the processor's output")


def test_both_sides_watch_the_same_keys() -> None:
    guard = AttributeGuard(CONFIGURED, PSEUDONYMIZER)
    rewriter = IdentityRewriter(CONFIGURED, PSEUDONYMIZER)
    assert guard.keys == frozenset(rewriter.keys) == frozenset(wire.raw_identity_keys(CONFIGURED))
    assert guard.claimed == frozenset(rewriter.claimed) == frozenset(wire.CLAIMED_PSEUDONYMS)
    assert wire.FEATURE_FLAG_CONTEXT_ID in guard.keys
    # Listing the pseudonym slot does not make the SDK's own pseudonyms raw on either side.
    listed = (*CONFIGURED, wire.CUSTOMER_HASH)
    assert AttributeGuard(listed, PSEUDONYMIZER).keys == frozenset(IdentityRewriter(listed, PSEUDONYMIZER).keys)
    assert wire.CUSTOMER_HASH not in IdentityRewriter(listed, PSEUDONYMIZER).keys


def test_the_sdk_accepts_task_names_up_to_the_wire_limit() -> None:
    longest = "t" * wire.MAX_TASK_NAME_LENGTH
    assert valid_task_name(longest) == longest
    assert valid_task_name(longest + "t") is None


def test_the_processor_counts_every_task_name_the_sdk_accepts(hash_key: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(ImpactSpanProcessor(trust_incoming_baggage=False))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    longest = "t" * wire.MAX_TASK_NAME_LENGTH
    with otel_impact.user_task(longest, tracer_provider=provider):
        pass
    with otel_impact.user_task(longest + "t", tracer_provider=provider):  # refused by the SDK: no task span
        pass
    spans = exporter.get_finished_spans()
    assert [span.attributes[wire.TASK_NAME] for span in spans if span.attributes] == [longest]  # type: ignore[index]
    clock = ManualClock(start_ns=time.time_ns() - 30 * 60 * 10**9)
    engine = SliEngine(SliConfig(), clock=clock)  # it has watched for 30 minutes
    clock.advance(30 * 60)
    engine.analyze(batch(sdk_request(spans), clock.now_ns()))
    assert SliQueries(engine).tasks() == [longest]
    assert engine.untracked_task_events == 0


def test_sdk_requests_holding_only_pseudonyms_are_not_rewritten_by_the_processor(hash_key: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(ImpactSpanProcessor(trust_incoming_baggage=False))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for customer in CANARIES:
        with (
            otel_impact.set_customer(customer, tier="pro"),
            otel_impact.user_task("checkout", tracer_provider=provider),
        ):
            with provider.get_tracer("t").start_as_current_span("child"):
                pass
    data = sdk_request(exporter.get_finished_spans())
    rewriter = IdentityRewriter(CONFIGURED, PSEUDONYMIZER)
    assert data.count(wire.CUSTOMER_HASH.encode()) == 6
    assert not rewriter.may_need_rewrite(data)  # a byte search, no walk over the spans
    assert not rewriter.needs_rewrite(view.parse_traces(data))

    mixed = sdk_request(raw_spans({wire.CUSTOMER_HASH: "0123456789abcdef" * 2, "enduser.id": CANARY_EMAIL}))
    assert rewriter.may_need_rewrite(mixed) and rewriter.needs_rewrite(view.parse_traces(mixed))
    _, replaced, removed = rewriter.rewrite(mixed)
    assert (replaced, removed) == (1, 0)  # the pseudonym is kept as it is, not counted

    forged = sdk_request(raw_spans({wire.CUSTOMER_HASH: "x" * 32}))  # the length of a pseudonym, not its shape
    assert rewriter.may_need_rewrite(forged) and rewriter.needs_rewrite(view.parse_traces(forged))


def test_every_name_on_the_wire_is_in_the_documented_wire_table() -> None:
    from support.paths import ROOT  # noqa: PLC0415

    text = (ROOT / "docs" / "sdk.md").read_text(encoding="utf-8")
    table = text.split("## Names on the wire", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([\w.]+)` \|", table, flags=re.MULTILINE))
    names = {
        value
        for key, value in vars(wire).items()
        if key.isupper()
        and isinstance(value, str)
        and value.startswith(wire.BAGGAGE_PREFIX)
        and value != wire.BAGGAGE_PREFIX
    }
    assert wire.SYNTHETIC in names
    assert names <= documented, f"names missing from the wire table in docs/sdk.md: {sorted(names - documented)}"
