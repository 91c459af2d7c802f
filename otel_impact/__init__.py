"""otel-impact: which customers does an incident hurt?

The SDK enrichment plugin. Two lines enable it on an OpenTelemetry SDK tracer provider::

    import otel_impact
    otel_impact.configure()

Then, inside requests::

    otel_impact.set_customer(account_id, tier="pro")
    otel_impact.set_feature_flag("new_checkout", "on")
    with otel_impact.user_task("checkout", value=order.total):
        ...

and, for the pages a request renders, ``otel_impact.browser_identity().meta_tags()`` hands the
browser its pseudonym and tier (never the raw ID).
"""

from ._attributes import is_pseudonym
from ._browser import BrowserIdentity, browser_identity
from ._context import ContextScope, set_customer, set_feature_flag
from ._exceptions import ConfigurationError, ConfigurationErrors, HashKeyError, OtelImpactError
from ._hash_key import HashKey, load_hash_key
from ._pii_guard import PiiGuardSpanExporter
from ._pseudonymize import Pseudonymizer
from ._settings import SdkSettings
from ._setup import ImpactResourceDetector, configure, impact_resource
from ._span_processor import ImpactSpanProcessor
from ._task import current_task, user_task
from ._task_handle import TaskHandle
from .version import __version__

__all__ = [
    "BrowserIdentity",
    "ConfigurationError",
    "ConfigurationErrors",
    "ContextScope",
    "HashKey",
    "HashKeyError",
    "ImpactResourceDetector",
    "ImpactSpanProcessor",
    "OtelImpactError",
    "PiiGuardSpanExporter",
    "Pseudonymizer",
    "SdkSettings",
    "TaskHandle",
    "__version__",
    "browser_identity",
    "configure",
    "current_task",
    "impact_resource",
    "is_pseudonym",
    "load_hash_key",
    "set_customer",
    "set_feature_flag",
    "user_task",
]
