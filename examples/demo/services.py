"""The demo's two services, each its own process: ``checkout`` calls ``payments`` over HTTP.

Run as ``python -m demo.services NAME --otlp URL [--payments URL]``; the
service prints its port on the first line of standard output. Both are plain standard-library
HTTP servers instrumented by hand with the OpenTelemetry API (server spans from the incoming
trace context, client spans with the context injected) and enriched by otel-impact:

* checkout is the edge: it takes the customer, tier and flag variant from the request (in a
  real service, from the session), calls `set_customer` and `set_feature_flag`, and wraps the
  purchase in ``user_task("checkout", value=amount)``;
* payments trusts its caller's baggage (``OTEL_IMPACT_TRUST_INCOMING_BAGGAGE=true``), so its
  spans carry the same pseudonym, tier, flag and task; it holds the fault: ``pro`` customers on
  variant ``on`` fail ``--fault-rate`` of their payments.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry import baggage, context, propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

import otel_impact

Handler = Callable[["Request"], tuple[int, dict[str, Any]]]


class Request:
    """What a handler sees: the parsed JSON body and the headers."""

    def __init__(self, body: dict[str, Any], headers: Any) -> None:
        self.body = body
        self.headers = headers


def make_server(name: str, route: str, handle: Handler) -> ThreadingHTTPServer:
    tracer = trace.get_tracer(f"demo.{name}")

    class RequestHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            # As a server instrumentation does: the caller's context (trace and baggage) is the
            # request's context, and the server span is current inside it.
            carrier = {name.lower(): value for name, value in self.headers.items()}
            token = context.attach(propagate.extract(carrier))
            try:
                self._serve()
            finally:
                context.detach(token)

        def _serve(self) -> None:
            attributes = {"http.request.method": "POST", "http.route": route, "url.path": self.path}
            with tracer.start_as_current_span(f"POST {route}", kind=SpanKind.SERVER, attributes=attributes) as span:
                length = int(self.headers.get("Content-Length", "0"))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                status, reply = handle(Request(body, self.headers)) if self.path == route else (404, {})
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)


def checkout_handler(payments_url: str) -> Handler:
    tracer = trace.get_tracer("demo.checkout")

    def handle(request: Request) -> tuple[int, dict[str, Any]]:
        body = request.body
        otel_impact.set_customer(body.get("customer"), tier=body.get("tier"))
        otel_impact.set_feature_flag("new_checkout", str(body.get("variant", "off")))
        amount = float(body.get("amount", 0.0))
        with otel_impact.user_task("checkout", value=amount) as task:
            with tracer.start_as_current_span("call payments", kind=SpanKind.CLIENT) as span:
                headers = {"Content-Type": "application/json"}
                propagate.inject(headers)
                data = json.dumps({"amount": amount}).encode()
                call = urllib.request.Request(payments_url, data=data, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(call, timeout=5) as response:
                        status = response.status
                except urllib.error.HTTPError as error:
                    status = error.code
                except OSError:
                    status = 599
                span.set_attribute("http.response.status_code", status)
            if status >= 500:
                task.fail("payment_failed")
                return 502, {"ok": False}
        return 200, {"ok": True}

    return handle


def payments_handler(fault_rate: float) -> Handler:
    chance = random.Random()

    def handle(request: Request) -> tuple[int, dict[str, Any]]:
        tier = baggage.get_baggage("impact.customer.tier")
        flags = str(baggage.get_baggage("impact.feature_flags") or "")
        if tier == "pro" and "new_checkout=on" in flags.split(",") and chance.random() < fault_rate:
            return 503, {"ok": False, "reason": "card processor timeout"}
        return 200, {"ok": True}

    return handle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="an otel-impact demo service")
    parser.add_argument("name", choices=("checkout", "payments"))
    parser.add_argument("--otlp", required=True, help="the processor's OTLP/gRPC endpoint, e.g. http://127.0.0.1:4317")
    parser.add_argument("--payments", help="checkout: the payments URL")
    parser.add_argument("--fault-rate", type=float, default=0.3, help="payments: failure rate for the faulty segment")
    args = parser.parse_args(argv)
    provider = TracerProvider(resource=Resource({"service.name": args.name, "service.version": "1.0"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=args.otlp, insecure=True), schedule_delay_millis=500)
    )
    trace.set_tracer_provider(provider)
    otel_impact.configure()
    if args.name == "checkout":
        if not args.payments:
            parser.error("checkout needs --payments")
        server = make_server("checkout", "/checkout", checkout_handler(args.payments))
    else:
        server = make_server("payments", "/pay", payments_handler(args.fault_rate))
    signal.signal(signal.SIGTERM, _interrupt)
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        provider.shutdown()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
