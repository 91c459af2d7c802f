"""The impact state carried in the OpenTelemetry context.

One immutable `ImpactState` lives under one context key. Each change (a customer, a flag, a
task) makes a new state, so a state can be shared by every span of a request without locks.
The attributes stamped on descendant spans are computed once, when the state is made, not per
span: the span processor's hot path is a dictionary lookup and one update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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
        object.__setattr__(self, "span_attributes", stamped)

    def flag_strings(self) -> tuple[str, ...]:
        """Flags as the ``key=variant`` strings of ``impact.feature_flags``."""
        return tuple(f"{key}={variant}" for key, variant in self.flags)

    def customer_attributes(self) -> dict[str, AttributeValue]:
        """Only the customer part, for stamping a span that is already running."""
        out: dict[str, AttributeValue] = {}
        if self.customer_hash is not None:
            out[attrs.CUSTOMER_HASH] = self.customer_hash
        if self.tier is not None:
            out[attrs.CUSTOMER_TIER] = self.tier
        return out

    def with_customer(self, customer_hash: str | None, tier: str | None) -> ImpactState:
        # Built directly: once per request in the framework hooks, where replace() costs 3x more.
        # A new field must be carried over here too.
        return ImpactState(
            customer_hash=customer_hash, tier=tier, flags=self.flags, task=self.task, task_handle=self.task_handle
        )

    def with_flag(self, key: str, variant: str) -> ImpactState:
        """A state whose flags include ``key=variant`` (replacing an earlier variant of ``key``)."""
        kept = tuple((k, v) for k, v in self.flags if k != key)
        return replace(self, flags=(*kept, (key, variant)))

    def with_task(self, name: str, handle: TaskHandle | None) -> ImpactState:
        return replace(self, task=name, task_handle=handle)

    @property
    def is_empty(self) -> bool:
        return not self.span_attributes and self.task_handle is None


EMPTY_STATE: Final = ImpactState()


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
