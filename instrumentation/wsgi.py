"""Plain WSGI: extraction in the ``request_hook`` of the WSGI instrumentation's middleware.

A plain WSGI application is instrumented by wrapping it in
``opentelemetry.instrumentation.wsgi.OpenTelemetryMiddleware``. Under
``opentelemetry-instrument`` every such middleware made afterwards gets this hook, composed
with the ``request_hook`` given to it. In code, pass it yourself::

    from otel_impact.instrumentation.wsgi import request_hook
    app = OpenTelemetryMiddleware(app, request_hook=request_hook)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span

from ._attribution import attribute_request
from ._patching import hook_middleware_attribute
from .incoming import WsgiRequest


def request_hook(span: Span, environ: Mapping[str, Any]) -> None:
    """Attribute the request to its customer. Never raises."""
    attribute_request(span, WsgiRequest(environ, "wsgi"))


def arm() -> bool:
    """Compose `request_hook` into every WSGI ``OpenTelemetryMiddleware`` made from now on.

    Raises `ImportError` when the WSGI instrumentation is not installed.
    """
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware  # noqa: PLC0415 - imports the framework: only when arming

    return hook_middleware_attribute(OpenTelemetryMiddleware, "request_hook", request_hook)
