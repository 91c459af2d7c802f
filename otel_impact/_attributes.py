"""Names on the wire.

Semantic conventions have no customer or tenant attributes, so otel-impact's own live under
``impact.*``. Every name that leaves the process is defined here and nowhere else.
"""

from __future__ import annotations

from typing import Final

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

HASH_KEY_ID: Final = "impact.hash.key_id"
"""Resource attribute that identifies the pseudonymization key (never the key itself)."""

OUTCOME_SUCCESS: Final = "success"
OUTCOME_FAILURE: Final = "failure"

# W3C baggage keys. Baggage carries only the pseudonym, tier, flags and task, never the raw ID.
BAGGAGE_CUSTOMER_HASH: Final = CUSTOMER_HASH
BAGGAGE_CUSTOMER_TIER: Final = CUSTOMER_TIER
BAGGAGE_FEATURE_FLAGS: Final = FEATURE_FLAGS
BAGGAGE_TASK_NAME: Final = TASK_NAME
BAGGAGE_KEYS: Final = (BAGGAGE_CUSTOMER_HASH, BAGGAGE_CUSTOMER_TIER, BAGGAGE_FEATURE_FLAGS, BAGGAGE_TASK_NAME)
BAGGAGE_PREFIX: Final = "impact."

DEFAULT_PII_ATTRIBUTES: Final = ("enduser.id", "user.id", "user.email")
"""Raw identity attributes the PII guard replaces by the keyed pseudonym by default."""

FEATURE_FLAG_CONTEXT_ID: Final = "feature_flag.context.id"
"""The OpenFeature targeting key, which OpenFeature's OpenTelemetry ``TracingHook`` writes on its
``feature_flag.evaluation`` span events. It is usually the customer or user ID."""

ALWAYS_PSEUDONYMIZED: Final = (FEATURE_FLAG_CONTEXT_ID,)
"""Attributes the PII guard pseudonymizes whatever ``OTEL_IMPACT_PII_ATTRIBUTES`` lists."""
