"""Service B for propagation tests: a plain WSGI app under the real WSGI instrumentation.

Exports OTLP/HTTP to the URL in argv[1]; prints its port on the first line of stdout. Each
request gets a child span; the response body echoes the baggage header it received.
"""

from __future__ import annotations

import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import otel_impact

provider = TracerProvider(resource=Resource({"service.name": "service-b"}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1])))
trace.set_tracer_provider(provider)
otel_impact.configure()
tracer = trace.get_tracer("service-b")


def app(environ: dict[str, object], start_response: object) -> list[bytes]:
    with tracer.start_as_current_span("b.work"):
        body = str(environ.get("HTTP_BAGGAGE", "")).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])  # type: ignore[operator]
    return [body]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


server = make_server("127.0.0.1", 0, OpenTelemetryMiddleware(app), handler_class=QuietHandler)
print(server.server_port, flush=True)
server.serve_forever()
