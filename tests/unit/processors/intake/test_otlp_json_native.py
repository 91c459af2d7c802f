"""The compiled OTLP/JSON transcoder against the Python walk it stands in for.

Its contract (``_otlp_json.c``): ``transcode(body)`` is ``None`` or exactly the bytes the walk
returns; it never accepts a body the walk refuses. Checked here on generated Collector-style
requests (every value kind, nested values, both integer forms, both key spellings, shuffled keys,
escapes), on edge cases, and on mutated, truncated and random bodies. Skipped where the extension
is not built, except the check that it is built where CI requires it.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import random
import sys
from collections.abc import Callable
from typing import Any

import pytest
from _otlp_json import otlp_json_document
from _workload import build_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from otel_impact.processors.intake import otlp_json
from otel_impact.processors.intake.otlp_json import InvalidJson
from otel_impact.proto.prefilter import PURE_PYTHON_ENV

REQUIRE_NATIVE_ENV = "OTEL_IMPACT_REQUIRE_NATIVE"  # CI sets it: the extension must be built there

try:
    from otel_impact.processors.intake._otlp_json import transcode as _compiled
except ImportError:  # not built
    _compiled = None

needs_extension = pytest.mark.skipif(
    _compiled is None or os.environ.get(PURE_PYTHON_ENV) == "1",
    reason="the compiled transcoder is not built, or the pure-Python pass does not use it",
)


def transcode(body: bytes) -> bytes | None:
    assert _compiled is not None
    return _compiled(body)


def walk(body: bytes) -> bytes | str:
    """The Python walk's answer: bytes, or ``"refused"``."""
    try:
        return otlp_json._json_to_protobuf_python(body)
    except InvalidJson:
        return "refused"


def check(body: bytes) -> bool:
    """The contract on one body; whether the compiled side answered (not ``None``)."""
    fast = transcode(body)
    if fast is None:
        return False
    expected = walk(body)
    assert expected != "refused", f"transcode accepted what the walk refuses: {body!r}"
    assert fast == expected, f"transcode and the walk differ on {body!r}"
    return True


# -- generated requests, written the way the Collector writes them -------------------------------

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
int64s = st.integers(-(1 << 63), (1 << 63) - 1)
doubles = st.floats(allow_nan=False, allow_infinity=False)


def any_values(depth: int = 2) -> st.SearchStrategy[AnyValue]:
    simple = st.one_of(
        texts.map(lambda v: AnyValue(string_value=v)),
        st.booleans().map(lambda v: AnyValue(bool_value=v)),
        int64s.map(lambda v: AnyValue(int_value=v)),
        doubles.map(lambda v: AnyValue(double_value=v)),
        st.binary(max_size=10).map(lambda v: AnyValue(bytes_value=v)),
        st.just(AnyValue()),
    )
    if depth == 0:
        return simple
    inner = any_values(depth - 1)
    return st.one_of(
        simple,
        st.lists(inner, max_size=3).map(lambda vs: AnyValue(array_value=ArrayValue(values=vs))),
        st.lists(st.tuples(texts, inner), max_size=3).map(
            lambda kvs: AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kvs]))
        ),
    )


attribute_lists = st.lists(st.tuples(texts, any_values()).map(lambda kv: KeyValue(key=kv[0], value=kv[1])), max_size=4)
u32 = st.integers(0, (1 << 32) - 1)
u64 = st.integers(0, (1 << 64) - 1)


@st.composite
def requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        rs = request.resource_spans.add(schema_url=draw(texts))
        if draw(st.booleans()):
            rs.resource.attributes.extend(draw(attribute_lists))
            rs.resource.dropped_attributes_count = draw(u32)
        for _ in range(draw(st.integers(0, 2))):
            ss = rs.scope_spans.add(schema_url=draw(texts))
            if draw(st.booleans()):
                ss.scope.name, ss.scope.version = draw(texts), draw(texts)
                ss.scope.attributes.extend(draw(attribute_lists))
            for _ in range(draw(st.integers(0, 3))):
                span = ss.spans.add(
                    trace_id=draw(st.binary(min_size=16, max_size=16) | st.just(b"")),
                    span_id=draw(st.binary(min_size=8, max_size=8)),
                    parent_span_id=draw(st.binary(min_size=8, max_size=8) | st.just(b"")),
                    trace_state=draw(texts),
                    flags=draw(u32),
                    name=draw(texts),
                    kind=draw(st.integers(0, 5)),
                    start_time_unix_nano=draw(u64),
                    end_time_unix_nano=draw(u64),
                    dropped_attributes_count=draw(u32),
                    dropped_events_count=draw(u32),
                    dropped_links_count=draw(u32),
                )
                span.attributes.extend(draw(attribute_lists))
                for _ in range(draw(st.integers(0, 2))):
                    event = span.events.add(time_unix_nano=draw(u64), name=draw(texts))
                    event.attributes.extend(draw(attribute_lists))
                for _ in range(draw(st.integers(0, 2))):
                    link = span.links.add(
                        trace_id=draw(st.binary(min_size=16, max_size=16)),
                        span_id=draw(st.binary(min_size=8, max_size=8)),
                        flags=draw(u32),
                    )
                    link.attributes.extend(draw(attribute_lists))
                if draw(st.booleans()):
                    span.status.code = draw(st.integers(0, 2))
                    span.status.message = draw(texts)
    return request


_LARGE_INTEGER_KEYS = {"startTimeUnixNano", "endTimeUnixNano", "timeUnixNano", "intValue"}


def rewrite(node: Any, choose: Callable[[], bool]) -> Any:
    """Variants senders produce: 64-bit integers as numbers, URL-safe unpadded base64, keys shuffled."""
    if isinstance(node, list):
        return [rewrite(item, choose) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in _LARGE_INTEGER_KEYS and isinstance(value, str) and choose():
            value = int(value)
        elif key == "bytesValue" and choose():
            value = base64.urlsafe_b64encode(base64.b64decode(value)).decode().rstrip("=")
        out[key] = rewrite(value, choose)
    items = list(out.items())
    if choose():
        random.Random(len(items)).shuffle(items)
    return dict(items)


def collector_json(request: ExportTraceServiceRequest, choose: Callable[[], bool], ascii_only: bool) -> bytes:
    document = rewrite(otlp_json_document(request.SerializeToString()), choose)
    return json.dumps(document, ensure_ascii=ascii_only).encode()


@needs_extension
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), st.randoms(use_true_random=False), st.booleans())
def test_generated_requests_give_the_walks_bytes(
    request: ExportTraceServiceRequest, chooser: random.Random, ascii_only: bool
) -> None:
    body = collector_json(request, lambda: chooser.random() < 0.5, ascii_only)
    assert check(body), f"transcode declined a Collector-shaped body: {body!r}"
    assert transcode(body) == request.SerializeToString()


@needs_extension
def test_the_benchmark_workload_never_falls_back() -> None:
    for seed in range(4):
        data = build_request(seed, mix="mixed", end_ns=1_700_000_000_000_000_000)
        body = json.dumps(otlp_json_document(data)).encode()
        assert transcode(body) == data


# -- edge cases: declined or exact ---------------------------------------------------------------


def span_body(span: str | bytes) -> bytes:
    """A request of one span (``bytes`` are taken as they are: they may be invalid UTF-8)."""
    raw = span if isinstance(span, bytes) else span.encode()
    return b'{"resourceSpans":[{"scopeSpans":[{"spans":[' + raw + b"]}]}]}"


def value_body(value: str) -> bytes:
    return span_body('{"attributes":[{"key":"k","value":' + value + "}]}")


EXACT = [
    b"{}",
    b' {"resourceSpans": null} ',
    b'{"resourceSpans":[{"resource":{},"scopeSpans":[{"spans":[{"status":{}}]}]}]}',
    span_body(
        '{"name":"a","flags":1,"kind":2,"status":{"code":2,"message":"m"},"traceId":"0A0b0c0d0e0f10111213141516171819"}'
    ),
    span_body('{"startTimeUnixNano":"18446744073709551615","endTimeUnixNano":0,"droppedLinksCount":4294967295}'),
    span_body('{"kind":"SPAN_KIND_CONSUMER","status":{"code":"STATUS_CODE_ERROR"}}'),
    span_body('{"kind":"SPAN_KIND_UNSPECIFIED","status":{"code":"STATUS_CODE_UNSET"}}'),
    span_body('{"kind":"2","status":{"code":"002"}}'),
    span_body('{"kind":7,"status":{"code":2147483647}}'),
    span_body('{"somethingNew":{"deep":[1,2.5e3,"x",null,true,{"y":[]}]},"name":"n"}'),
    span_body('{"name":"\\u00e9\\ud83d\\ude00\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000"}'),
    span_body('{"name":"é😀"}'),
    value_body('{"doubleValue":-0}'),
    value_body('{"doubleValue":-0.0}'),
    value_body('{"doubleValue":1.7976931348623157e308}'),
    value_body('{"doubleValue":5e-324}'),
    value_body('{"doubleValue":0.30000000000000004}'),
    value_body('{"doubleValue":12345678901234567890}'),
    value_body('{"intValue":"-9223372036854775808"}'),
    value_body('{"intValue":9223372036854775807}'),
    value_body('{"intValue":0}'),
    value_body('{"stringValue":""}'),
    value_body('{"boolValue":false}'),
    value_body('{"bytesValue":""}'),
    value_body('{"bytesValue":"-_8="}'),
    value_body('{"bytesValue":"AAE"}'),
    value_body('{"stringValue":null,"intValue":3}'),
    value_body("{}"),
    span_body('{"attributes":[{"value":{"intValue":1}},{"key":"","value":null}]}'),
]


@needs_extension
@pytest.mark.parametrize("body", EXACT)
def test_edge_cases_are_transcoded_exactly(body: bytes) -> None:
    assert check(body)


DECLINED = [
    b"",
    b"[]",
    b"\xef\xbb\xbf{}",
    b"{} x",
    b'{"resourceSpans":[null]}',
    b'{"resourceSpans":[],"resourceSpans":[]}',
    b'{"resource\\u0053pans":[]}',
    span_body('{"kind":"span_kind_server"}'),
    span_body('{"kind":"-1"}'),
    span_body('{"kind":"2147483648"}'),
    span_body('{"kind":-1}'),
    span_body('{"kind":2.0}'),
    span_body('{"status":{"code":"STATUS_CODE_EROR"}}'),
    span_body('{"traceId":"0102"}'),
    span_body('{"traceId":"01 02030405060708090a0b0c0d0e0f10"}'),
    span_body('{"spanId":"zz02030405060708"}'),
    span_body('{"startTimeUnixNano":"-1"}'),
    span_body('{"startTimeUnixNano":"18446744073709551616"}'),
    span_body('{"startTimeUnixNano":1e3}'),
    span_body('{"startTimeUnixNano":" 1"}'),
    span_body('{"startTimeUnixNano":"+1"}'),
    span_body('{"flags":4294967296}'),
    span_body('{"name":5}'),
    span_body('{"name":"\\ud800"}'),
    span_body('{"name":"\\udc00\\ud800"}'),
    span_body('{"name":"\\x"}'),
    span_body('{"name":"a\x01"}'),
    span_body(b'{"name":"\xc0\xaf"}'),
    span_body(b'{"name":"\xed\xa0\x80"}'),
    span_body(b'{"name":"\xf4\x90\x80\x80"}'),
    span_body(b'{"name":"\xff"}'),
    span_body('{"name":"a","name":"b"}'),
    span_body('{"name":"a","name":null}'),
    span_body('{"events":[{"timeUnixNano":01}]}'),
    span_body('{"x":[1,]}'),
    span_body('{"x":NaN}'),
    value_body('{"stringValue":"a","intValue":1}'),
    value_body('{"intValue":"9223372036854775808"}'),
    value_body('{"intValue":-9223372036854775809}'),
    value_body('{"intValue":true}'),
    value_body('{"doubleValue":"NaN"}'),
    value_body('{"doubleValue":1e400}'),
    value_body('{"bytesValue":"A"}'),
    value_body('{"bytesValue":"AAF="}'),
    value_body('{"bytesValue":"AA=A"}'),
    value_body('{"bytesValue":"A A="}'),
    value_body('{"stringValueStrindex":1}'),
    span_body('{"attributes":[{"key":"k","keyStrindex":1}]}'),
    b'{"resourceSpans":[{"resource":{"entityRefs":[]}}]}',
    value_body('{"arrayValue":{"values":[null]}}'),
    b'{"x":' + b"[" * 60 + b"]" * 60 + b"}",
]


@needs_extension
@pytest.mark.parametrize("body", DECLINED)
def test_unusual_or_bad_bodies_are_left_to_the_walk(body: bytes) -> None:
    assert transcode(body) is None


@needs_extension
def test_deep_values_are_left_to_the_walk() -> None:
    value = '{"stringValue":"leaf"}'
    for _ in range(100):
        value = '{"arrayValue":{"values":[' + value + "]}}"
    body = value_body(value)
    assert transcode(body) is None and walk(body) == "refused"


# -- hostile bodies: never accepted when the walk refuses, never a crash --------------------------

SEEDS = [
    *EXACT,
    span_body(
        '{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"GET \\u00e9",'
        '"kind":2,"startTimeUnixNano":"1","endTimeUnixNano":2,"attributes":[{"key":"a","value":{"arrayValue":'
        '{"values":[{"intValue":"3"},{"doubleValue":1.5},{"bytesValue":"AAE="},{"kvlistValue":{"values":'
        '[{"key":"k","value":{"boolValue":true}}]}}]}}}],"events":[{"timeUnixNano":"5","name":"e"}],'
        '"links":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","flags":1}],'
        '"status":{"code":2,"message":"boom"}}'
    ),
]


def mutate(body: bytes, rng: random.Random) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 3)):
        choice = rng.random()
        at = rng.randint(0, len(data))
        if choice < 0.3 and data:
            del data[min(at, len(data) - 1)]
        elif choice < 0.6:
            data[at:at] = bytes([rng.choice(b'{}[]",:\\u0-9eE.+ntf\x00\x80\xff')])
        elif choice < 0.8 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        else:
            del data[at:]
    return bytes(data)


@needs_extension
def test_mutated_and_truncated_bodies() -> None:
    rng = random.Random(20261128)
    answered = 0
    for _ in range(20_000):
        answered += check(mutate(rng.choice(SEEDS), rng))
    assert answered > 0  # some mutations keep a valid request, and those must still match


@needs_extension
@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200) | st.text(alphabet='{}[]",:\\0123456789.eE-+ trufalsn', max_size=80).map(str.encode))
def test_random_bodies(body: bytes) -> None:
    check(body)


@needs_extension
def test_only_bytes_are_accepted() -> None:
    with pytest.raises(TypeError):
        _compiled(bytearray(b"{}"))  # type: ignore[arg-type, misc]


# -- which implementation is in use --------------------------------------------------------------


def test_the_extension_is_in_use_where_it_is_required() -> None:
    if os.environ.get(PURE_PYTHON_ENV) == "1":
        assert not otlp_json.NATIVE_JSON, f"{PURE_PYTHON_ENV}=1 must force the pure-Python walk"
    elif os.environ.get(REQUIRE_NATIVE_ENV) == "1":
        assert otlp_json.NATIVE_JSON, (
            f"{REQUIRE_NATIVE_ENV}=1 but the compiled OTLP/JSON transcoder is not built: install a C compiler "
            "and Python's headers, then reinstall the package"
        )
    else:
        pytest.skip(f"neither {PURE_PYTHON_ENV} nor {REQUIRE_NATIVE_ENV} is set")


def test_the_environment_variable_forces_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "otel_impact.processors.intake.otlp_json"
    package = sys.modules["otel_impact.processors.intake"]
    saved = sys.modules.pop(name)
    monkeypatch.setenv(PURE_PYTHON_ENV, "1")
    try:
        fresh = importlib.import_module(name)
        assert fresh.NATIVE_JSON is False
        assert fresh.json_to_protobuf(value_body('{"intValue":"7"}')) == walk(value_body('{"intValue":"7"}'))
    finally:
        sys.modules[name] = saved
        package.otlp_json = saved  # type: ignore[attr-defined]
