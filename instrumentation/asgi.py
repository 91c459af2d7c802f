"""ASGI (FastAPI, Starlette, any ASGI app): extraction in the ``server_request_hook`` of the
ASGI instrumentation's middleware.

The FastAPI and Starlette instrumentations serve requests through
``opentelemetry.instrumentation.asgi.OpenTelemetryMiddleware``; under ``opentelemetry-instrument``
every such middleware made afterwards gets this hook, composed with the ``server_request_hook``
given to it. In code, pass it yourself::

    from otel_impact.instrumentation.asgi import server_request_hook
    FastAPIInstrumentor.instrument_app(app, server_request_hook=server_request_hook)

The hook runs with the server span current, before the application, in the request's context.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span

from ._attribution import attribute_request
from ._patching import hook_middleware_attribute
from .incoming import AsgiRequest


def server_request_hook(span: Span, scope: Mapping[str, Any]) -> None:
    """Attribute the request to its customer. Never raises."""
    attribute_request(span, AsgiRequest(scope))


def arm() -> bool:
    """Compose `server_request_hook` into every ASGI ``OpenTelemetryMiddleware`` made from now on.

    Raises `ImportError` when the ASGI instrumentation is not installed.
    """
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware  # noqa: PLC0415 - imports the framework: only when arming

    return hook_middleware_attribute(OpenTelemetryMiddleware, "server_request_hook", server_request_hook)
