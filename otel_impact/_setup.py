"""Wiring otel-impact into a tracer provider: `configure` and its parts.

`configure` is the explicit two-line setup. It is made of public parts that can be used one by
one instead: `ImpactSpanProcessor`, `PiiGuardSpanExporter`, `impact_resource` (or the
``otel_impact`` resource detector) and `ImpactBaggageFilter`.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource, ResourceDetector
from opentelemetry.sdk.trace import TracerProvider

from . import _attributes as attrs
from ._baggage import ImpactBaggageFilter, unwrap
from ._log import logger
from ._pii_guard import PiiGuardSpanExporter
from ._runtime import Runtime, get_runtime, install_runtime
from ._settings import SdkSettings
from ._span_processor import ImpactSpanProcessor

_CONFIGURED_MARK = "_otel_impact_processor"


def impact_resource(runtime: Runtime | None = None) -> Resource:
    """A resource carrying ``impact.hash.key_id`` (empty when no key is configured)."""
    key_id = (runtime or get_runtime()).key_id
    return Resource({attrs.HASH_KEY_ID: key_id} if key_id else {})


class ImpactResourceDetector(ResourceDetector):
    """Resource detector ``otel_impact``: adds ``impact.hash.key_id``.

    Enable it with ``OTEL_EXPERIMENTAL_RESOURCE_DETECTORS=otel,otel_impact``; `configure` and the
    auto-instrumentation hook add the key id without it.
    """

    def detect(self) -> Resource:
        return impact_resource()


def install_baggage_filter(trust_incoming: bool) -> ImpactBaggageFilter:
    """Wrap the global propagator so untrusted ``impact.*`` baggage is dropped on extract.

    Idempotent: an existing filter is replaced, never stacked.
    """
    wrapped = ImpactBaggageFilter(unwrap(propagate.get_global_textmap()), trust_incoming=trust_incoming)
    propagate.set_global_textmap(wrapped)
    return wrapped


def guard_exporters(provider: TracerProvider, runtime: Runtime | None = None) -> int:
    """Wrap the exporter of each simple or batch span processor of ``provider`` in the PII guard.

    Returns how many exporters are guarded. Processors of other kinds are left alone (wrap their
    exporter in `PiiGuardSpanExporter` yourself).
    """
    runtime = runtime or get_runtime()
    guarded = 0
    for holder, name in _sdk_exporter_slots(provider):
        exporter = getattr(holder, name)
        if not isinstance(exporter, PiiGuardSpanExporter):
            guard = PiiGuardSpanExporter(
                exporter, attributes=runtime.settings.pii_attributes, pseudonymizer=runtime.pseudonymizer
            )
            setattr(holder, name, guard)
        guarded += 1
    return guarded


def add_key_id_to_resource(provider: TracerProvider, runtime: Runtime | None = None) -> bool:
    """Merge ``impact.hash.key_id`` into ``provider``'s resource; tracers made later carry it.

    Returns ``False`` when there is no key or the provider's layout is unknown.
    """
    extra = impact_resource(runtime)
    if not extra.attributes:
        return False
    return _sdk_replace_resource(provider, provider.resource.merge(extra))


# -- The SDK's private fields ------------------------------------------------------------------
# The SDK has no public way to list a provider's span processors, to reach a processor's
# exporter, or to change a provider's resource once it is made; `configure` must do all three on
# a provider it did not make. These two functions are the only places here that read or write
# SDK internals. Each checks the layout it expects and does nothing when it differs; the tests
# in tests/unit/sdk/test_configure.py fail, naming the field, when an SDK upgrade moves one.


def _sdk_exporter_slots(provider: TracerProvider) -> list[tuple[Any, str]]:
    """``(holder, attribute)`` of each exporter of ``provider``'s simple and batch span processors.

    Reads ``TracerProvider._active_span_processor._span_processors``, then per processor
    ``BatchSpanProcessor._batch_processor._exporter`` (SDK 1.28 and later) or ``span_exporter``
    (``SimpleSpanProcessor``, and ``BatchSpanProcessor`` before 1.28). Unknown layouts give none.
    """
    active = getattr(provider, "_active_span_processor", None)
    slots: list[tuple[Any, str]] = []
    for processor in tuple(getattr(active, "_span_processors", ())):
        inner = getattr(processor, "_batch_processor", None)
        if inner is not None and _own_fields(inner).get("_exporter") is not None:
            slots.append((inner, "_exporter"))
        elif _own_fields(processor).get("span_exporter") is not None:
            slots.append((processor, "span_exporter"))
    return slots


def _sdk_replace_resource(provider: TracerProvider, resource: Resource) -> bool:
    """Make ``resource`` ``provider``'s resource (the field behind its read-only ``resource``).

    Returns ``False``, changing nothing, when the provider does not keep it in ``_resource``.
    """
    if _own_fields(provider).get("_resource") is not provider.resource:
        return False
    provider._resource = resource
    return True


def _own_fields(obj: object) -> dict[str, Any]:
    fields = getattr(obj, "__dict__", None)
    return fields if isinstance(fields, dict) else {}


def configure(
    tracer_provider: TracerProvider | None = None, *, settings: SdkSettings | None = None
) -> ImpactSpanProcessor:
    """Enable otel-impact on ``tracer_provider`` (default: the global one) and return its processor.

    It adds an `ImpactSpanProcessor`, wraps the exporters already added to the provider in the
    PII guard, puts ``impact.hash.key_id`` on the resource, and makes the global propagator drop
    untrusted ``impact.*`` baggage. Call it once the exporters are added and before tracers are
    made; calling it again returns the same processor.

    ``settings`` replaces the settings read from ``OTEL_IMPACT_*`` variables.
    Raises `TypeError` when the provider is not the SDK's (there would be nothing to enrich).
    """
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        raise TypeError(
            "otel_impact.configure() needs an opentelemetry.sdk.trace.TracerProvider; "
            "set one with trace.set_tracer_provider(TracerProvider()) first, or pass it in."
        )
    runtime = install_runtime(settings) if settings is not None else get_runtime()
    existing = getattr(provider, _CONFIGURED_MARK, None)
    if isinstance(existing, ImpactSpanProcessor):
        guard_exporters(provider, runtime)
        return existing
    processor = ImpactSpanProcessor(trust_incoming_baggage=runtime.settings.trust_incoming_baggage)
    provider.add_span_processor(processor)
    setattr(provider, _CONFIGURED_MARK, processor)
    if guard_exporters(provider, runtime) == 0:
        logger.warning(
            "otel-impact: no span exporter found to guard; wrap yours in otel_impact.PiiGuardSpanExporter "
            "or call configure() after adding it."
        )
    add_key_id_to_resource(provider, runtime)
    install_baggage_filter(runtime.settings.trust_incoming_baggage)
    return processor
