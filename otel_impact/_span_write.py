"""Writing attributes whose values are already valid onto SDK spans, cheaply.

This is the one module of otel-impact that writes into the OpenTelemetry SDK's private span
fields, and it does so only because the speed is the point: ``Span.set_attributes`` re-validates
every value and costs about 1 µs per attribute, while the values otel-impact writes were
validated once, when the impact state was made, and are written on every span.

`write_starting` and `write_attributes` put the values straight into the SDK's attribute
dictionary when the SDK has the layout this module knows (see `layout_problem`) and the span's
limits allow it (no value-length limit, room under the count limit, span not ended). Otherwise
they call the public ``Span.set_attributes``, which gives the same attributes. Whether the SDK
has the layout is decided once, at import (`FAST_PATH`); each span's own fields are still
checked before the direct write, so a span of another kind simply takes the public route.

A span being started is visible to no other thread, so the write needs no lock then; a running
span's lock is taken, as ``set_attributes`` would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.trace import Span


def layout_problem(span: object | None = None) -> str | None:
    """What in the SDK no longer has the layout the direct write needs, or ``None`` when all does.

    Checks ``BoundedAttributes`` (``_dict``, ``maxlen``, ``max_value_len``) and, given ``span``
    (an SDK span that is recording and has not ended), the span's ``_attributes``, ``_lock``
    and ``_end_time``. The answer names the field, for the test that guards the layout.
    """
    probe = BoundedAttributes(maxlen=4, immutable=False)
    if not isinstance(getattr(probe, "_dict", None), dict):
        return "BoundedAttributes keeps its values elsewhere than in a `_dict` dict"
    for name in ("maxlen", "max_value_len"):
        if not hasattr(probe, name):
            return f"BoundedAttributes has no `{name}`"
    if span is None:
        return None
    if type(getattr(span, "_attributes", None)) is not BoundedAttributes:
        return f"{type(span).__qualname__} keeps its attributes elsewhere than in a BoundedAttributes `_attributes`"
    lock = getattr(span, "_lock", None)
    if not (hasattr(lock, "__enter__") and hasattr(lock, "__exit__")):
        return f"{type(span).__qualname__} has no `_lock` to take"
    if getattr(span, "_end_time", 0) is not None:
        return f"{type(span).__qualname__} has no `_end_time` that is None while the span runs"
    return None


def fast_path_available() -> bool:
    """True when the SDK's attribute container has the layout the direct write writes to."""
    return layout_problem() is None


FAST_PATH: bool = fast_path_available()
"""Whether the direct write is used at all; chosen once, at import. ``False`` means every write
goes through ``Span.set_attributes``."""


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
