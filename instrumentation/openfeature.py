"""OpenFeature: every flag evaluation lands on the request's spans as ``key=variant``.

Install with ``pip install 'otel-impact[openfeature]'``. Under ``opentelemetry-instrument`` the
hook is registered globally for you (``OTEL_IMPACT_OPENFEATURE_HOOK=false`` turns that off); in
code::

    from openfeature import api
    from otel_impact.instrumentation.openfeature import ImpactFeatureFlagHook
    api.add_hooks([ImpactFeatureFlagHook()])

Each evaluation calls ``otel_impact.set_feature_flag(key, variant)``: the current span's
``impact.feature_flags`` gets ``key=variant``, as do spans started later in the request and the
baggage of outgoing calls.

**Variant or value.** The provider's variant name is used when it gives one. Without a variant
the evaluated value stands in for it when it is a ``bool`` (``true``/``false``), an ``int`` or a
string (up to 128 printable characters, no comma); ``float`` and object values are not recorded
(they make poor segments and may hold data). After an evaluation error the default value the
application received is recorded the same way, so the segment shows what users got.

It works beside OpenFeature's ``TracingHook`` (openfeature-hooks-opentelemetry), whose
``feature_flag.evaluation`` span events the impact processor also reads. That hook writes the
targeting key as ``feature_flag.context.id``; otel-impact's PII guard always pseudonymizes that
attribute before export, so a customer-ID targeting key leaves the process as its pseudonym,
while providers still evaluate the real key.
"""

from __future__ import annotations

import logging
from typing import Any

try:
    from openfeature import api
    from openfeature.flag_evaluation import FlagEvaluationDetails, FlagType
    from openfeature.hook import Hook, HookContext, HookHints
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "otel_impact.instrumentation.openfeature needs the OpenFeature SDK: pip install 'otel-impact[openfeature]'"
    ) from error

from otel_impact._context import set_feature_flag
from otel_impact._log import log_once


def flag_variant(details: FlagEvaluationDetails[Any]) -> str | None:
    """The variant to record for an evaluation: the provider's variant, else a usable value."""
    if isinstance(details.variant, str) and details.variant:
        return details.variant
    value = details.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


class ImpactFeatureFlagHook(Hook):
    """OpenFeature hook recording each evaluated flag with ``otel_impact.set_feature_flag``.

    It reads the evaluation's outcome only: it changes neither the evaluation context nor what
    the provider evaluates. It never raises into the evaluation.
    """

    def finally_after(self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints) -> None:
        try:
            variant = flag_variant(details)
            if variant is not None:
                set_feature_flag(details.flag_key or hook_context.flag_key, variant)
        except Exception as error:
            log_once(
                f"openfeature-hook:{type(error).__name__}",
                logging.ERROR,
                "otel-impact: the OpenFeature hook failed (%s); the flag is not recorded.",
                type(error).__name__,
            )

    def supports_flag_value_type(self, flag_type: FlagType) -> bool:
        return True


def register_global_hook() -> bool:
    """Add one `ImpactFeatureFlagHook` to OpenFeature's global hooks. ``False`` if one is there."""
    if any(isinstance(hook, ImpactFeatureFlagHook) for hook in api.get_hooks()):
        return False
    api.add_hooks([ImpactFeatureFlagHook()])
    return True


def unregister_global_hook() -> None:
    """Remove every `ImpactFeatureFlagHook` from OpenFeature's global hooks."""
    kept = [hook for hook in api.get_hooks() if not isinstance(hook, ImpactFeatureFlagHook)]
    api.clear_hooks()
    api.add_hooks(kept)
