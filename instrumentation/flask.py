"""Flask: extraction in `FlaskInstrumentor`'s ``request_hook``.

Under ``opentelemetry-instrument`` the hook is added for you (composed with any ``request_hook``
your distro passes). When you instrument in code, pass it yourself::

    from otel_impact.instrumentation.flask import request_hook
    FlaskInstrumentor().instrument_app(app, request_hook=request_hook)

Flask calls the hook before it makes the server span current, so the hook stamps the span it is
given; ``flask.request`` is available to a customer callable while it runs. When
``OTEL_IMPACT_TASKS`` names tasks, `response_hook` stamps them (pass it as ``response_hook=``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import Span

from . import _task_stamp
from ._attribution import attribute_request
from ._patching import hook_instrument_arguments
from .incoming import WsgiRequest


def request_hook(span: Span, environ: Mapping[str, Any]) -> None:
    """Attribute the request to its customer (see `otel_impact.instrumentation.extract`). Never raises."""
    attribute_request(span, WsgiRequest(environ, "flask"))
    if _task_stamp.rules is not None:
        _task_stamp.open_carried_probe(span, environ)


def response_hook(span: Span, status: str, response_headers: Any) -> None:
    """Stamp the task ``OTEL_IMPACT_TASKS`` names for this route, if any. Never raises."""
    if _task_stamp.rules is None:
        return
    import flask  # noqa: PLC0415 - the hook runs inside a Flask request

    try:
        environ = flask.request.environ
    except RuntimeError:  # outside a request context
        return
    _task_stamp.finish_http(
        environ.get(_task_stamp.CARRIER_KEY), environ.get("REQUEST_METHOD"), _task_stamp.http_status(status)
    )


def arm(*, tasks: bool = False) -> bool:
    """Compose `request_hook` (and `response_hook` when ``tasks``) into every later
    ``FlaskInstrumentor().instrument(...)`` call.

    Raises `ImportError` when the Flask instrumentation is not installed.
    """
    from opentelemetry.instrumentation.flask import FlaskInstrumentor  # noqa: PLC0415 - imports the framework: only when arming

    if tasks:
        return hook_instrument_arguments(FlaskInstrumentor, request_hook=request_hook, response_hook=response_hook)
    return hook_instrument_arguments(FlaskInstrumentor, request_hook=request_hook)
