"""A real OTLP trace receiver for tests: gRPC and HTTP on loopback, recording raw bytes."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@dataclass
class Received:
    """One export request as it arrived."""

    transport: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(any_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return None if kind is None else getattr(value, kind)


@dataclass
class SpanRecord:
    name: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    kind: int
    status_code: int
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    events: list[tuple[str, dict[str, Any]]]


class OtlpSink:
    """Collects OTLP/gRPC and OTLP/HTTP trace exports. Use as a context manager."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._grpc_server: grpc.Server | None = None
        self._http_server: ThreadingHTTPServer | None = None
        self.grpc_port = 0
        self.http_port = 0

    # -- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> OtlpSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        sink = self

        def export(request: bytes, context: grpc.ServicerContext) -> bytes:
            headers = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            sink._record(Received("grpc", request, headers))
            return ExportTraceServiceResponse().SerializeToString()

        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {"Export": grpc.unary_unary_rpc_method_handler(export)},
        )
        server.add_generic_rpc_handlers((handler,))
        self.grpc_port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._grpc_server = server

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                sink._record(Received("http", body, {k.lower(): v for k, v in self.headers.items()}))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http_port = self._http_server.server_address[1]
        threading.Thread(target=self._http_server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None)
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def http_traces_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1/traces"

    # -- reading ------------------------------------------------------------------------------
    def _record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def raw_bytes(self) -> bytes:
        """Every body and header value received, concatenated: what a leak check searches."""
        parts: list[bytes] = []
        for item in self.requests():
            parts.append(item.body)
            parts.extend(f"{k}: {v}".encode() for k, v in item.headers.items())
        return b"\n".join(parts)

    def spans(self) -> list[SpanRecord]:
        return list(self._iter_spans())

    def _iter_spans(self) -> Iterator[SpanRecord]:
        for item in self.requests():
            request = ExportTraceServiceRequest.FromString(item.body)
            for resource_spans in request.resource_spans:
                resource = {kv.key: any_value(kv.value) for kv in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        yield SpanRecord(
                            name=span.name,
                            attributes={kv.key: any_value(kv.value) for kv in span.attributes},
                            resource=resource,
                            kind=span.kind,
                            status_code=span.status.code,
                            trace_id=span.trace_id,
                            span_id=span.span_id,
                            parent_span_id=span.parent_span_id,
                            events=[
                                (event.name, {kv.key: any_value(kv.value) for kv in event.attributes})
                                for event in span.events
                            ],
                        )

    def wait_for_spans(self, count: int, timeout: float = 15.0) -> list[SpanRecord]:
        deadline = time.monotonic() + timeout
        while True:
            spans = self.spans()
            if len(spans) >= count or time.monotonic() > deadline:
                return spans
            time.sleep(0.05)
