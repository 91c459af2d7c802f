"""Django: extraction in `DjangoInstrumentor`'s ``request_hook``, completed in its ``response_hook``.

The OpenTelemetry middleware runs first, before Django's ``AuthenticationMiddleware``, so
``request.user`` does not exist yet when the request hook runs. The request hook attributes
what the headers, the JWT and the cookie tell; the response hook, after the view, tries the
sources that need the user (``OTEL_IMPACT_DJANGO_USER_ATTRIBUTE`` and the customer callable)
when the request hook found no customer. It only fills in a server span that has no customer,
and never overrides a customer or tier the view set with ``otel_impact.set_customer``.

Spans started during the view carry what the request hook found; a customer found only in the
response phase is on the server span alone. To have it everywhere, call ``set_customer`` in a
middleware placed after ``AuthenticationMiddleware``.

Under ``opentelemetry-instrument`` both hooks are added for you (composed with hooks your
distro passes). In code::

    from otel_impact.instrumentation import django as impact_django
    DjangoInstrumentor().instrument(request_hook=impact_django.request_hook,
                                    response_hook=impact_django.response_hook)
"""

from __future__ import annotations

import contextlib
from typing import Any

from opentelemetry.trace import Span

from . import _task_stamp
from ._attribution import CustomerFields, active_extractor, attribute_request, attribute_response
from ._patching import hook_instrument_arguments
from .incoming import DjangoRequest

_APPLIED = "_otel_impact_applied"
_PROBE = "_otel_impact_task_probe"


def request_hook(span: Span, request: Any) -> None:
    """Attribute the request from headers, JWT and cookie. Never raises."""
    applied = attribute_request(span, DjangoRequest(request))
    with contextlib.suppress(Exception):  # an HttpRequest takes attributes; anything else is left alone
        setattr(request, _APPLIED, applied)
        if _task_stamp.rules is not None:
            setattr(request, _PROBE, _task_stamp.open_probe(span))


def response_hook(span: Span, request: Any, response: Any) -> None:
    """Attribute a server span still without a customer, from ``request.user``; stamp the task
    ``OTEL_IMPACT_TASKS`` names for the route (``http.route`` is set once the view is resolved). Never raises."""
    if _task_stamp.rules is not None:
        _task_stamp.finish_http(
            getattr(request, _PROBE, None),
            getattr(request, "method", None),
            _task_stamp.http_status(getattr(response, "status_code", None)),
        )
    if not active_extractor().has_late_sources:
        return
    applied: CustomerFields | None = getattr(request, _APPLIED, None)
    attribute_response(span, DjangoRequest(request, phase="response"), applied)


def arm(*, tasks: bool = False) -> bool:
    """Compose both hooks into every later ``DjangoInstrumentor().instrument(...)`` call (the
    response hook is always composed: ``tasks`` changes nothing here).

    Raises `ImportError` when the Django instrumentation is not installed.
    """
    from opentelemetry.instrumentation.django import DjangoInstrumentor  # noqa: PLC0415 - imports the framework: only when arming

    return hook_instrument_arguments(DjangoInstrumentor, request_hook=request_hook, response_hook=response_hook)
