"""A checkout service for the broken-propagation test: a plain WSGI app under opentelemetry-instrument.

``GET /checkout?to=NAME`` opens the ``checkout`` user task (its customer comes from the request
header that ``OTEL_IMPACT_CUSTOMER_HEADER`` names) and, inside it, calls the payments instance
whose URL is in the environment variable ``PAYMENTS_<NAME>_URL`` with requests (instrumented:
the call is a client span that carries the customer and injects the trace context and baggage).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

import requests
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from zc_common import serve_wsgi

import otel_impact

session = requests.Session()


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    target = parse_qs(str(environ.get("QUERY_STRING", ""))).get("to", ["A"])[0].upper()
    url = os.environ.get(f"PAYMENTS_{target}_URL")
    if url is None:
        start_response("400 Bad Request", [("Content-Type", "text/plain")])
        return [b"unknown payments instance"]
    with otel_impact.user_task("checkout"):
        answer = session.get(url, timeout=10)
    status = "200 OK" if answer.ok else "502 Bad Gateway"
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


if __name__ == "__main__":
    serve_wsgi(OpenTelemetryMiddleware(app))
