"""Building OTLP trace requests for SLI tests: from real SDK spans, or directly (fast, for big workloads)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.trace import ReadableSpan

from otel_impact.processors.batch import TraceBatch
from otel_impact.proto import view

SERVER = trace_pb2.Span.SPAN_KIND_SERVER
_KV_CACHE: dict[tuple[str, Any], KeyValue] = {}


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    raise TypeError(type(value))


def kv(key: str, value: Any) -> KeyValue:
    """A KeyValue, memoized for hashable values (reused across spans: fast)."""
    cache_key = (key, value if not isinstance(value, list) else tuple(value))
    found = _KV_CACHE.get(cache_key)
    if found is None:
        found = KeyValue(key=key, value=any_value(value))
        if len(_KV_CACHE) < 100_000:
            _KV_CACHE[cache_key] = found
    return found


def span(
    *,
    end_ns: int,
    duration_ms: float = 10.0,
    attributes: Mapping[str, Any] | None = None,
    error: bool = False,
    name: str = "op",
    kind: int = SERVER,
    events: Sequence[tuple[str, Mapping[str, Any]]] = (),
    span_id: int = 1,
) -> trace_pb2.Span:
    message = trace_pb2.Span(
        trace_id=b"\x01" * 16,
        span_id=span_id.to_bytes(8, "big"),
        name=name,
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=max(0, end_ns - int(duration_ms * 1e6)),
        end_time_unix_nano=end_ns,
    )
    if attributes:
        message.attributes.extend(kv(key, value) for key, value in attributes.items() if value is not None)
    if error:
        message.status.code = trace_pb2.Status.STATUS_CODE_ERROR
    for event_name, event_attributes in events:
        event = message.events.add(name=event_name, time_unix_nano=end_ns)
        event.attributes.extend(kv(k, v) for k, v in event_attributes.items())
    return message


def request(spans: Iterable[trace_pb2.Span], resource: Mapping[str, Any] | None = None) -> bytes:
    """One ExportTraceServiceRequest with one resource and one scope."""
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    resource_spans.resource.attributes.extend(kv(k, v) for k, v in (resource or {"service.name": "svc"}).items())
    resource_spans.scope_spans.add().spans.extend(spans)
    return message.SerializeToString()  # type: ignore[no-any-return]


def sdk_request(spans: Sequence[ReadableSpan]) -> bytes:
    """What the SDK's OTLP exporter would send for ``spans``."""
    return encode_spans(spans).SerializeToString()  # type: ignore[no-any-return]


def batch(data: bytes, received_ns: int) -> TraceBatch:
    parsed = view.parse_traces(data)
    count = sum(len(ss.spans) for rs in parsed.resource_spans for ss in rs.scope_spans)
    return TraceBatch(data=data, view=parsed, span_count=count, received_ns=received_ns, transport="grpc")
