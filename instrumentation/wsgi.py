"""Plain WSGI: extraction in the ``request_hook`` of the WSGI instrumentation's middleware.

A plain WSGI application is instrumented by wrapping it in
``opentelemetry.instrumentation.wsgi.OpenTelemetryMiddleware``. Under
``opentelemetry-instrument`` every such middleware made afterwards gets this hook, composed
with the ``request_hook`` given to it. In code, pass it yourself::

    from otel_impact.instrumentation.wsgi import request_hook
    app = OpenTelemetryMiddleware(app, request_hook=request_hook, response_hook=response_hook)

`response_hook` stamps the tasks ``OTEL_IMPACT_TASKS`` names; a plain WSGI app has no route,
so it matches only when something sets ``http.route`` on the server span.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span

from . import _task_stamp
from ._attribution import attribute_request
from ._patching import hook_middleware_attributes
from .incoming import WsgiRequest


def request_hook(span: Span, environ: Mapping[str, Any]) -> None:
    """Attribute the request to its customer. Never raises."""
    attribute_request(span, WsgiRequest(environ, "wsgi"))
    if _task_stamp.rules is not None:
        _task_stamp.open_carried_probe(span, environ)


def response_hook(span: Span, environ: Mapping[str, Any], status: str, response_headers: Any) -> None:
    """Stamp the task ``OTEL_IMPACT_TASKS`` names for this route, if any. Never raises."""
    if _task_stamp.rules is not None:
        _task_stamp.finish_http(
            environ.get(_task_stamp.CARRIER_KEY), environ.get("REQUEST_METHOD"), _task_stamp.http_status(status)
        )


def arm(*, tasks: bool = False) -> bool:
    """Compose `request_hook` (and `response_hook` when ``tasks``) into every WSGI
    ``OpenTelemetryMiddleware`` made from now on.

    Raises `ImportError` when the WSGI instrumentation is not installed.
    """
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware  # noqa: PLC0415 - imports the framework: only when arming

    if tasks:
        return hook_middleware_attributes(
            OpenTelemetryMiddleware, request_hook=request_hook, response_hook=response_hook
        )
    return hook_middleware_attributes(OpenTelemetryMiddleware, request_hook=request_hook)
