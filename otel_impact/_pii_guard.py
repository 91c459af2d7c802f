"""The PII guard: raw identity attributes never reach an exporter.

Other code (an instrumentation's ``response_hook``, a library, a colleague) may set raw
identity attributes such as ``enduser.id``. `PiiGuardSpanExporter` wraps any span exporter and,
before each export, replaces the values of the configured attributes on spans, span events,
links and resources by the keyed pseudonym that `set_customer` would produce for the same ID.
``feature_flag.context.id`` (the OpenFeature targeting key on ``feature_flag.evaluation``
events) is treated the same way whatever the configured list says, and so is an
``impact.customer.hash`` whose value is not a pseudonym. These rules are the wire contract's
(`otel_impact._attributes.raw_identity_keys`), shared with the impact processor's identity
rewriter.

Without a key a raw value cannot be pseudonymized, so the attribute is removed instead.

Spans that carry none of those attributes are passed through untouched (the common case costs
one set test per span). The work runs on the exporter's thread, off the request path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link

from . import _attributes as attrs
from ._log import log_once
from ._pseudonymize import Pseudonymizer
from ._runtime import get_runtime

_UNSET: Any = object()


class AttributeGuard:
    """Rewrites raw identity values in attribute mappings. Thread-safe; keeps counters."""

    def __init__(self, keys: Iterable[str], pseudonymizer: Pseudonymizer | None) -> None:
        self.keys = frozenset(attrs.raw_identity_keys(keys))
        """Attributes whose every value is a raw identity."""
        self.claimed = frozenset(attrs.CLAIMED_PSEUDONYMS)
        """Attributes whose values must be pseudonyms; other values are raw identities."""
        self._watched = self.keys | self.claimed
        self._pseudonymizer = pseudonymizer
        self._lock = threading.Lock()
        self.replaced = 0
        """Attribute values replaced by their pseudonym."""
        self.removed = 0
        """Attributes removed because they could not be pseudonymized (no key, unusable value)."""

    def guard(self, attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A cleaned copy of ``attributes``, or ``None`` when they are already clean."""
        if not attributes:
            return None
        # Set operations over the keys: `in` on an SDK attribute mapping raises and catches a
        # KeyError per missing key, which made every span stamped by otel-impact cost µs here.
        present = self._watched.intersection(attributes)
        if not present:
            return None
        dirty = [key for key in present if key in self.keys or not attrs.is_pseudonym(attributes[key])]
        if not dirty:
            return None
        cleaned = dict(attributes)
        replaced = removed = 0
        for key in dirty:
            value = self._pseudonymize_value(cleaned[key])
            if value is None:
                del cleaned[key]
                removed += 1
            else:
                cleaned[key] = value
                replaced += 1
        with self._lock:
            self.replaced += replaced
            self.removed += removed
        if removed:
            log_once(
                "pii-guard:removed",
                logging.WARNING,
                "otel-impact: the PII guard removed raw identity attributes it could not pseudonymize "
                "(no key is set, or the value is not a str/int). Fix: set OTEL_IMPACT_HASH_KEY.",
            )
        return cleaned

    def _pseudonymize_value(self, value: Any) -> str | tuple[str, ...] | None:
        pseudonymizer = self._pseudonymizer
        if pseudonymizer is None:
            return None
        if isinstance(value, (str, int)):
            return pseudonymizer.pseudonymize(value)
        if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
            parts = [pseudonymizer.pseudonymize(item) for item in value]
            kept = tuple(part for part in parts if part is not None)
            return kept or None
        return None


class PiiGuardSpanExporter(SpanExporter):
    """Wraps ``exporter``; spans leave with raw identity attributes pseudonymized.

    ``attributes`` defaults to ``OTEL_IMPACT_PII_ATTRIBUTES`` (``enduser.id``, ``user.id``,
    ``user.email``); ``pseudonymizer`` defaults to the one built from the environment.
    ``export`` never raises on account of the guard: a span that cannot be cleaned is exported
    without the offending attributes rather than with them.
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        attributes: Iterable[str] | None = None,
        pseudonymizer: Pseudonymizer | None = _UNSET,
    ) -> None:
        runtime = get_runtime()
        if attributes is None:
            attributes = runtime.settings.pii_attributes
        if pseudonymizer is _UNSET:
            pseudonymizer = runtime.pseudonymizer
        self.exporter = exporter
        self.guard = AttributeGuard(attributes, pseudonymizer)
        self._clean_resources: dict[int, tuple[Resource, Resource]] = {}

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([self._guard_span(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)

    def _guard_span(self, span: ReadableSpan) -> ReadableSpan:
        if self._plainly_clean(span):
            return span
        guard = self.guard.guard
        attributes = guard(span.attributes)
        events = _guard_events(span.events, guard)
        links = _guard_links(span.links, guard)
        resource = self._guard_resource(span.resource)
        if attributes is None and events is None and links is None and resource is span.resource:
            return span
        return ReadableSpan(
            name=span.name,
            context=span.context,
            parent=span.parent,
            resource=resource,
            attributes=_frozen(attributes, span.dropped_attributes) if attributes is not None else span.attributes,
            events=events if events is not None else span.events,
            links=links if links is not None else span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    def _plainly_clean(self, span: ReadableSpan) -> bool:
        """True when the span certainly needs nothing: no events, no links, a resource already
        found clean, and attributes whose only watched keys (if any) are claimed pseudonyms that
        are pseudonyms. Read from the SDK span's own fields, which the public properties copy
        on every access; ``False`` whenever a field is not what the SDK keeps there (the full
        path then decides)."""
        try:
            attributes: Any = span._attributes
            events: Any = span._events
            links: Any = span._links
            resource: Any = span._resource
        except AttributeError:
            return False
        if events or links:
            return False
        known = self._clean_resources.get(id(resource))
        if known is None or known[0] is not resource or known[1] is not resource:
            return False
        values = attributes._dict if type(attributes) is BoundedAttributes else attributes
        if values is None:
            return True
        if type(values) is not dict:
            return False
        guard = self.guard
        present = guard._watched.intersection(values)
        if present:  # written out: a generator here costs as much as the rest of the check
            for key in present:
                if key not in guard.claimed or not attrs.is_pseudonym(values[key]):
                    return False
        return True

    def _guard_resource(self, resource: Resource) -> Resource:
        known = self._clean_resources.get(id(resource))
        if known is not None and known[0] is resource:
            return known[1]
        cleaned = self.guard.guard(resource.attributes)
        result = resource if cleaned is None else Resource(cleaned, resource.schema_url)
        if len(self._clean_resources) > 64:
            self._clean_resources.clear()
        self._clean_resources[id(resource)] = (resource, result)
        return result


def _frozen(attributes: dict[str, Any], dropped: int) -> BoundedAttributes:
    frozen = BoundedAttributes(maxlen=None, attributes=attributes, immutable=True)
    frozen.dropped = dropped
    return frozen


def _guard_events(events: Sequence[Event], guard: Callable[[Any], dict[str, Any] | None]) -> list[Event] | None:
    return _guard_each(events, guard, lambda event, clean: Event(event.name, _frozen(clean, 0), event.timestamp))


def _guard_links(links: Sequence[Link], guard: Callable[[Any], dict[str, Any] | None]) -> list[Link] | None:
    return _guard_each(links, guard, lambda link, clean: Link(link.context, _frozen(clean, 0)))


T = TypeVar("T", Event, Link)


def _guard_each(
    items: Sequence[T], guard: Callable[[Any], dict[str, Any] | None], rebuild: Callable[[T, dict[str, Any]], T]
) -> list[T] | None:
    """Items with cleaned attributes, or ``None`` when every item was already clean."""
    changed = False
    out: list[T] = []
    for item in items:
        cleaned = guard(item.attributes)
        if cleaned is None:
            out.append(item)
        else:
            changed = True
            out.append(rebuild(item, cleaned))
    return out if changed else None
