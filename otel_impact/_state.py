"""The impact state carried in the OpenTelemetry context.

One immutable `ImpactState` lives under one context key. Each change (a customer, a flag, a
task) makes a new state, so a state can be shared by every span of a request without locks.
The attributes stamped on descendant spans are computed once, when the state is made, not per
span: the span processor's hot path is a dictionary lookup and one update.

A request attributed to a customer and nothing else (the framework hooks' common case) gets a
state from `CustomerStates`, a bounded cache keyed by pseudonym and tier, so the state, its
baggage entries and its span attributes are built once per customer, not once per request.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Final, TypeAlias

from opentelemetry.context import Context, create_key, get_current

from . import _attributes as attrs
from ._task_handle import TaskHandle

AttributeValue: TypeAlias = "str | bool | int | float | tuple[str, ...]"

STATE_KEY: Final = create_key("otel-impact-state")


@dataclass(frozen=True, eq=False)
class ImpactState:
    """Who the request is for and what the user is doing, as it may leave the process.

    It holds only the pseudonym, never the raw ID. ``span_attributes`` is what every span
    started in this state is stamped with; ``task_handle`` is the innermost open task.
    """

    customer_hash: str | None = None
    tier: str | None = None
    flags: tuple[tuple[str, str], ...] = ()
    task: str | None = None
    task_handle: TaskHandle | None = None
    synthetic: bool = False
    """The request is synthetic traffic (a probe, a check): stamped ``impact.synthetic=true``."""
    span_attributes: Mapping[str, AttributeValue] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        stamped: dict[str, AttributeValue] = {}
        if self.customer_hash is not None:
            stamped[attrs.CUSTOMER_HASH] = self.customer_hash
        if self.tier is not None:
            stamped[attrs.CUSTOMER_TIER] = self.tier
        if self.flags:
            stamped[attrs.FEATURE_FLAGS] = self.flag_strings()
        if self.task is not None:
            stamped[attrs.TASK_NAME] = self.task
            stamped[attrs.TASK_ROOT] = False
        if self.synthetic:
            stamped[attrs.SYNTHETIC] = True
        object.__setattr__(self, "span_attributes", stamped)

    def flag_strings(self) -> tuple[str, ...]:
        """Flags as the ``key=variant`` strings of ``impact.feature_flags``."""
        return tuple(f"{key}={variant}" for key, variant in self.flags)

    def customer_attributes(self) -> dict[str, AttributeValue]:
        """Only the customer part, for stamping a span that is already running."""
        return dict(self.customer_stamp)

    @cached_property
    def customer_stamp(self) -> Mapping[str, AttributeValue]:
        """`customer_attributes`, computed once per state and shared: read it, never change it."""
        out: dict[str, AttributeValue] = {}
        if self.customer_hash is not None:
            out[attrs.CUSTOMER_HASH] = self.customer_hash
        if self.tier is not None:
            out[attrs.CUSTOMER_TIER] = self.tier
        return out

    @cached_property
    def baggage_entries(self) -> Mapping[str, str]:
        """The ``impact.*`` baggage entries this state defines (see `otel_impact._baggage`),
        computed once per state and shared: read it, never change it."""
        entries: dict[str, str] = {}
        if self.customer_hash is not None:
            entries[attrs.BAGGAGE_CUSTOMER_HASH] = self.customer_hash
        if self.tier is not None:
            entries[attrs.BAGGAGE_CUSTOMER_TIER] = self.tier
        if self.flags:
            entries[attrs.BAGGAGE_FEATURE_FLAGS] = ",".join(self.flag_strings())
        if self.task is not None:
            entries[attrs.BAGGAGE_TASK_NAME] = self.task
        if self.synthetic:
            entries[attrs.BAGGAGE_SYNTHETIC] = attrs.BAGGAGE_SYNTHETIC_TRUE
        return entries

    def with_customer(self, customer_hash: str | None, tier: str | None) -> ImpactState:
        if self is EMPTY_STATE:  # a customer and nothing else: the framework hooks' common case
            return CUSTOMER_STATES.get(customer_hash, tier)
        # Built directly: replace() costs 3x more. A new field must be carried over here too.
        return ImpactState(
            customer_hash=customer_hash,
            tier=tier,
            flags=self.flags,
            task=self.task,
            task_handle=self.task_handle,
            synthetic=self.synthetic,
        )

    def with_flag(self, key: str, variant: str) -> ImpactState:
        """A state whose flags include ``key=variant`` (replacing an earlier variant of ``key``)."""
        kept = tuple((k, v) for k, v in self.flags if k != key)
        return replace(self, flags=(*kept, (key, variant)))

    def with_task(self, name: str, handle: TaskHandle | None) -> ImpactState:
        return replace(self, task=name, task_handle=handle)

    def as_synthetic(self) -> ImpactState:
        """This state marked as synthetic traffic (itself when it already is)."""
        return self if self.synthetic else replace(self, synthetic=True)

    @property
    def is_empty(self) -> bool:
        return not self.span_attributes and self.task_handle is None


EMPTY_STATE: Final = ImpactState()


class CustomerStates:
    """A bounded cache of the states that hold a customer and nothing else, keyed by
    ``(customer_hash, tier)``.

    The key is the pseudonym (never the raw ID), which may leave the process anyway. At most
    ``max_entries`` states are kept; when full, the oldest entry is dropped. Lookups take no
    lock; inserts take one. Thread-safe: a race costs at most one state built twice.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be zero or positive.")
        self.max_entries = max_entries
        self._states: dict[tuple[str | None, str | None], ImpactState] = {}
        self._lock = threading.Lock()

    def get(self, customer_hash: str | None, tier: str | None) -> ImpactState:
        """The state with ``customer_hash`` and ``tier`` and nothing else (from the cache when seen)."""
        key = (customer_hash, tier)
        state = self._states.get(key)
        if state is not None:
            return state
        state = ImpactState(customer_hash=customer_hash, tier=tier)
        if self.max_entries and _cacheable(customer_hash, tier):
            with self._lock:
                states = self._states
                while len(states) >= self.max_entries:
                    del states[next(iter(states))]
                states[key] = state
        return state

    def __len__(self) -> int:
        return len(self._states)

    def cached_keys(self) -> list[tuple[str | None, str | None]]:
        """The cached keys, oldest first (for tests and diagnostics: pseudonyms and tiers only)."""
        return list(self._states)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()


def _cacheable(customer_hash: str | None, tier: str | None) -> bool:
    # Only values of bounded size are kept, so that entries bound the bytes too.
    return (customer_hash is None or attrs.is_pseudonym(customer_hash)) and (
        tier is None or len(tier) <= attrs.MAX_TIER_LENGTH
    )


CUSTOMER_STATES: Final = CustomerStates()
"""The process's cache of customer-only states (see `CustomerStates`)."""


def current_state(context: Context | None = None) -> ImpactState | None:
    """The state in ``context`` (default: the current context), or ``None``."""
    ctx = get_current() if context is None else context
    state = ctx.get(STATE_KEY)
    return state if isinstance(state, ImpactState) else None


def valid_tier(tier: object) -> str | None:
    """``tier`` when it is a usable tier name, else ``None``."""
    if isinstance(tier, str) and 0 < len(tier) <= attrs.MAX_TIER_LENGTH and tier.isprintable():
        return tier
    return None


def valid_task_name(name: object) -> str | None:
    """``name`` when it is a usable task name, else ``None``."""
    if isinstance(name, str) and 0 < len(name) <= attrs.MAX_TASK_NAME_LENGTH and name.isprintable():
        return name
    return None


def valid_flag(key: object, variant: object) -> tuple[str, str] | None:
    """``(key, variant)`` as strings when usable as ``key=variant``, else ``None``.

    Keys may not contain ``=`` or ``,``; variants may not contain ``,`` (the separator used in
    baggage). ``bool`` variants become ``true``/``false`` and ``int`` variants their decimal.
    """
    if isinstance(variant, bool):
        variant = "true" if variant else "false"
    elif isinstance(variant, int):
        variant = str(variant)
    if not isinstance(key, str) or not isinstance(variant, str):
        return None
    if not (0 < len(key) <= attrs.MAX_FLAG_KEY_LENGTH) or "=" in key or "," in key or not key.isprintable():
        return None
    if not (0 < len(variant) <= attrs.MAX_FLAG_VARIANT_LENGTH) or "," in variant or not variant.isprintable():
        return None
    return key, variant
