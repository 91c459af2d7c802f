"""Flask: extraction in `FlaskInstrumentor`'s ``request_hook``.

Under ``opentelemetry-instrument`` the hook is added for you (composed with any ``request_hook``
your distro passes). When you instrument in code, pass it yourself::

    from otel_impact.instrumentation.flask import request_hook
    FlaskInstrumentor().instrument_app(app, request_hook=request_hook)

Flask calls the hook before it makes the server span current, so the hook stamps the span it is
given; ``flask.request`` is available to a customer callable while it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span

from ._attribution import attribute_request
from ._patching import hook_instrument_arguments
from .incoming import WsgiRequest


def request_hook(span: Span, environ: Mapping[str, Any]) -> None:
    """Attribute the request to its customer (see `otel_impact.instrumentation.extract`). Never raises."""
    attribute_request(span, WsgiRequest(environ, "flask"))


def arm() -> bool:
    """Compose `request_hook` into every later ``FlaskInstrumentor().instrument(...)`` call.

    Raises `ImportError` when the Flask instrumentation is not installed.
    """
    from opentelemetry.instrumentation.flask import FlaskInstrumentor  # noqa: PLC0415 - imports the framework: only when arming

    return hook_instrument_arguments(FlaskInstrumentor, request_hook=request_hook)
