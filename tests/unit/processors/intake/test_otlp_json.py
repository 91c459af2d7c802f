"""OTLP/JSON to OTLP/protobuf: the OTLP encoding rules, and errors that name the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _otlp_json import otlp_json_document
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from support.canaries import CANARY_EMAIL
from support.otlp_requests import make_request

from otel_impact.processors.intake.otlp_json import InvalidJson, json_to_protobuf

TRACE_ID = "0102030405060708090a0b0c0d0e0f10"
SPAN_ID = "0102030405060708"


def request(*spans: dict[str, Any], resource: dict[str, Any] | None = None) -> bytes:
    document = {"resourceSpans": [{"resource": resource or {}, "scopeSpans": [{"spans": list(spans)}]}]}
    return json.dumps(document).encode()


def decode(*spans: dict[str, Any]) -> list[Span]:
    parsed = ExportTraceServiceRequest.FromString(json_to_protobuf(request(*spans)))
    return list(parsed.resource_spans[0].scope_spans[0].spans)


def error_of(body: bytes) -> str:
    with pytest.raises(InvalidJson) as raised:
        json_to_protobuf(body)
    return str(raised.value)


def test_a_collector_style_document_gives_the_same_protobuf() -> None:
    data = make_request(5, attributes={"http.response.status_code": 500, "impact.customer.tier": "pro"})
    assert ExportTraceServiceRequest.FromString(json_to_protobuf(json.dumps(otlp_json_document(data)).encode())) == (
        ExportTraceServiceRequest.FromString(data)
    )


def test_every_value_kind_ids_links_events_and_both_key_spellings() -> None:
    value = {"arrayValue": {"values": [{"intValue": "3"}, {"doubleValue": 1.5}, {"bytesValue": "AAE="},
             {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": True}}]}}]}}  # fmt: skip
    (span,) = decode(
        {
            "trace_id": TRACE_ID,
            "spanId": SPAN_ID,
            "parentSpanId": "",
            "name": "GET /",
            "start_time_unix_nano": "1700000000000000000",
            "endTimeUnixNano": 1700000000000000001,
            "attributes": [{"key": "a", "value": value}, {"key": "n", "value": {"int_value": 7}}],
            "events": [{"timeUnixNano": "5", "name": "e", "attributes": [{"key": "x", "value": {"stringValue": "y"}}]}],
            "links": [{"traceId": TRACE_ID, "spanId": SPAN_ID, "flags": 1}],
            "status": {"code": 2, "message": "boom"},
            "somethingNew": {"ignored": True},
        }
    )
    assert span.trace_id.hex() == TRACE_ID and span.span_id.hex() == SPAN_ID and span.parent_span_id == b""
    assert span.start_time_unix_nano == 1700000000000000000 and span.end_time_unix_nano == 1700000000000000001
    values = span.attributes[0].value.array_value.values
    assert [values[0].int_value, values[1].double_value, values[2].bytes_value] == [3, 1.5, b"\0\1"]
    assert values[3].kvlist_value.values[0].value.bool_value is True
    assert span.attributes[1].value.int_value == 7
    assert span.events[0].time_unix_nano == 5 and span.events[0].attributes[0].value.string_value == "y"
    assert span.links[0].trace_id.hex() == TRACE_ID and span.links[0].flags == 1
    assert span.status.code == Status.STATUS_CODE_ERROR and span.status.message == "boom"


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("SPAN_KIND_SERVER", "STATUS_CODE_ERROR"),
        (2, 2),
        ("2", "2"),
        (9, 7),  # integers outside the names are kept, as protobuf keeps them for open enums
    ],
)
def test_enums_are_names_integers_or_integer_strings(kind: object, code: object) -> None:
    (span,) = decode({"kind": kind, "status": {"code": code}})
    assert span.kind == (2 if kind in ("SPAN_KIND_SERVER", 2, "2") else kind)
    assert span.status.code == (2 if code in ("STATUS_CODE_ERROR", 2, "2") else code)


def test_a_misspelled_status_code_is_refused_naming_the_field() -> None:
    good = {"traceId": TRACE_ID, "spanId": SPAN_ID, "status": {"code": "STATUS_CODE_ERROR"}}
    body = request(good, good, good, {**good, "status": {"code": "STATUS_CODE_EROR"}})
    assert error_of(body) == (
        "resourceSpans[0].scopeSpans[0].spans[3].status.code: 'STATUS_CODE_EROR' is not a status code; "
        "use STATUS_CODE_UNSET, STATUS_CODE_OK or STATUS_CODE_ERROR or 0-2"
    )


def test_a_misspelled_span_kind_is_refused_naming_the_field() -> None:
    message = error_of(request({"kind": "SPAN_KIND_SERVR"}))
    assert message.startswith("resourceSpans[0].scopeSpans[0].spans[0].kind: 'SPAN_KIND_SERVR' is not a span kind;")
    assert "SPAN_KIND_SERVER" in message and "0-5" in message


@pytest.mark.parametrize("value", [CANARY_EMAIL, "error", True, 1.5, {"x": 1}, "99999999999"])
def test_other_bad_enum_values_are_refused_without_repeating_them(value: object) -> None:
    message = error_of(request({"status": {"code": value}}))
    assert message.startswith("resourceSpans[0].scopeSpans[0].spans[0].status.code: ")
    assert CANARY_EMAIL not in message and "'error'" not in message


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "expected a JSON object with resourceSpans"),
        (b'{"resourceSpans": 5}', "resourceSpans: expected an array"),
        (b'{"resourceSpans": [5]}', "resourceSpans[0]: expected an object"),
        (request({"traceId": "xyz"}), "resourceSpans[0].scopeSpans[0].spans[0].traceId: expected 32 hex characters"),
        (request({"spanId": 5}), "resourceSpans[0].scopeSpans[0].spans[0].spanId: expected a hex string"),
        (request({"name": 5}), "resourceSpans[0].scopeSpans[0].spans[0].name: invalid value or type"),
        (request({"startTimeUnixNano": "1 2"}), "spans[0].startTimeUnixNano: invalid value or type"),
        (request({"startTimeUnixNano": -1}), "spans[0].startTimeUnixNano: invalid value or type"),
        (request({"attributes": [{"key": "k", "value": {"intValue": "x"}}]}), "attributes[0].value.intValue: invalid"),
        (request(resource={"attributes": {}}), "resourceSpans[0].resource.attributes: expected an array"),
    ],
)
def test_errors_name_where(document: bytes, message: str) -> None:
    assert message in error_of(document)


def test_a_raw_value_in_the_wrong_place_is_not_repeated() -> None:
    message = error_of(request({"attributes": [{"key": "enduser.id", "value": {"intValue": CANARY_EMAIL}}]}))
    assert "intValue: invalid value" in message and CANARY_EMAIL not in message


def test_deep_nesting_is_refused() -> None:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(100):
        value = {"arrayValue": {"values": [value]}}
    assert "nested too deeply" in error_of(request({"attributes": [{"key": "k", "value": value}]}))
    assert "nested too deeply" in error_of(b"[" * 5000 + b"]" * 5000)
