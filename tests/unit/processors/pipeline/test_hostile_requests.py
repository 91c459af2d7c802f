"""Hostile requests on the intake path: every request ends counted, and no raw identity is forwarded.

The pipeline is driven in-process, with forwarders that are not started: what `submit` queued is
in each forwarder's queue, exactly the bytes the downstream would get.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from prometheus_client import CollectorRegistry
from support.canaries import CANARIES, CANARY_EMAIL, CANARY_NUMBER, TEST_KEY_HEX, assert_no_canary
from support.otlp_requests import make_request

from otel_impact import HashKey, Pseudonymizer
from otel_impact.processors.accounting import Accounting
from otel_impact.processors.batch import TraceBatch
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.config import ExporterConfig, QueueConfig
from otel_impact.processors.export import Forwarder, Outcome, SendQueue
from otel_impact.processors.intake.status import grpc_code, http_status
from otel_impact.processors.pipeline import Pipeline, Rejection
from otel_impact.processors.pipeline.identity import MAX_DEPTH, IdentityRewriter
from otel_impact.processors.pipeline.pipeline import UNPARSEABLE
from otel_impact.proto.view import count_spans, parse_traces

TRANSPORTS = ("grpc", "http/protobuf", "http/json")
EXPORTER = "grpc://downstream:4317"


class NeverCalled:
    async def export(self, body: bytes) -> Outcome:
        raise AssertionError("the forwarder is not started in these tests")

    async def close(self) -> None:
        pass


class Counting:
    """An analyzer that counts the spans it was given."""

    name = "counting"

    def __init__(self) -> None:
        self.spans = 0

    def analyze(self, batch: TraceBatch) -> None:
        self.spans += batch.span_count


def pseudonymizer() -> Pseudonymizer:
    return Pseudonymizer(HashKey(bytes.fromhex(TEST_KEY_HEX), source="test"))


def make_pipeline(*, pseudonymize: bool = True, analyze: bool = False, max_spans: int = 100_000) -> Pipeline:
    accounting = Accounting(CollectorRegistry())
    clock = ManualClock()
    config = ExporterConfig(endpoint=EXPORTER, queue=QueueConfig(max_requests=10_000, max_bytes=1 << 30))
    forwarder = Forwarder(config, SendQueue(10_000, 1 << 30), NeverCalled(), accounting, clock)
    rewriter = IdentityRewriter(["enduser.id", "user.id"], pseudonymizer()) if pseudonymize else None
    analyzers = [Counting()] if analyze else []
    pipeline = Pipeline([forwarder], accounting, clock, rewriter=rewriter, analyzers=analyzers, max_spans=max_spans)
    pipeline.accepting = True
    return pipeline


def sample(pipeline: Pipeline, name: str, **labels: str) -> float:
    return pipeline.accounting.registry.get_sample_value(name, labels) or 0.0


def spans_total(pipeline: Pipeline, outcome: str) -> float:
    return sum(sample(pipeline, "otel_impact_receiver_spans_total", transport=t, outcome=outcome) for t in TRANSPORTS)


def requests_total(pipeline: Pipeline, outcome: str) -> float:
    return sum(
        sample(pipeline, "otel_impact_receiver_requests_total", transport=t, outcome=outcome) for t in TRANSPORTS
    )


def queued(pipeline: Pipeline) -> list[bytes]:
    return [item.data for item in pipeline.forwarders[0].queue._ready]  # what would be sent


# Requests are built on the wire: protobuf's own encoder refuses to build values nested as
# deeply as a hostile sender does.


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def kv(key: str, value: bytes) -> bytes:
    """KeyValue bytes: ``value`` is AnyValue bytes."""
    return field(1, key.encode()) + field(2, value)


def string(text: str) -> bytes:
    return field(1, text.encode())


def kvlist(*pairs: bytes) -> bytes:
    return field(6, b"".join(field(1, pair) for pair in pairs))


def array(*values: bytes) -> bytes:
    return field(5, b"".join(field(1, value) for value in values))


def nested(depth: int, leaf: bytes) -> bytes:
    """``leaf`` (AnyValue bytes) inside ``depth`` levels of kvlists."""
    value = leaf
    for _ in range(depth):
        value = kvlist(kv("inner", value))
    return value


def attributes(number: int, pairs: Sequence[bytes]) -> bytes:
    return b"".join(field(number, pair) for pair in pairs)


def build(
    spans: int = 1,
    *,
    resource: Sequence[bytes] = (),
    scope: Sequence[bytes] = (),
    span: Sequence[bytes] = (),
    event: Sequence[bytes] | None = None,
    link: Sequence[bytes] | None = None,
) -> bytes:
    """A request of ``spans`` spans with extra attributes in each position (raw KeyValue bytes)."""
    base = ExportTraceServiceRequest.FromString(make_request(spans)).resource_spans[0].scope_spans[0].spans
    encoded = b""
    for each in base:
        body = each.SerializeToString() + attributes(9, span)
        if event is not None:
            body += field(11, field(2, b"e") + attributes(3, event))
        if link is not None:
            body += field(13, field(1, b"\1" * 16) + field(2, b"\2" * 8) + attributes(4, link))
        encoded += field(2, body)
    resource_message = attributes(1, [kv("service.name", string("svc")), *resource])
    scope_spans = field(1, field(1, b"tests") + attributes(3, scope)) + encoded
    return field(1, field(1, resource_message) + field(2, scope_spans))


def request_with(**where: Sequence[bytes]) -> bytes:
    """One span, with extra attributes at ``resource``, ``scope``, ``span``, ``event`` or ``link``."""
    return build(1, **where)  # type: ignore[arg-type]


def raw_id(key: str = "enduser.id", value: str = CANARY_EMAIL) -> bytes:
    return kv(key, string(value))


# -- finding: requests that vanished from the accounting --------------------------------------------


def test_a_raw_identity_with_a_value_nested_60_deep_is_refused_as_invalid_and_counted() -> None:
    pipeline = make_pipeline()
    deep = kv("deep", nested(60, string("x")))
    data = request_with(span=[raw_id(), deep])
    rejection = pipeline.submit(data, "grpc")
    assert rejection is not None and rejection.reason == "invalid"
    assert grpc_code(rejection).name == "INVALID_ARGUMENT" and http_status(rejection) == 400
    assert spans_total(pipeline, "rejected") == 1 and requests_total(pipeline, "rejected") == 1
    assert queued(pipeline) == []


def test_values_nested_past_the_depth_limit_are_refused_even_below_protobufs_own_limit() -> None:
    pipeline = make_pipeline()
    ok = request_with(span=[raw_id(), kv("d", nested(MAX_DEPTH - 1, string("x")))])
    deep = request_with(span=[raw_id(), kv("d", nested(MAX_DEPTH + 1, string("x")))])
    assert pipeline.submit(ok, "grpc") is None
    rejection = pipeline.submit(deep, "grpc")
    assert rejection is not None and rejection.reason == "invalid" and f"{MAX_DEPTH} levels" in rejection.message
    assert spans_total(pipeline, "accepted") == 1 and spans_total(pipeline, "rejected") == 1


def test_an_identity_value_that_is_not_utf8_is_refused_as_invalid_and_counted() -> None:
    pipeline = make_pipeline()
    marker = "UTF8-MARKER-0123456789"
    data = request_with(span=[raw_id(value=marker)]).replace(marker.encode(), b"\xff\xfe" + b"x" * (len(marker) - 2))
    rejection = pipeline.submit(data, "http/protobuf")
    assert rejection is not None and rejection.reason == "invalid" and http_status(rejection) == 400
    assert spans_total(pipeline, "rejected") == 1
    assert queued(pipeline) == []


def test_a_fault_inside_the_processor_is_answered_internal_and_counted_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pipeline = make_pipeline()

    def broken(data: bytes) -> tuple[bytes, int, int]:
        raise RuntimeError("a bug")

    assert pipeline.rewriter is not None
    pipeline.rewriter.rewrite = broken  # type: ignore[method-assign]
    data = request_with(span=[raw_id()])
    with caplog.at_level(logging.WARNING, logger="otel_impact.processor"):
        answers = [pipeline.submit(data, "grpc") for _ in range(50)]
    assert {a.reason if a else None for a in answers} == {"internal"}
    first = answers[0]
    assert first is not None and grpc_code(first).name == "INTERNAL" and http_status(first) == 500
    assert spans_total(pipeline, "rejected") == 50
    assert sample(pipeline, "otel_impact_receiver_rejected_requests_total", transport="grpc", reason="internal") == 50
    records = [r for r in caplog.records if "failed inside the processor" in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is not None  # one line, one traceback, not fifty


def test_a_queue_that_raises_leaves_nothing_half_queued() -> None:
    pipeline = make_pipeline(pseudonymize=False)
    queue = pipeline.forwarders[0].queue

    def broken(data: bytes, spans: int) -> object:
        raise MemoryError("no room")

    queue.put = broken  # type: ignore[assignment,method-assign]
    rejection = pipeline.submit(make_request(3), "grpc")
    assert rejection is not None and rejection.reason == "internal"
    assert spans_total(pipeline, "rejected") == 3 and queue.requests == 0


# -- finding: amplification -------------------------------------------------------------------------


def test_a_request_with_more_spans_than_the_limit_is_refused_naming_the_setting() -> None:
    pipeline = make_pipeline(pseudonymize=False, max_spans=10)
    assert pipeline.submit(make_request(10), "grpc") is None
    rejection = pipeline.submit(make_request(11), "grpc")
    assert rejection is not None and rejection.reason == "too_many_spans"
    assert "receivers.max_spans_per_request" in rejection.message and "10" in rejection.message
    assert grpc_code(rejection).name == "RESOURCE_EXHAUSTED" and http_status(rejection) == 413
    labels = {"transport": "grpc", "reason": "too_many_spans"}
    assert sample(pipeline, "otel_impact_receiver_rejected_spans_total", **labels) == 11
    assert len(queued(pipeline)) == 1


def test_the_default_span_limit_refuses_a_two_million_span_request() -> None:
    pipeline = make_pipeline(pseudonymize=False)
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for _ in range(100_001):
        spans.add()
    rejection = pipeline.submit(request.SerializeToString(), "grpc")
    assert rejection is not None and rejection.reason == "too_many_spans"


# -- finding: raw identities forwarded --------------------------------------------------------------

POSITIONS = ("resource", "scope", "span", "event", "link")


def in_kvlist(pair: bytes) -> bytes:
    return kv("user", nested(3, kvlist(pair)))


def in_array(pair: bytes) -> bytes:
    return kv("users", array(string("first"), kvlist(pair)))


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("wrap", [lambda kv: kv, in_kvlist, in_array], ids=["plain", "kvlist", "array"])
def test_identities_are_pseudonymized_wherever_an_attribute_can_sit(position: str, wrap: object) -> None:
    pipeline = make_pipeline()
    attributes = [
        wrap(raw_id()),
        wrap(raw_id("user.id", CANARY_NUMBER)),
        wrap(raw_id("impact.customer.hash", CANARIES[2])),
    ]  # type: ignore[operator]
    assert pipeline.submit(request_with(**{position: attributes}), "grpc") is None
    [forwarded] = queued(pipeline)
    assert_no_canary(forwarded, where=f"a request forwarded with identities in {position}")
    assert pseudonymizer().pseudonymize(CANARY_EMAIL).encode() in forwarded
    assert sample(pipeline, "otel_impact_pseudonymized_values_total", action="replaced") == 3


def test_a_request_that_only_mentions_a_key_name_is_forwarded_as_its_original_bytes() -> None:
    pipeline = make_pipeline()
    data = make_request(2, attributes={"note": "enduser.id is set by the login service"})
    assert pipeline.submit(data, "grpc") is None
    assert queued(pipeline)[0] is data
    assert sample(pipeline, "otel_impact_pseudonymized_requests_total") == 0


# -- the property: every request ends counted ------------------------------------------------------

PLAIN = st.one_of(
    st.text(max_size=20).map(lambda s: AnyValue(string_value=s).SerializeToString()),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(lambda i: AnyValue(int_value=i).SerializeToString()),
    st.floats(allow_nan=True).map(lambda f: AnyValue(double_value=f).SerializeToString()),
    st.binary(max_size=20).map(lambda b: AnyValue(bytes_value=b).SerializeToString()),
    st.booleans().map(lambda b: AnyValue(bool_value=b).SerializeToString()),
)
IDENTITIES = st.one_of(PLAIN, st.sampled_from(CANARIES).map(string))
"""Values of identity keys: canaries among them (which must never be forwarded)."""
IDENTITY_KEYS = st.sampled_from(["enduser.id", "user.id", "impact.customer.hash", "feature_flag.context.id"])
OTHER_KEYS = st.sampled_from(["tier", "x"])
DEPTHS = st.sampled_from([1, 2, 5, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 40, 70])


@st.composite
def deep_values(draw: st.DrawFn) -> bytes:
    """A value of a non-identity key: nested kvlists and arrays, with identities inside at times."""
    depth = draw(DEPTHS)
    shape = draw(st.sampled_from(["plain", "array", "identity"]))
    if shape == "plain":
        return nested(depth, draw(PLAIN))
    if shape == "array":
        return array(draw(PLAIN), nested(depth, draw(PLAIN)), kvlist(kv(draw(IDENTITY_KEYS), draw(IDENTITIES))))
    return nested(depth, kvlist(kv(draw(IDENTITY_KEYS), draw(IDENTITIES))))


ATTRIBUTES = st.lists(
    st.one_of(st.builds(kv, IDENTITY_KEYS, IDENTITIES), st.builds(kv, OTHER_KEYS, st.one_of(PLAIN, deep_values()))),
    max_size=4,
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, bool]:
    """Requests with identities anywhere, at any depth; mangled at times (invalid UTF-8, a flipped
    byte, random bytes). Also says whether it was mangled."""
    data = b""
    for _ in range(draw(st.integers(0, 2))):
        resource = attributes(1, draw(ATTRIBUTES))
        scopes = b""
        for _ in range(draw(st.integers(0, 2))):
            spans = b""
            for _ in range(draw(st.integers(0, 3))):
                body = field(2, b"s") + field(1, bytes(16)) + attributes(9, draw(ATTRIBUTES))
                if draw(st.booleans()):
                    body += field(11, field(2, b"e") + attributes(3, draw(ATTRIBUTES)))
                if draw(st.booleans()):
                    body += field(13, attributes(4, draw(ATTRIBUTES)))
                spans += field(2, body)
            scopes += field(2, field(1, attributes(3, draw(ATTRIBUTES))) + spans)
        data += field(1, field(1, resource) + scopes)
    mangle = draw(st.sampled_from(["none", "none", "utf8", "flip", "random"]))
    if mangle == "utf8" and CANARY_EMAIL.encode() in data:
        data = data.replace(b"canary", b"\xff\xfe\xfd\xfc\xfb\xfa", 1)
    elif mangle == "flip" and data:
        index = draw(st.integers(0, len(data) - 1))
        data = data[:index] + bytes([data[index] ^ draw(st.integers(1, 255))]) + data[index + 1 :]
    elif mangle == "random":
        data = draw(st.binary(max_size=200))
    return data, mangle != "none"


def span_count(data: bytes) -> int | None:
    """The spans in ``data``, or ``None`` when it does not parse as an OTLP request."""
    try:
        return count_spans(data)
    except DecodeError:
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn=requests(), pseudonymize=st.booleans(), analyze=st.booleans())
def test_every_request_ends_counted_and_no_exception_escapes(
    drawn: tuple[bytes, bool], pseudonymize: bool, analyze: bool
) -> None:
    data, mangled = drawn
    pipeline = make_pipeline(pseudonymize=pseudonymize, analyze=analyze)
    rejection = pipeline.submit(data, "grpc")  # must not raise
    expected = span_count(data)
    accepted, rejected = spans_total(pipeline, "accepted"), spans_total(pipeline, "rejected")
    assert requests_total(pipeline, "accepted") + requests_total(pipeline, "rejected") == 1
    if expected is None or (rejection is not None and rejection.message == UNPARSEABLE):
        assert isinstance(rejection, Rejection) and rejection.reason == "invalid"
        assert accepted == rejected == 0  # unparseable: counted as a request only
    else:
        assert accepted + rejected == expected
        assert (rejection is None) == (requests_total(pipeline, "accepted") == 1)
    if rejection is not None:
        assert rejection.reason != "internal", rejection
        assert queued(pipeline) == []
    elif pseudonymize and not mangled:
        for forwarded in queued(pipeline):
            assert_no_canary(forwarded, where="a forwarded request")


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("wrap", [lambda kv: kv, in_kvlist, in_array], ids=["plain", "kvlist", "array"])
def test_the_view_check_sees_identities_in_every_position(position: str, wrap: object) -> None:
    rewriter = IdentityRewriter(["enduser.id"], pseudonymizer())
    data = request_with(**{position: [wrap(raw_id())]})  # type: ignore[operator]
    assert rewriter.may_need_rewrite(data) and rewriter.needs_rewrite(parse_traces(data))
    assert not rewriter.needs_rewrite(parse_traces(request_with(**{position: [wrap(kv("other", string("x")))]})))  # type: ignore[operator]
