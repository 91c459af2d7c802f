"""Building OTLP trace requests with unique span ids, for feeding the processor in tests."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

_counter = itertools.count(1)


def span_id(number: int) -> bytes:
    return number.to_bytes(8, "big")


def make_request(spans: int, *, attributes: Mapping[str, object] | None = None, service: str = "svc") -> bytes:
    """A request with ``spans`` spans; span ids are unique across the test process (see `ids_of`)."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name", value=AnyValue(string_value=service))
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "tests"
    for _ in range(spans):
        number = next(_counter)
        span = scope.spans.add()
        span.trace_id = number.to_bytes(16, "big")
        span.span_id = span_id(number)
        span.name = "GET /checkout"
        span.kind = 2
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + number
        span.end_time_unix_nano = span.start_time_unix_nano + 1_000_000
        span.attributes.add(key="http.route", value=AnyValue(string_value="/checkout"))
        for key, value in (attributes or {}).items():
            if isinstance(value, int):
                span.attributes.add(key=key, value=AnyValue(int_value=value))
            else:
                span.attributes.add(key=key, value=AnyValue(string_value=str(value)))
    return request.SerializeToString()  # type: ignore[no-any-return]


def ids_of(data: bytes) -> list[bytes]:
    request = ExportTraceServiceRequest.FromString(data)
    return [span.span_id for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
