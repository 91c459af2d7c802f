"""The wire contract: the one definition of every name and limit on the wire, imported by the
SDK and the processor.

Semantic conventions have no customer or tenant attributes, so otel-impact's own live under
``impact.*``. Every name that leaves the process, every limit a value must keep to, the shape of
a pseudonym and the rules for raw identity attributes are defined here and nowhere else: the SDK
(state, baggage, PII guard) and the impact processor (identity rewriter, SLI engine) import
them, so what one side writes the other side reads the same way.

This module imports nothing of otel-impact; everything else may import it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

# -- span attributes ---------------------------------------------------------------------------

CUSTOMER_HASH: Final = "impact.customer.hash"
"""Keyed pseudonym of the customer ID: 32 lowercase hex characters (128 bits)."""

CUSTOMER_TIER: Final = "impact.customer.tier"
"""Customer tier, e.g. ``enterprise``, ``pro``, ``free``."""

FEATURE_FLAGS: Final = "impact.feature_flags"
"""String array of ``key=variant``."""

TASK_NAME: Final = "impact.task.name"
"""The user task (journey) the span belongs to, e.g. ``checkout``."""

TASK_ROOT: Final = "impact.task.root"
"""``True`` on the one span that opened the task, ``False`` on spans that inherited it.

The impact processor counts a task event once per execution: a span whose task is inherited
(in-process children and downstream services) is attribution only, not another event.
"""

TASK_OUTCOME: Final = "impact.task.outcome"
"""Explicit ``success`` / ``failure``, overriding derived success."""

TASK_VALUE: Final = "impact.task.value"
"""Money at stake in this task (double), for revenue at risk."""

SYNTHETIC: Final = "impact.synthetic"
"""``True`` on spans of synthetic traffic (probes, checks, load tests), never ``False``.

Set by ``user_task(..., synthetic=True)`` or, in zero-code mode, by the request header that
``OTEL_IMPACT_SYNTHETIC_HEADER`` names; carried downstream in baggage like the tier. The impact
processor keeps these task events out of the real-user SLIs and counts them as their own SLI.
"""

USER_AGENT_SYNTHETIC_TYPE: Final = "user_agent.synthetic.type"
"""Semantic convention attribute (``bot`` or ``test``): any value marks the span synthetic to the
impact processor, like ``impact.synthetic=true``."""

HASH_KEY_ID: Final = "impact.hash.key_id"
"""Resource attribute that identifies the pseudonymization key (never the key itself)."""

OUTCOME_SUCCESS: Final = "success"
OUTCOME_FAILURE: Final = "failure"

ERROR_TYPE: Final = "error.type"
"""Semantic convention attribute: the low-cardinality class of error on a failed task's span."""

# -- W3C baggage -------------------------------------------------------------------------------
# Baggage carries only the pseudonym, tier, flags, task and synthetic mark, never the raw ID.

BAGGAGE_CUSTOMER_HASH: Final = CUSTOMER_HASH
BAGGAGE_CUSTOMER_TIER: Final = CUSTOMER_TIER
BAGGAGE_FEATURE_FLAGS: Final = FEATURE_FLAGS
BAGGAGE_TASK_NAME: Final = TASK_NAME
BAGGAGE_SYNTHETIC: Final = SYNTHETIC
BAGGAGE_SYNTHETIC_TRUE: Final = "true"
"""The one baggage value of ``impact.synthetic`` (any other value is ignored)."""
BAGGAGE_KEYS: Final = (
    BAGGAGE_CUSTOMER_HASH,
    BAGGAGE_CUSTOMER_TIER,
    BAGGAGE_FEATURE_FLAGS,
    BAGGAGE_TASK_NAME,
    BAGGAGE_SYNTHETIC,
)
BAGGAGE_PREFIX: Final = "impact."

# -- limits on values --------------------------------------------------------------------------
# The SDK refuses values over these limits (logged once, never raised); the processor counts a
# task only when its name is within MAX_TASK_NAME_LENGTH, so any name the SDK accepts is counted.

MAX_TASK_NAME_LENGTH: Final = 128
"""Characters in a task name (``impact.task.name``), on both sides of the wire."""

MAX_TIER_LENGTH: Final = 64
"""Characters in a tier name (``impact.customer.tier``)."""

MAX_FLAG_KEY_LENGTH: Final = 128
"""Characters in a feature flag key (before ``=`` in ``impact.feature_flags``)."""

MAX_FLAG_VARIANT_LENGTH: Final = 128
"""Characters in a feature flag variant (after ``=`` in ``impact.feature_flags``)."""

MAX_FLAGS: Final = 32
"""Feature flags per request."""

# -- pseudonyms --------------------------------------------------------------------------------

PSEUDONYM_PATTERN: Final = re.compile(r"[0-9a-f]{32}")
"""The shape of a pseudonym (use with ``fullmatch``): 32 lowercase hex characters."""


def is_pseudonym(value: object) -> bool:
    """True when ``value`` has the shape of a pseudonym: 32 lowercase hex characters."""
    return isinstance(value, str) and PSEUDONYM_PATTERN.fullmatch(value) is not None


# -- raw identity (PII) rules ------------------------------------------------------------------

DEFAULT_PII_ATTRIBUTES: Final = ("enduser.id", "user.id", "user.email")
"""Raw identity attributes the PII guard replaces by the keyed pseudonym by default."""

FEATURE_FLAG_CONTEXT_ID: Final = "feature_flag.context.id"
"""The OpenFeature targeting key, which OpenFeature's OpenTelemetry ``TracingHook`` writes on its
``feature_flag.evaluation`` span events. It is usually the customer or user ID."""

ALWAYS_PSEUDONYMIZED: Final = (FEATURE_FLAG_CONTEXT_ID,)
"""Attributes pseudonymized whatever list of raw identity attributes is configured."""

IDENTITY_ATTRIBUTES: Final = (
    *DEFAULT_PII_ATTRIBUTES,
    "enduser.pseudo.id",
    "user.name",
    "user.full_name",
    "user.hash",
    "session.id",
    "session.previous_id",
    "client.address",
    FEATURE_FLAG_CONTEXT_ID,
)
"""Attributes that name a person, a session or a client (semantic conventions): the processor
never uses their values as labels or findings (explain never compares them), pseudonymized or not."""

CLAIMED_PSEUDONYMS: Final = (CUSTOMER_HASH,)
"""Attributes whose values must already be pseudonyms: a value of any other shape is a raw
identity (say, an ID a service without the SDK put there) and is pseudonymized like one."""


def raw_identity_keys(configured: Iterable[str]) -> tuple[str, ...]:
    """The attributes whose every value is a raw identity: ``configured`` plus `ALWAYS_PSEUDONYMIZED`.

    The one rule shared by the SDK's PII guard (``configured`` is ``OTEL_IMPACT_PII_ATTRIBUTES``)
    and the processor's identity rewriter (``pseudonymization.attributes``). Order is kept and
    duplicates are dropped. `CLAIMED_PSEUDONYMS` are left out even when configured: both sides
    always check them, and a value that already is a pseudonym must not be pseudonymized again.
    """
    return tuple(key for key in dict.fromkeys((*configured, *ALWAYS_PSEUDONYMIZED)) if key not in CLAIMED_PSEUDONYMS)
