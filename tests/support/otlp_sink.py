"""A real OTLP trace receiver for tests: gRPC and HTTP on loopback, recording raw bytes.

Its `Behavior` can be changed while it runs, to play a downstream that refuses (UNAVAILABLE /
HTTP 503 with a retry hint), rejects for good (INVALID_ARGUMENT / 400), accepts partially, or
answers slowly; `stop` and `start` on the same ports play an outage.
"""

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
class Behavior:
    """How the sink answers. ``status``: ok, unavailable, invalid."""

    status: str = "ok"
    retry_after: float | None = None
    partial_rejected: int = 0
    delay: float = 0.0


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

    def __init__(self, *, grpc_port: int = 0, http_port: int = 0) -> None:
        self.received: list[Received] = []
        self.metrics: list[Received] = []
        self.behavior = Behavior()
        self.refused = 0
        self._ids: list[list[bytes]] = []
        self._lock = threading.Lock()
        self._grpc_server: grpc.Server | None = None
        self._http_server: ThreadingHTTPServer | None = None
        self.grpc_port = grpc_port
        self.http_port = http_port

    def _response(self) -> bytes:
        response = ExportTraceServiceResponse()
        if self.behavior.partial_rejected:
            response.partial_success.rejected_spans = self.behavior.partial_rejected
            response.partial_success.error_message = "some spans were refused by the test sink"
        return response.SerializeToString()

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
            behavior = sink.behavior
            if behavior.delay:
                time.sleep(behavior.delay)
            if behavior.status != "ok":
                sink.refused += 1
                unavailable = behavior.status == "unavailable"
                code = grpc.StatusCode.UNAVAILABLE if unavailable else grpc.StatusCode.INVALID_ARGUMENT
                context.abort(code, "the test sink refuses")
            headers = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
            sink._record(Received("grpc", request, headers))
            return sink._response()

        def export_metrics(request: bytes, context: grpc.ServicerContext) -> bytes:
            sink._record_metrics(Received("grpc", request))
            return b""  # an empty ExportMetricsServiceResponse: full success

        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {"Export": grpc.unary_unary_rpc_method_handler(export)},
        )
        metrics_handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.metrics.v1.MetricsService",
            {"Export": grpc.unary_unary_rpc_method_handler(export_metrics)},
        )
        server.add_generic_rpc_handlers((handler, metrics_handler))
        self.grpc_port = server.add_insecure_port(f"127.0.0.1:{self.grpc_port}")
        server.start()
        self._grpc_server = server

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path.endswith("/v1/metrics"):
                    sink._record_metrics(Received("http", body))
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                behavior = sink.behavior
                if behavior.delay:
                    time.sleep(behavior.delay)
                if behavior.status != "ok":
                    sink.refused += 1
                    self.send_response(503 if behavior.status == "unavailable" else 400)
                    if behavior.retry_after is not None:
                        self.send_header("Retry-After", str(int(behavior.retry_after)))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                sink._record(Received("http", body, {k.lower(): v for k, v in self.headers.items()}))
                reply = sink._response()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._http_server = ThreadingHTTPServer(("127.0.0.1", self.http_port), Handler)
        self.http_port = self._http_server.server_address[1]
        threading.Thread(target=self._http_server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop listening (``start`` again listens on the same ports)."""
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None).wait(5)
            self._grpc_server = None
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server = None

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

    def _record_metrics(self, received: Received) -> None:
        with self._lock:
            self.metrics.append(received)

    def metric_requests(self) -> list[Received]:
        """OTLP metrics export requests received (kept apart from the traces)."""
        with self._lock:
            return list(self.metrics)

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

    def span_ids(self) -> list[bytes]:
        """The span id of every span received, duplicates included (cheap: no attribute decoding)."""
        requests = self.requests()
        for item in requests[len(self._ids) :]:
            request = ExportTraceServiceRequest.FromString(item.body)
            ids: list[bytes] = []
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    ids.extend(span.span_id for span in scope_spans.spans)
            self._ids.append(ids)
        return [span_id for ids in self._ids[: len(requests)] for span_id in ids]

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
