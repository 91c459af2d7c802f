"""The explicit API for who a request is for: `set_customer` and `set_feature_flag`.

Both change the *current* OpenTelemetry context, and both stamp the span that is current at
the time of the call, so a server span started before the application knew the customer still
counts.

Scope. The change lives in the current context. Inside a request handled by an OpenTelemetry
instrumentation (Flask, Django, ASGI, WSGI, gRPC...), the instrumentation restores the context
it found when the request ends, which discards the change: nothing leaks into the next
request on the same thread or asyncio task. Outside such a request, use the returned scope as
a context manager to bound it::

    with otel_impact.set_customer(order.account_id, tier="pro"):
        process(order)

Nothing here raises: an unusable value is ignored and logged once (without the value).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType

from opentelemetry import context as context_api
from opentelemetry import trace

from . import _attributes as attrs
from ._baggage import context_with_state
from ._log import log_once, logger
from ._runtime import get_runtime
from ._span_write import write_attributes
from ._state import CUSTOMER_STATES, EMPTY_STATE, AttributeValue, ImpactState, current_state, valid_flag, valid_tier


class ContextScope:
    """The context change made by `set_customer` or `set_feature_flag`.

    The change is already in effect when the call returns. Used as a context manager, the
    scope restores the previous context on exit; otherwise the change lasts as long as the
    enclosing context (the request).
    """

    __slots__ = ("_token",)

    def __init__(self, token: object | None) -> None:
        self._token = token

    def __enter__(self) -> ContextScope:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.restore()

    def restore(self) -> None:
        """Restore the context that was current before the change. Safe to call twice."""
        token, self._token = self._token, None
        if token is not None:
            context_api.detach(token)  # type: ignore[arg-type]


def _apply(state: ImpactState) -> ContextScope:
    token = context_api.attach(context_with_state(state))
    return ContextScope(token)


def set_customer(customer_id: object, *, tier: str | None = None) -> ContextScope:
    """Record who the current request is for.

    ``customer_id`` (``str``, ``int`` or ``bytes``) is turned into its keyed pseudonym here, once
    per request; the raw value goes nowhere else. Spans started afterwards in this context carry
    ``impact.customer.hash`` and ``impact.customer.tier``, as does the span current now, and
    outgoing calls carry them as baggage.

    ``None`` or an empty ID records the tier alone. Without a configured key the ID is refused
    (logged once) and only the tier is recorded. An invalid ``tier`` (not a string of 1 to 64
    printable characters) is ignored and logged once.
    """
    try:
        state = customer_state(customer_id, tier, current_state() or EMPTY_STATE)
        scope = _apply(state)
        _stamp_current_span(state.customer_stamp)
        return scope
    except Exception:  # the API must never break the request it observes
        logger.exception("otel-impact: set_customer() failed; the request continues without customer context.")
        return ContextScope(None)


def customer_state(customer_id: object, tier: str | None, base: ImpactState) -> ImpactState:
    """``base`` with the pseudonym of ``customer_id`` and ``tier``; unusable values are logged once.

    Changes no context and stamps no span.
    """
    customer_hash: str | None = None
    if customer_id is not None and customer_id != "":
        pseudonymizer = get_runtime().pseudonymizer
        if pseudonymizer is None:
            log_once(
                "set_customer:no-key",
                logging.WARNING,
                "otel-impact: set_customer() ignored the customer ID because no pseudonymization key is set "
                "(OTEL_IMPACT_HASH_KEY or OTEL_IMPACT_HASH_KEY_FILE).",
            )
        else:
            customer_hash = pseudonymizer.pseudonymize(customer_id)
            if customer_hash is None:
                log_once(
                    f"set_customer:type:{type(customer_id).__name__}",
                    logging.WARNING,
                    "otel-impact: set_customer() ignored a customer ID of type %s; use str or int.",
                    type(customer_id).__name__,
                )
    checked_tier = valid_tier(tier)
    if tier is not None and checked_tier is None:
        log_once(
            "set_customer:tier",
            logging.WARNING,
            "otel-impact: set_customer() ignored a tier that is not a string of 1 to 64 printable characters.",
        )
    if base is EMPTY_STATE:  # what `with_customer` does for it, without the extra call
        return CUSTOMER_STATES.get(customer_hash, checked_tier)
    return base.with_customer(customer_hash, checked_tier)


def set_feature_flag(key: str, variant: str) -> ContextScope:
    """Record that the current request saw variant ``variant`` of flag ``key``.

    Spans started afterwards, and the current span, carry ``key=variant`` in
    ``impact.feature_flags``; outgoing calls carry it as baggage. A later call for the same key
    replaces the variant. At most 32 flags are kept per request; invalid keys or variants
    (see `valid_flag`) are ignored and logged once.
    """
    try:
        flag = valid_flag(key, variant)
        if flag is None:
            log_once(
                "set_feature_flag:invalid",
                logging.WARNING,
                "otel-impact: set_feature_flag() ignored an invalid flag; keys and variants are strings of up to 128 "
                "printable characters, keys without '=' or ',', variants without ','.",
            )
            return ContextScope(None)
        state = current_state() or EMPTY_STATE
        if len(state.flags) >= attrs.MAX_FLAGS and all(existing != flag[0] for existing, _ in state.flags):
            log_once(
                "set_feature_flag:too-many",
                logging.WARNING,
                "otel-impact: more than %d feature flags in one request; further flags are not recorded.",
                attrs.MAX_FLAGS,
            )
            return ContextScope(None)
        state = state.with_flag(*flag)
        scope = _apply(state)
        _stamp_current_span({attrs.FEATURE_FLAGS: state.flag_strings()})
        return scope
    except Exception:
        logger.exception("otel-impact: set_feature_flag() failed; the request continues without the flag.")
        return ContextScope(None)


def _stamp_current_span(attributes: Mapping[str, AttributeValue]) -> None:
    if not attributes:
        return
    span = trace.get_current_span()
    if span.is_recording():
        write_attributes(span, attributes)
