"""A plain WSGI service (the WSGI instrumentation's middleware, no framework) under opentelemetry-instrument.

It echoes the request headers it received and the impact state it sees, inside a child span.
The other zero-code apps call it as their downstream service.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from zc_common import serve_wsgi, state_json

tracer = trace.get_tracer("zc-backend")


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    with tracer.start_as_current_span("backend.work"):
        headers = {
            key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        body = json.dumps({"headers": headers, "state": state_json()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    serve_wsgi(OpenTelemetryMiddleware(app))
