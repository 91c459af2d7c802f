"""ASGI (FastAPI, Starlette, any ASGI app): extraction in the ``server_request_hook`` of the
ASGI instrumentation's middleware.

The FastAPI and Starlette instrumentations serve requests through
``opentelemetry.instrumentation.asgi.OpenTelemetryMiddleware``; under ``opentelemetry-instrument``
every such middleware made afterwards gets this hook, composed with the ``server_request_hook``
given to it. In code, pass it yourself::

    from otel_impact.instrumentation.asgi import server_request_hook
    FastAPIInstrumentor.instrument_app(app, server_request_hook=server_request_hook)

The hook runs with the server span current, before the application, in the request's context.
When ``OTEL_IMPACT_TASKS`` names tasks, `client_response_hook` stamps them when the response
starts (pass it as ``client_response_hook=``; it runs only while the ``send`` spans are not
excluded).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span

from . import _task_stamp
from ._attribution import attribute_request
from ._patching import hook_middleware_attributes
from .incoming import AsgiRequest


def server_request_hook(span: Span, scope: Mapping[str, Any]) -> None:
    """Attribute the request to its customer. Never raises."""
    attribute_request(span, AsgiRequest(scope))
    if _task_stamp.rules is not None:
        _task_stamp.open_carried_probe(span, scope)


def client_response_hook(span: Span, scope: Mapping[str, Any], message: Mapping[str, Any]) -> None:
    """At the start of the response, stamp the task ``OTEL_IMPACT_TASKS`` names for this route.

    ``span`` is the ``send`` span; the server span is the probe's. Never raises.
    """
    if _task_stamp.rules is not None and message.get("type") == "http.response.start":
        _task_stamp.finish_http(
            scope.get(_task_stamp.CARRIER_KEY), scope.get("method"), _task_stamp.http_status(message.get("status"))
        )


def arm(*, tasks: bool = False) -> bool:
    """Compose `server_request_hook` (and `client_response_hook` when ``tasks``) into every ASGI
    ``OpenTelemetryMiddleware`` made from now on.

    Raises `ImportError` when the ASGI instrumentation is not installed.
    """
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware  # noqa: PLC0415 - imports the framework: only when arming

    if tasks:
        return hook_middleware_attributes(
            OpenTelemetryMiddleware, server_request_hook=server_request_hook, client_response_hook=client_response_hook
        )
    return hook_middleware_attributes(OpenTelemetryMiddleware, server_request_hook=server_request_hook)
