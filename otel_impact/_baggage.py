"""W3C baggage: what otel-impact propagates, and the trust boundary for what it receives.

Outgoing, baggage carries the pseudonym, tier, flags, task and synthetic mark of the current
`ImpactState`, never the raw ID:

=========================== ==============================================
baggage key                 value
=========================== ==============================================
``impact.customer.hash``    32 lowercase hex
``impact.customer.tier``    tier name
``impact.feature_flags``    ``key=variant`` pairs joined by ``,``
``impact.task.name``        task name
``impact.synthetic``        ``true`` on synthetic traffic, else absent
=========================== ==============================================

Incoming, ``impact.*`` baggage is a claim made by the caller. A service that does not trust its
callers (the default, ``OTEL_IMPACT_TRUST_INCOMING_BAGGAGE=false``) drops those entries when the
request is extracted, so an outside caller can neither set its own tier nor have a forged tier
forwarded to services further in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import baggage
from opentelemetry.context import Context, get_current, set_value
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from . import _attributes as attrs
from ._state import STATE_KEY, ImpactState, valid_flag, valid_task_name, valid_tier

BAGGAGE_CONTEXT_KEY: str | None
"""The context key under which the API keeps the baggage dict (``None`` if the API hides it).

Read and written directly so that a request's spans share one baggage parse and a state change
copies the context once instead of once per entry; the public functions are the fallback."""
try:
    from opentelemetry.baggage import _BAGGAGE_KEY as BAGGAGE_CONTEXT_KEY
except ImportError:  # pragma: no cover - an API without the name
    BAGGAGE_CONTEXT_KEY = None


def encode_flags(flags: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f"{key}={variant}" for key, variant in flags)


def decode_flags(text: object) -> tuple[tuple[str, str], ...]:
    """Parse ``key=variant,...``; malformed pairs are skipped."""
    if not isinstance(text, str) or not text:
        return ()
    pairs: dict[str, str] = {}
    for item in text.split(","):
        key, sep, variant = item.partition("=")
        flag = valid_flag(key.strip(), variant.strip()) if sep else None
        if flag is not None:
            pairs[flag[0]] = flag[1]
    return tuple(pairs.items())


def context_with_state(state: ImpactState, context: Context | None = None) -> Context:
    """``context`` with ``state`` stored and the baggage entries matching it.

    Entries the state does not define are removed, so nothing a caller sent under ``impact.*``
    rides along next to the service's own values.
    """
    wanted = state.baggage_entries
    if BAGGAGE_CONTEXT_KEY is None:  # pragma: no cover - the public route
        return _context_with_state_public(state, wanted, context)
    ctx = get_current() if context is None else context
    current = ctx.get(BAGGAGE_CONTEXT_KEY)
    values = dict(ctx)  # one copy of the context, whatever changes
    values[STATE_KEY] = state
    if not isinstance(current, dict) or not current:
        if wanted:  # no baggage yet: the state's entries are all of it (shared: baggage is copy-on-write)
            values[BAGGAGE_CONTEXT_KEY] = wanted
    elif any(current.get(key) != wanted.get(key) for key in attrs.BAGGAGE_KEYS):
        entries = {key: value for key, value in current.items() if key not in attrs.BAGGAGE_KEYS}
        entries.update(wanted)
        values[BAGGAGE_CONTEXT_KEY] = entries
    return Context(values)


def _context_with_state_public(state: ImpactState, wanted: Mapping[str, str], context: Context | None) -> Context:
    ctx = set_value(STATE_KEY, state, context)
    current = baggage.get_all(ctx)
    for key in attrs.BAGGAGE_KEYS:
        value = wanted.get(key)
        if value is None:
            if key in current:
                ctx = baggage.remove_baggage(key, ctx)
        elif current.get(key) != value:
            ctx = baggage.set_baggage(key, value, ctx)
    return ctx


def state_from_baggage(entries: Mapping[str, object]) -> ImpactState | None:
    """Build a state from trusted incoming baggage; invalid entries are ignored.

    A value under ``impact.customer.hash`` that is not a pseudonym is dropped: it may be a raw
    ID that a misbehaving caller put there, and it must not be stamped on spans.
    """
    raw_hash = entries.get(attrs.BAGGAGE_CUSTOMER_HASH)
    customer_hash = raw_hash if isinstance(raw_hash, str) and attrs.is_pseudonym(raw_hash) else None
    tier = valid_tier(entries.get(attrs.BAGGAGE_CUSTOMER_TIER))
    flags = decode_flags(entries.get(attrs.BAGGAGE_FEATURE_FLAGS))
    task = valid_task_name(entries.get(attrs.BAGGAGE_TASK_NAME))
    synthetic = entries.get(attrs.BAGGAGE_SYNTHETIC) == attrs.BAGGAGE_SYNTHETIC_TRUE
    if customer_hash is None and tier is None and not flags and task is None and not synthetic:
        return None
    return ImpactState(customer_hash=customer_hash, tier=tier, flags=flags, task=task, synthetic=synthetic)


def strip_impact_baggage(context: Context) -> Context:
    """``context`` without any ``impact.*`` baggage entry."""
    entries = baggage.get_all(context)
    for key in list(entries):
        if key.startswith(attrs.BAGGAGE_PREFIX):
            context = baggage.remove_baggage(key, context)
    return context


class ImpactBaggageFilter(TextMapPropagator):
    """Wraps a propagator and drops incoming ``impact.*`` baggage from untrusted callers.

    ``inject`` is passed through unchanged. ``extract`` calls the wrapped propagator and, unless
    ``trust_incoming`` is set, removes every ``impact.*`` baggage entry from the result.
    """

    def __init__(self, inner: TextMapPropagator, *, trust_incoming: bool) -> None:
        self.inner = inner
        self.trust_incoming = trust_incoming

    def extract(
        self, carrier: CarrierT, context: Context | None = None, getter: Getter[CarrierT] = default_getter
    ) -> Context:
        extracted = self.inner.extract(carrier, context, getter=getter)
        if self.trust_incoming:
            return extracted
        return strip_impact_baggage(extracted)

    def inject(
        self, carrier: CarrierT, context: Context | None = None, setter: Setter[CarrierT] = default_setter
    ) -> None:
        self.inner.inject(carrier, context, setter=setter)

    @property
    def fields(self) -> set[str]:
        return set(self.inner.fields)

    def __repr__(self) -> str:
        return f"ImpactBaggageFilter({self.inner!r}, trust_incoming={self.trust_incoming})"


def unwrap(propagator: Any) -> TextMapPropagator:
    """The propagator inside any `ImpactBaggageFilter` layers."""
    while isinstance(propagator, ImpactBaggageFilter):
        propagator = propagator.inner
    return propagator  # type: ignore[no-any-return]
