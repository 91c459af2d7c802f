"""Plain WSGI: extraction in the ``request_hook`` of the WSGI instrumentation's middleware.

A plain WSGI application is instrumented by wrapping it in
``opentelemetry.instrumentation.wsgi.OpenTelemetryMiddleware``. Under
``opentelemetry-instrument`` every such middleware made afterwards gets this hook, composed
with the ``request_hook`` given to it. In code, pass it yourself::

    from otel_impact.instrumentation.wsgi import request_hook
    app = OpenTelemetryMiddleware(app, request_hook=request_hook)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.trace import Span

from ._attribution import attribute_request
from ._patching import compose, patch
from .incoming import WsgiRequest


def request_hook(span: Span, environ: Mapping[str, Any]) -> None:
    """Attribute the request to its customer. Never raises."""
    attribute_request(span, WsgiRequest(environ, "wsgi"))


def arm() -> bool:
    """Compose `request_hook` into every WSGI ``OpenTelemetryMiddleware`` made from now on.

    Raises `ImportError` when the WSGI instrumentation is not installed.
    """
    from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware  # noqa: PLC0415 - imports the framework: only when arming

    def make(original: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(original)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self.request_hook = compose(request_hook, getattr(self, "request_hook", None))

        return __init__

    return patch(OpenTelemetryMiddleware, "__init__", make)
