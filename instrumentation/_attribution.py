"""What the framework hooks do with a request: attribute it, once, without overriding the app.

The request phase runs in the instrumentation's request hook, before the handler: it puts the
extracted customer in the request's context (so spans started later, and outgoing calls,
carry it) and stamps the server span, which was started before the customer was known.
An explicit ``set_customer`` by the application comes later and therefore wins.

A request carrying the header ``OTEL_IMPACT_SYNTHETIC_HEADER`` names is marked synthetic in the
request phase, whoever it is attributed to (or none): its server span and every span after it
carry ``impact.synthetic=true``, and its outgoing calls carry it in baggage.

Django's response phase runs after the view, for what only exists then (``request.user``). It
only fills in a server span that has no customer yet, and never one whose customer or tier the
application set itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Final

from opentelemetry import baggage
from opentelemetry import context as context_api
from opentelemetry.context import Context
from opentelemetry.trace import Span

from otel_impact import _attributes as attrs
from otel_impact._baggage import context_with_state, state_from_baggage
from otel_impact._context import customer_state
from otel_impact._log import log_once, logger
from otel_impact._runtime import get_runtime
from otel_impact._span_write import write_attributes
from otel_impact._state import EMPTY_STATE, AttributeValue, ImpactState, current_state

from .extract import RequestExtractor
from .incoming import IncomingRequest
from .settings import ExtractionSettings

_lock = threading.Lock()
_extractor: RequestExtractor | None = None

CustomerFields = tuple[str | None, str | None]
"""``(customer_hash, tier)`` as applied to a request."""


def install_extractor(extractor: RequestExtractor | None) -> None:
    """Use ``extractor`` for every hook from now on (``None``: rebuild from the environment)."""
    global _extractor
    with _lock:
        _extractor = extractor


def active_extractor() -> RequestExtractor:
    """The extractor in use; built from the environment on first use (problems logged once)."""
    extractor = _extractor
    if extractor is not None:
        return extractor
    with _lock:
        if _extractor is None:
            _install_from_env()
        assert _extractor is not None
        return _extractor


def _install_from_env() -> None:
    global _extractor
    settings, problems = ExtractionSettings.from_env()
    extractor, more = RequestExtractor.from_settings(settings)
    for problem in (*problems, *more):
        logger.error("otel-impact configuration: %s", problem)
    _extractor = extractor


def attribute_request(span: Span, request: IncomingRequest) -> CustomerFields | None:
    """Request phase: attribute ``request`` and stamp ``span``. Returns what was applied.

    Like ``set_customer`` (whose parts it uses), but it stamps ``span``, the server span the
    instrumentation just started, rather than the current span: some instrumentations (Flask,
    WSGI) call their request hook before making the server span current. Does nothing when a
    customer or tier is already in the current context (set explicitly earlier in this
    process). Never raises.
    """
    try:
        extractor = _extractor or active_extractor()
        if not extractor.active:
            return None
        ctx = context_api.get_current()
        current = current_state(ctx)
        synthetic = extractor.synthetic_rule is not None and extractor.is_synthetic(request)
        if current is not None and (current.customer_hash is not None or current.tier is not None):
            if synthetic:
                _mark_synthetic(span, current, ctx)
            return None
        found = extractor.resolve(request)
        if found is None:
            if synthetic:
                _mark_synthetic(span, current or _trusted_caller_state(ctx) or EMPTY_STATE, ctx)
            return None
        state = customer_state(found.customer_id, found.tier, current or _trusted_caller_state(ctx) or EMPTY_STATE)
        if synthetic:
            state = state.as_synthetic()
        context_api.attach(context_with_state(state, ctx))  # undone when the instrumentation restores its context
        if span.is_recording():
            write_attributes(span, {**state.customer_stamp, **SYNTHETIC_STAMP} if synthetic else state.customer_stamp)
        return (state.customer_hash, state.tier)
    except Exception as error:
        _failed("request", error)
        return None


SYNTHETIC_STAMP: Final[Mapping[str, AttributeValue]] = {attrs.SYNTHETIC: True}


def _mark_synthetic(span: Span, base: ImpactState, ctx: Context) -> None:
    """Make the request's context synthetic (``base`` marked) and stamp ``span``."""
    context_api.attach(context_with_state(base.as_synthetic(), ctx))
    if span.is_recording():
        write_attributes(span, SYNTHETIC_STAMP)


def _trusted_caller_state(ctx: Context) -> ImpactState | None:
    """What a trusted caller sent as baggage (flags, task), so that attributing the customer here
    keeps it; ``None`` when callers are not trusted."""
    if not get_runtime().settings.trust_incoming_baggage:
        return None
    return state_from_baggage(baggage.get_all(ctx))


def attribute_response(span: Span, request: IncomingRequest, applied: CustomerFields | None) -> None:
    """Response phase (Django): fill in the customer of a server span that has none yet.

    ``applied`` is what the request phase applied. Nothing happens when it found a customer,
    when the span already has one, or when the application changed the customer or tier (the
    current context or the span differ from ``applied``). Never raises.
    """
    try:
        if not span.is_recording():
            return
        applied = applied or (None, None)
        if applied[0] is not None:
            return
        state = current_state()
        current: CustomerFields = (state.customer_hash, state.tier) if state is not None else (None, None)
        span_attributes: Mapping[str, object] = getattr(span, "attributes", None) or {}
        on_span = (span_attributes.get(attrs.CUSTOMER_HASH), span_attributes.get(attrs.CUSTOMER_TIER))
        if current != applied or on_span != applied:
            return  # the application (or a trusted caller) said who this is
        extractor = active_extractor()
        if not extractor.active:
            return
        found = extractor.resolve(request)
        if found is None or found.customer_id is None:
            return
        late = customer_state(found.customer_id, found.tier or applied[1], state or EMPTY_STATE)
        write_attributes(span, late.customer_stamp)
    except Exception as error:
        _failed("response", error)


def _failed(phase: str, error: Exception) -> None:
    # The exception's type only: its message or traceback could quote request data.
    log_once(
        f"attribution:{phase}:{type(error).__name__}",
        logging.ERROR,
        "otel-impact: attributing a request failed in the %s phase (%s); the request continues unattributed.",
        phase,
        type(error).__name__,
    )
