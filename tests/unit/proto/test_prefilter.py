"""`prefilter.filter_spans` against its contract: the same accept/reject and span count as
`view.count_spans` on any bytes, and (with the extension) exactly the spans a filter over
`view.parse_traces` keeps. The suite runs these tests with and without the extension (see
scripts/test); where an assertion holds only for the extension, it says so."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from otel_impact.proto import prefilter, view

KEY = b"impact.task.name"
REQUIRE_NATIVE_ENV = "OTEL_IMPACT_REQUIRE_NATIVE"  # CI sets it: the extension must be built there

Row = tuple[bytes, str, bytes, str, bytes]  # resource, its schema URL, scope, its schema URL, span


# -- the reference: what parsing everything and filtering in Python keeps ------------------------


UNLESS: prefilter.Unless = (b"impact.task.root", (b"\x10\x00", b"\x0a\x05false"))
"""Task spans whose root attribute is false (bool or string) are left out, as the analysis does."""


def flatten(
    traces: view.TracesData, key: bytes | None, unless: prefilter.Unless | None = None, below: int = 0
) -> list[Row]:
    """Every span (of those carrying ``key``, when given, and not excluded by ``unless``, or of a
    trace sampled under ``below``) with its resource and scope."""
    name = None if key is None else key.decode()
    other = None if unless is None else unless[0].decode()

    def excluded(span: view.Span) -> bool:
        if prefilter.trace_sampled(span.trace_id, below):
            return False
        return unless is not None and other in span.attributes and span.attributes[other] in unless[1]

    def carries(span: view.Span) -> bool:
        return name is None or name in span.attributes or prefilter.trace_sampled(span.trace_id, below)

    return [
        (
            rs.resource.SerializeToString(deterministic=True),
            rs.schema_url,
            ss.scope,
            ss.schema_url,
            span.SerializeToString(deterministic=True),
        )
        for rs in traces.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
        if carries(span) and not excluded(span)
    ]


def reference_filter(data: bytes, key: bytes, unless: prefilter.Unless | None = None, below: int = 0) -> list[Row]:
    return flatten(view.parse_traces(data), key, unless, below)


def outcome(function: Callable[[bytes], int], data: bytes) -> int | str:
    try:
        return function(data)
    except DecodeError:
        return "rejected"


def check(data: bytes, key: bytes = KEY, unless: prefilter.Unless | None = None, below: int = 0) -> None:
    """The whole contract on one input."""
    expected = outcome(view.count_spans, data)
    try:
        count, kept = prefilter.filter_spans(data, key, unless, below)
    except DecodeError:
        assert expected == "rejected", f"filter_spans rejected what count_spans accepts: {data.hex()}"
        return
    assert expected == count, f"count_spans says {expected}, filter_spans {count}: {data.hex()}"
    assert isinstance(kept, bytes)
    if not prefilter.NATIVE:
        assert kept is data
        return
    kept_count = view.count_spans(kept)
    assert kept_count <= count and (kept == b"") == (kept_count == 0)
    try:
        wanted = reference_filter(data, key, unless, below)
    except DecodeError:  # framing fine, contents not: nothing to compare with
        return
    assert flatten(view.parse_traces(kept), None) == wanted
    assert kept_count == len(wanted)
    if kept is data and data:  # (b"" is one object)
        assert wanted and len(wanted) == count


# -- valid requests built with the real OTLP messages -------------------------------------------

KEYS = (
    "impact.task.name",
    "http.route",
    "impact.task.outcome",
    "impact.task",
    "impact.task.name.x",
    "",
    "impact.task.root",
)
values = st.one_of(
    st.builds(lambda s: AnyValue(string_value=s), st.text(max_size=8)),
    st.builds(lambda s: AnyValue(string_value=s), st.sampled_from(["false", "true", "False"])),
    st.builds(lambda i: AnyValue(int_value=i), st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda b: AnyValue(bool_value=b), st.booleans()),
    st.just(AnyValue()),
)
attributes = st.lists(st.builds(lambda k, v: KeyValue(key=k, value=v), st.sampled_from(KEYS), values), max_size=4)


@st.composite
def spans(draw: st.DrawFn) -> trace_pb2.Span:
    span = trace_pb2.Span(
        trace_id=draw(st.binary(min_size=16, max_size=16)),
        span_id=draw(st.binary(min_size=8, max_size=8)),
        name=draw(st.text(max_size=6)),
        kind=draw(st.sampled_from(trace_pb2.Span.SpanKind.values())),
        start_time_unix_nano=draw(st.integers(0, 2**64 - 1)),
        attributes=draw(attributes),
    )
    for event_attributes in draw(st.lists(attributes, max_size=2)):  # an event's attributes never count
        span.events.add(name="e", attributes=event_attributes)
    if draw(st.booleans()):
        span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
    return span


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(0, 3))):
        rs = request.resource_spans.add(schema_url=draw(st.sampled_from(["", "https://s/1"])))
        if draw(st.booleans()):
            rs.resource.CopyFrom(
                Resource(attributes=draw(attributes), dropped_attributes_count=draw(st.integers(0, 3)))
            )
        for _ in range(draw(st.integers(0, 3))):
            ss = rs.scope_spans.add(schema_url=draw(st.sampled_from(["", "https://s/2"])))
            if draw(st.booleans()):
                ss.scope.CopyFrom(InstrumentationScope(name=draw(st.text(max_size=4)), version="1"))
            ss.spans.extend(draw(st.lists(spans(), max_size=4)))
    return request.SerializeToString()  # type: ignore[no-any-return]


# -- raw wire fields, for what the real messages never write (unknown fields, groups, field 0) ---


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def tag(field: int, wire_type: int) -> bytes:
    return varint(field << 3 | wire_type)


def delimited(field: int, body: bytes) -> bytes:
    return tag(field, 2) + varint(len(body)) + body


def group(field: int, body: bytes) -> bytes:
    return tag(field, 3) + body + tag(field, 4)


fields = st.sampled_from([0, 1, 2, 3, 9, 15, 2**29 - 1])
scalars = st.one_of(
    st.builds(lambda f, n: tag(f, 0) + varint(n), fields, st.integers(0, 2**64 - 1)),
    st.builds(lambda f, b: tag(f, 1) + b, fields, st.binary(min_size=8, max_size=8)),
    st.builds(lambda f, b: tag(f, 5) + b, fields, st.binary(min_size=4, max_size=4)),
    st.builds(delimited, fields, st.binary(max_size=6)),
)
wire = st.recursive(
    st.lists(scalars, max_size=3).map(b"".join),
    lambda inner: st.lists(
        st.one_of(scalars, st.builds(group, fields, inner), st.builds(delimited, fields, inner)), max_size=3
    ).map(b"".join),
    max_leaves=12,
)


TRACE_IDS = (
    b"\x00" * 16,
    b"\xff" * 16,
    b"\x01" * 9 + (prefilter.SAMPLE_ALL // 16 - 1).to_bytes(7, "big"),  # just sampled at 1/16
    b"\x01" * 9 + (prefilter.SAMPLE_ALL // 16).to_bytes(7, "big"),  # just not
    b"\x00" * 15,
    b"\x00" * 17,
    b"",
)
"""Trace ids on both sides of the 1/16 threshold, at its ends, and of the wrong length."""
BELOW = st.one_of(
    st.sampled_from([0, 1, prefilter.SAMPLE_ALL // 16, prefilter.SAMPLE_ALL - 1, prefilter.SAMPLE_ALL]),
    st.integers(0, prefilter.SAMPLE_ALL),
)


@st.composite
def wire_requests(draw: st.DrawFn) -> bytes:
    """Requests framed by hand: the declared fields, unknown ones (groups and field 0 included)
    on every level, and attributes whose key is the one sought or a near miss."""

    def extra() -> bytes:
        return draw(wire) if draw(st.integers(0, 3)) == 0 else b""

    def keyvalue() -> bytes:
        key = draw(st.sampled_from([KEY, KEY + b"x", b"http.route", b"", UNLESS[0]]))
        value = draw(st.sampled_from([delimited(1, b"v"), *UNLESS[1], b"\x10\x01", b""]))
        parts = [delimited(1, key), delimited(2, value), extra()]
        if draw(st.integers(0, 5)) == 0:  # a repeated value field: the last one counts
            parts.append(delimited(2, draw(st.sampled_from(UNLESS[1]))))
        if draw(st.integers(0, 5)) == 0:  # a repeated key field: the last one counts
            parts.append(delimited(1, draw(st.sampled_from([KEY, b"other"]))))
        return b"".join(draw(st.permutations(parts)))

    def span() -> bytes:
        parts = [delimited(9, keyvalue()) for _ in range(draw(st.integers(0, 3)))]
        parts.append(delimited(5, b"op") + extra())
        for _ in range(draw(st.integers(0, 2))):  # trace ids, the last one counts; odd lengths too
            parts.append(delimited(1, draw(st.sampled_from(TRACE_IDS))))
        if draw(st.integers(0, 5)) == 0:  # field 1 as a varint: an unknown field, not a trace id
            parts.append(tag(1, 0) + b"\x05")
        return b"".join(draw(st.permutations(parts)))

    def scope() -> bytes:
        parts = [delimited(2, span()) for _ in range(draw(st.integers(0, 3)))]
        parts.append(delimited(1, b"\x0a\x01s") + extra())
        return b"".join(draw(st.permutations(parts)))

    def resource() -> bytes:
        parts = [delimited(2, scope()) for _ in range(draw(st.integers(0, 3)))]
        parts.append(delimited(1, b"") + delimited(3, b"u") + extra())
        return b"".join(draw(st.permutations(parts)))

    return b"".join(delimited(1, resource()) for _ in range(draw(st.integers(0, 3)))) + extra()


@st.composite
def mutated(draw: st.DrawFn, source: st.SearchStrategy[bytes]) -> bytes:
    data = bytearray(draw(source))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(data)))
        change = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
        if change == "truncate":
            del data[at:]
        elif change == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif change == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=6))
        else:
            del data[at : at + draw(st.integers(1, 4))]
    return bytes(data)


PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(requests())
def test_valid_requests(data: bytes) -> None:
    check(data)


@PROPERTY
@given(wire_requests())
def test_hand_framed_requests(data: bytes) -> None:
    check(data)


@PROPERTY
@given(mutated(st.one_of(requests(), wire_requests())))
def test_mutated_requests(data: bytes) -> None:
    check(data)


@PROPERTY
@given(st.one_of(st.binary(max_size=64), wire))
def test_random_bytes(data: bytes) -> None:
    check(data)


@PROPERTY
@given(st.one_of(requests(), wire_requests(), mutated(st.one_of(requests(), wire_requests()))))
def test_spans_left_out_by_an_unless_attribute(data: bytes) -> None:
    check(data, unless=UNLESS)


@PROPERTY
@given(
    st.one_of(requests(), wire_requests(), mutated(st.one_of(requests(), wire_requests()))),
    BELOW,
    st.booleans(),
)
def test_every_span_of_a_sampled_trace_is_kept(data: bytes, below: int, with_unless: bool) -> None:
    check(data, unless=UNLESS if with_unless else None, below=below)


def test_trace_sampling_reads_the_last_seven_bytes_of_a_16_byte_id() -> None:
    quarter = prefilter.sample_below(0.25)
    assert quarter == prefilter.SAMPLE_ALL // 4
    assert prefilter.trace_sampled(b"\xff" * 9 + (quarter - 1).to_bytes(7, "big"), quarter)
    assert not prefilter.trace_sampled(b"\x00" * 9 + quarter.to_bytes(7, "big"), quarter)
    assert not prefilter.trace_sampled(b"\x00" * 15, prefilter.SAMPLE_ALL)  # not a trace id
    assert prefilter.trace_sampled(b"\xff" * 16, prefilter.SAMPLE_ALL)
    assert not prefilter.trace_sampled(b"\x00" * 16, 0)
    with pytest.raises(ValueError, match="within 0 and 1"):
        prefilter.sample_below(1.5)
    with pytest.raises(ValueError, match="sample_below"):
        prefilter.filter_spans(b"", KEY, None, prefilter.SAMPLE_ALL + 1)


def test_a_sampled_trace_keeps_spans_without_the_key_and_inherited_ones() -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    sampled, other = b"\x00" * 16, b"\xff" * 16
    for index, (trace_id, task, root) in enumerate(
        [
            (sampled, False, None),
            (sampled, True, False),
            (other, False, None),
            (other, True, False),
            (other, True, None),
        ]
    ):
        span = spans.add(name=str(index), trace_id=trace_id)
        if task:
            span.attributes.add(key="impact.task.name").value.string_value = "checkout"
        if root is not None:
            span.attributes.add(key="impact.task.root").value.bool_value = root
    count, kept = prefilter.filter_spans(request.SerializeToString(), KEY, UNLESS, prefilter.sample_below(0.5))
    names = [span.name for span in view.parse_traces(kept).resource_spans[0].scope_spans[0].spans]
    assert count == 5
    assert names == (["0", "1", "4"] if prefilter.NATIVE else ["0", "1", "2", "3", "4"])


def test_unless_leaves_out_spans_whose_root_is_false() -> None:
    rows = [(True, None), (True, False), (True, "false"), (True, True), (False, False)]
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for index, (task, root) in enumerate(rows):
        span = spans.add(name=str(index))
        if task:
            span.attributes.add(key="impact.task.name").value.string_value = "checkout"
        if isinstance(root, bool):
            span.attributes.add(key="impact.task.root").value.bool_value = root
        elif root is not None:
            span.attributes.add(key="impact.task.root").value.string_value = root
    count, kept = prefilter.filter_spans(request.SerializeToString(), KEY, UNLESS)
    assert count == len(rows)
    names = [span.name for span in view.parse_traces(kept).resource_spans[0].scope_spans[0].spans]
    assert names == (["0", "3"] if prefilter.NATIVE else [str(i) for i in range(len(rows))])


def test_too_many_unless_values_are_refused() -> None:
    with pytest.raises(ValueError, match="more than"):
        prefilter.filter_spans(b"", KEY, (b"k", tuple(b"%d" % i for i in range(prefilter.MAX_UNLESS_VALUES + 1))))


# -- the edges of what protobuf accepts, one by one ----------------------------------------------


def in_span(body: bytes) -> bytes:
    return delimited(1, delimited(2, delimited(2, body)))


def nested_groups(depth: int) -> bytes:
    return tag(5, 3) * depth + tag(5, 4) * depth


EDGES = {
    "empty": b"",
    "an empty span": in_span(b""),
    "field 0 in the request": b"\x00\x01",
    "field 0 in a resource": delimited(1, b"\x00\x01"),
    "field 0 in a span": in_span(b"\x00\x01"),
    "field 0 group in a span": in_span(b"\x03\x04"),
    "field 0 inside a group": group(5, b"\x00\x01"),
    "field 0 group inside a group": group(5, b"\x03\x04"),
    "end group in the request": b"\x0c",
    "end group in a span": in_span(b"\x2c"),
    "mismatched end group": b"\x2b\x34",
    "end group 0 in a group": b"\x2b\x04\x2c",
    "wire type 6": b"\x0e\x00",
    "wire type 7 in a span": in_span(b"\x0f"),
    "wire type 6 in a group": group(5, b"\x0e"),
    "tag of 5 bytes": b"\x88\x80\x80\x80\x00\x01",
    "tag of 6 bytes": b"\x88\x80\x80\x80\x80\x00\x01",
    "tag past 32 bits": b"\x88\x80\x80\x80\x10\x01",
    "the largest field number": b"\xf8\xff\xff\xff\x0f\x01",
    "varint of 10 bytes": b"\x08" + b"\xff" * 9 + b"\x7f",
    "varint of 11 bytes": b"\x08" + b"\xff" * 10 + b"\x01",
    "length in 5 bytes": b"\x1a\x81\x80\x80\x80\x00x",
    "length in 6 bytes": b"\x1a\x81\x80\x80\x80\x80\x00x",
    "length of a span in 6 bytes": delimited(1, delimited(2, b"\x12\x80\x80\x80\x80\x80\x00")),
    "length in 6 bytes in a group": group(5, b"\x1a\x81\x80\x80\x80\x80\x00x"),
    "length of 2**31 - 1": b"\x1a" + varint(2**31 - 1),
    "length wrapping 64 bits": b"\x0a" + b"\x80" * 9 + b"\x02",
    "length past the message": delimited(1, b"\x1a\x05abc") + b"de",
    "fixed64 past the message": delimited(1, b"\x19abc") + b"defgh",
    "fixed32 truncated": b"\x1dab",
    "group past the message": delimited(1, b"\x2b") + b"\x2c",
    "resource_spans as a varint": b"\x08\x05",
    "resource_spans as a group": b"\x0b\x08\x01\x0c",
    "spans as a group": delimited(1, delimited(2, b"\x13\x14")),
    "trailing field 0": in_span(b"") + b"\x00",
    "97 groups in a span": in_span(nested_groups(97)),
    "98 groups in a span": in_span(nested_groups(98)),
    "99 groups in a resource": delimited(1, nested_groups(99)),
    "100 groups in a resource": delimited(1, nested_groups(100)),
    "100 groups in the request": nested_groups(100),
    "101 groups in the request": nested_groups(101),
    "an unreadable attribute": in_span(delimited(9, b"\x0a\x05ab")),
    "an attribute with field 0": in_span(delimited(9, delimited(1, KEY) + b"\x00\x01")),
    "the key twice, then another": in_span(delimited(9, delimited(1, KEY) + delimited(1, b"x"))),
    "another key, then the key": in_span(delimited(9, delimited(1, b"x") + delimited(1, KEY))),
    "the key as a varint": in_span(delimited(9, tag(1, 0) + b"\x01")),
    "the key and an unknown field": in_span(delimited(9, delimited(1, KEY) + tag(3, 0) + b"\x01")),
    "the key and a value as a varint": in_span(delimited(9, delimited(1, KEY) + tag(2, 0) + b"\x01")),
    "the key, a value, the key again": in_span(delimited(9, delimited(1, KEY) + delimited(2, b"") + delimited(1, KEY))),
}


@pytest.mark.parametrize("data", EDGES.values(), ids=EDGES.keys())
def test_edges_of_the_wire_format(data: bytes) -> None:
    check(data)
    check(data, b"")


def test_the_edges_cover_both_answers() -> None:
    """The table above exercises rejections and acceptances alike (it pins the limits, not one side)."""
    answers = {outcome(view.count_spans, data) == "rejected" for data in EDGES.values()}
    assert answers == {True, False}


# -- the results callers rely on -----------------------------------------------------------------


def request_of(*carries: bool) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for number, carrying in enumerate(carries):
        span = scope.spans.add(name=f"s{number}")
        span.attributes.add(key="http.route", value=AnyValue(string_value="/"))
        if carrying:
            span.attributes.add(key=KEY.decode(), value=AnyValue(string_value="checkout"))
    return request.SerializeToString()  # type: ignore[no-any-return]


def test_no_span_carrying_the_key_keeps_nothing() -> None:
    count, kept = prefilter.filter_spans(request_of(False, False, False), KEY)
    assert count == 3
    assert kept == b"" if prefilter.NATIVE else kept == request_of(False, False, False)


def test_every_span_carrying_the_key_keeps_the_request_itself() -> None:
    data = request_of(True, True)
    assert prefilter.filter_spans(data, KEY) == (2, data)
    assert prefilter.filter_spans(data, KEY)[1] is data


def test_some_spans_keep_those_in_order() -> None:
    data = request_of(True, False, True, False)
    count, kept = prefilter.filter_spans(data, KEY)
    names = [span.name for rs in view.parse_traces(kept).resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert count == 4
    assert names == (["s0", "s2"] if prefilter.NATIVE else ["s0", "s1", "s2", "s3"])


def test_bytes_like_input_gives_bytes() -> None:
    data = request_of(True, False)
    for given_as in (bytearray(data), memoryview(data)):
        count, kept = prefilter.filter_spans(given_as, KEY)  # type: ignore[arg-type]
        assert count == 2 and view.count_spans(bytes(kept)) == (1 if prefilter.NATIVE else 2)


def test_a_big_request_keeps_a_tenth() -> None:
    carries = [number % 10 == 0 for number in range(20_000)]
    count, kept = prefilter.filter_spans(request_of(*carries), KEY)
    assert count == 20_000
    assert view.count_spans(kept) == (2_000 if prefilter.NATIVE else 20_000)


# -- which implementation is in use --------------------------------------------------------------


def test_the_extension_is_in_use_where_it_is_required() -> None:
    if os.environ.get(prefilter.PURE_PYTHON_ENV) == "1":
        assert not prefilter.NATIVE, f"{prefilter.PURE_PYTHON_ENV}=1 must force the pure-Python fallback"
    elif os.environ.get(REQUIRE_NATIVE_ENV) == "1":
        assert prefilter.NATIVE, (
            f"{REQUIRE_NATIVE_ENV}=1 but the compiled pre-filter is not built: install a C compiler and "
            "Python's headers, then reinstall the package"
        )
    else:
        pytest.skip(f"neither {prefilter.PURE_PYTHON_ENV} nor {REQUIRE_NATIVE_ENV} is set")


def test_the_environment_variable_forces_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "otel_impact.proto.prefilter"
    package = sys.modules["otel_impact.proto"]
    saved = sys.modules.pop(name)
    monkeypatch.setenv(prefilter.PURE_PYTHON_ENV, "1")
    try:
        fresh = importlib.import_module(name)
        data = request_of(True, False)
        assert fresh.NATIVE is False
        assert fresh.filter_spans(data, KEY) == (2, data)
    finally:
        sys.modules[name] = saved
        package.prefilter = saved  # type: ignore[attr-defined]


def test_the_extension_refuses_bad_arguments() -> None:
    native = pytest.importorskip("otel_impact.proto._prefilter")
    with pytest.raises(TypeError):
        native.filter_spans(b"")
    with pytest.raises(TypeError):
        native.filter_spans("text", KEY)
    with pytest.raises(TypeError):
        native.filter_spans(b"", None)
    with pytest.raises(DecodeError):
        native.filter_spans(b"\x0a\x05", KEY)
    with pytest.raises(TypeError):
        native.filter_spans(b"", KEY, None, (), "1")
    with pytest.raises(OverflowError):
        native.filter_spans(b"", KEY, None, (), -1)
    with pytest.raises(ValueError):
        native.filter_spans(b"", KEY, None, (), prefilter.SAMPLE_ALL + 1)
