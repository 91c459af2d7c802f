"""Writing attributes whose values are already valid onto SDK spans, cheaply.

``Span.set_attributes`` re-validates every value and costs about 1 µs per attribute; the values
otel-impact writes were validated once, when the impact state was made. `write_attributes`
puts them straight into the SDK's attribute dictionary when its layout and limits allow (no
value-length limit, room under the count limit, span not ended), and falls back to the public
``set_attributes`` otherwise. A span being started is visible to no other thread, so the write
needs no lock then; a running span's lock is taken, as ``set_attributes`` would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.trace import Span


def fast_path_available() -> bool:
    """True when the SDK's attribute container has the layout `write_attributes` writes to."""
    probe = BoundedAttributes(maxlen=4, immutable=False)
    return isinstance(getattr(probe, "_dict", None), dict) and hasattr(probe, "max_value_len")


FAST_PATH = fast_path_available()


def write_starting(span: Span, values: Mapping[str, Any]) -> None:
    """Set ``values`` (already valid attribute values) on a span inside ``SpanProcessor.on_start``.

    Nobody else can see the span yet, so no lock is taken. This is the per-span hot path.
    """
    if FAST_PATH:
        try:
            attributes: Any = span._attributes  # type: ignore[attr-defined]
        except AttributeError:  # not an SDK span
            attributes = None
        if type(attributes) is BoundedAttributes and attributes.max_value_len is None:
            current: dict[str, Any] = attributes._dict  # written inline: this runs for every span
            maxlen = attributes.maxlen
            if maxlen is None or len(current) + len(values) <= maxlen:
                current.update(values)
                return
    span.set_attributes(values)


def write_attributes(span: Span, values: Mapping[str, Any]) -> None:
    """Set ``values`` (already valid attribute values) on a recording span that is already running."""
    if FAST_PATH:
        attributes: Any = getattr(span, "_attributes", None)
        lock: Any = getattr(span, "_lock", None)
        if type(attributes) is BoundedAttributes and attributes.max_value_len is None and lock is not None:
            with lock:
                if getattr(span, "_end_time", 0) is None and _update(attributes, values):
                    return
    span.set_attributes(values)


def _update(attributes: Any, values: Mapping[str, Any]) -> bool:
    current: dict[str, Any] = attributes._dict
    maxlen = attributes.maxlen
    if maxlen is not None and len(current) + len(values) > maxlen:
        return False
    current.update(values)
    return True
