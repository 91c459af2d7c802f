"""The lean view reads real OTLP bytes, as the SDK's own exporter encodes them."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_impact.proto import view

ATTRIBUTES = {
    "s": "checkout",
    "long": "x" * 300,
    "unicode": "Zoë Ωmega",
    "empty": "",
    "i": 503,
    "neg": -7,
    "big": 2**62,
    "f": 12.5,
    "t": True,
    "fl": False,
    "arr": ("a=on", "b=off"),
    "ints": (1, 2),
}


@pytest.fixture(scope="module")
def request_bytes() -> bytes:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "svc", "deployment.environment": "prod"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("op", kind=SpanKind.SERVER, attributes=ATTRIBUTES) as span:
        span.add_event("feature_flag.evaluation", {"feature_flag.key": "k", "feature_flag.result.variant": "on"})
        span.set_status(Status(StatusCode.ERROR, "boom"))
    return encode_spans(exporter.get_finished_spans()).SerializeToString()  # type: ignore[no-any-return]


def test_view_reads_what_the_full_message_holds(request_bytes: bytes) -> None:
    full = ExportTraceServiceRequest.FromString(request_bytes)
    lean = view.parse_traces(request_bytes)
    full_span = full.resource_spans[0].scope_spans[0].spans[0]
    span = lean.resource_spans[0].scope_spans[0].spans[0]
    assert view.decode_str(lean.resource_spans[0].resource.attributes["service.name"]) == "svc"
    assert span.name == "op" and span.kind == SpanKind.SERVER.value + 1
    assert span.trace_id == full_span.trace_id and span.span_id == full_span.span_id
    assert span.end_time_unix_nano == full_span.end_time_unix_nano
    assert view.status_code(span.status) == full_span.status.code == 2  # the message ("boom") comes first
    a = span.attributes
    assert view.decode_str(a["s"]) == "checkout"
    assert view.decode_str(a["long"]) == "x" * 300
    assert view.decode_str(a["unicode"]) == "Zoë Ωmega"
    assert view.decode_str(a["empty"]) == ""
    assert view.decode_int(a["i"]) == 503
    assert view.decode_int(a["neg"]) == -7
    assert view.decode_int(a["big"]) == 2**62
    assert view.decode_double(a["f"]) == 12.5
    assert view.decode_double(a["i"]) == 503.0
    assert view.decode_bool(a["t"]) is True
    assert view.decode_bool(a["fl"]) is False
    assert view.decode_str_array(a["arr"]) == ("a=on", "b=off")
    assert view.decode_any(a["ints"]) == (1, 2)
    assert view.decode_str(a["i"]) is None and view.decode_int(a["s"]) is None and view.decode_bool(a["s"]) is None
    assert view.decode_str(a.get("absent")) is None
    (event,) = span.events
    assert event.name == "feature_flag.evaluation"
    assert view.decode_str(event.attributes["feature_flag.result.variant"]) == "on"


@pytest.mark.parametrize(
    "status",
    [
        trace_pb2.Status(),
        trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR),
        trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_OK),
        trace_pb2.Status(code=trace_pb2.Status.STATUS_CODE_ERROR, message="payment declined: " + "x" * 200),
        trace_pb2.Status(message="only a message"),
    ],
    ids=["unset", "error", "ok", "error-with-long-message", "message-only"],
)
def test_status_code_reads_every_encoding(status: trace_pb2.Status) -> None:
    data = status.SerializeToString()
    assert view.status_code(data) == status.code


@pytest.mark.parametrize("garbage", [b"\x18", b"\xff\xff", b"\x12\x05ab", b"\x18\x80"])
def test_status_code_of_bytes_that_are_no_status_is_unset(garbage: bytes) -> None:
    assert view.status_code(garbage) == 0
