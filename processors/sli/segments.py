"""Segment dimensions: reading a span's segment key, and decoding it into label values.

The hot loop builds an *undecoded* key per task event: the raw AnyValue bytes of each attribute
dimension (from the span, else from its resource), followed, when flag dimensions are
configured, by one flags part: the raw ``impact.feature_flags`` bytes when they name every
configured flag, else the variants found in ``feature_flag.evaluation`` span events. Keys
repeat, so each distinct key is decoded once (`decode`) and memoized per task by the analyzer.

A missing value is ``unknown``. A flag variant comes from ``impact.feature_flags``
(``key=variant`` strings) or, failing that, from a ``feature_flag.evaluation`` span event
(``feature_flag.key`` and ``feature_flag.result.variant``, or the older ``feature_flag.variant``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, cast

from google.protobuf.message import DecodeError

from otel_impact.proto import view

from .config import DimensionConfig
from .tasks import UNKNOWN

__all__ = ["INVALID", "SegmentReader"]

FEATURE_FLAGS: Final = "impact.feature_flags"
FLAG_EVENT: Final = "feature_flag.evaluation"
MAX_VALUE_LENGTH: Final = 128
"""The longest label value kept: longer values are cut, so a series holds at most this per dimension."""
INVALID: Final = "(invalid)"
"""The label value of an attribute whose bytes do not decode as an AnyValue."""
_MEMO_LIMIT: Final = 4096
"""Entries of each cache of raw ``impact.feature_flags`` values (emptied when full)."""
_MEMO_KEY_BYTES: Final = 1024
"""The longest raw ``impact.feature_flags`` value the caches remember; longer ones are parsed each time."""

KeyFunction = Callable[[Any, Any, tuple[Any, ...], Any, int], tuple[Any, ...]]
"""``(span attributes, span, resource values, task, minute) -> (task, minute, *segment key)``.

The engine groups a batch's events by this tuple; ``result[2:]`` is the undecoded segment key
that `SegmentReader.decode` turns into label values."""


class SegmentReader:
    """Compiled dimensions: `key` for the hot loop, `decode` for a new key, `resource_values` per resource."""

    def __init__(self, dimensions: Sequence[DimensionConfig]) -> None:
        self.names: tuple[str, ...] = tuple(d.name for d in dimensions)
        self.attribute_keys: tuple[str | None, ...] = tuple(d.attribute for d in dimensions)
        self.flag_keys: tuple[str | None, ...] = tuple(d.flag for d in dimensions)
        self._attributes: tuple[str, ...] = tuple(k for k in self.attribute_keys if k is not None)
        self._flags: tuple[str, ...] = tuple(k for k in self.flag_keys if k is not None)
        self._parsed: dict[bytes, dict[str, str]] = {}
        self._complete: dict[bytes | None, bool] = {None: not self._flags}
        self.bad_values = 0
        """Segment values that did not decode (labelled `INVALID`), counted once per decoded key."""
        self.truncated_values = 0
        """Segment values cut to `MAX_VALUE_LENGTH`, counted once per decoded key."""
        self.key: KeyFunction = self._compile()

    def aliases(self) -> dict[str, str]:
        """Names users may use for each dimension: its name, ``flag:<key>`` for flags, and the
        attribute it reads (``service.version``) for attribute dimensions. Names win over the rest."""
        out = {name: name for name in self.names}
        for name, flag, attribute in zip(self.names, self.flag_keys, self.attribute_keys, strict=True):
            if flag is not None:
                out.setdefault(f"flag:{flag}", name)
            if attribute is not None:
                out.setdefault(attribute, name)
        return out

    def resource_values(self, resource_attributes: Any) -> tuple[bytes | None, ...]:
        """Per-resource fallbacks for the attribute dimensions (read once per ResourceSpans)."""
        get = resource_attributes.get
        return tuple(get(key) for key in self._attributes)

    # -- the hot path -----------------------------------------------------------------------------

    def _compile(self) -> KeyFunction:
        """Build `key` for this dimension layout: straight-line code, no loop over dimensions.

        Each attribute dimension reads ``attrs[key] if key in attrs`` (two cheap container calls;
        ``attrs.get`` costs more than both), falling back to the resource's value when the span
        lacks the attribute or holds an empty value. Keys are embedded as literals (``repr``).
        """
        lines = ["def key(attrs, span, resource, task, minute):"]
        parts = ["task", "minute"]
        for index, attribute in enumerate(self._attributes):
            literal = repr(attribute)
            parts.append(f"(attrs[{literal}] or resource[{index}]) if {literal} in attrs else resource[{index}]")
        if self._flags:
            lines.append(f"    raw = attrs[{FEATURE_FLAGS!r}] if {FEATURE_FLAGS!r} in attrs else None")
            parts.append("raw if complete.get(raw) else flag_part(raw, span)")
        lines.append(f"    return ({', '.join(parts)},)")
        namespace: dict[str, Any] = {"complete": self._complete, "flag_part": self._flag_part}
        exec("\n".join(lines), namespace)  # the source is built above from literals and repr()s only
        return cast(KeyFunction, namespace["key"])

    def _flag_part(self, raw: bytes | None, span: Any) -> object:
        """The flags part of a key when ``raw`` may not name every flag: learn, and read events."""
        if raw is not None and raw not in self._complete:
            parsed = self._parse(raw)
            complete = all(flag in parsed for flag in self._flags)
            if len(raw) <= _MEMO_KEY_BYTES:
                if len(self._complete) >= _MEMO_LIMIT:
                    self._complete.clear()
                    self._complete[None] = not self._flags
                self._complete[raw] = complete
            if complete:
                return raw
        found = dict(self._parse(raw)) if raw is not None else {}
        if span.events:
            for event in span.events:
                if event.name != FLAG_EVENT:
                    continue
                attributes = event.attributes
                flag = view.decode_str(attributes.get("feature_flag.key"))
                variant = attributes.get("feature_flag.result.variant") or attributes.get("feature_flag.variant")
                if flag and flag not in found and variant is not None:
                    found[flag] = _text(variant)
        return tuple(found.get(flag) for flag in self._flags)

    def _parse(self, raw: bytes) -> dict[str, str]:
        parsed = self._parsed.get(raw)
        if parsed is None:
            parsed = {}
            for item in view.decode_str_array(raw):
                flag, sep, variant = item.partition("=")
                if sep and flag:
                    parsed[flag] = variant
            if len(raw) <= _MEMO_KEY_BYTES:
                if len(self._parsed) >= _MEMO_LIMIT:
                    self._parsed.clear()
                self._parsed[raw] = parsed
        return parsed

    # -- decoding (once per distinct key) ---------------------------------------------------------

    def decode(self, key: object) -> tuple[str, ...]:
        """Label values, in dimension order, for an undecoded key built by `key`."""
        parts = key if isinstance(key, tuple) else (key,)
        attributes = iter(parts[: len(self._attributes)])
        variants: dict[str, str | None] = {}
        if self._flags:
            flag_part = parts[len(self._attributes)]
            if isinstance(flag_part, tuple):
                variants = dict(zip(self._flags, flag_part, strict=True))
            elif isinstance(flag_part, bytes):
                parsed = self._parse(flag_part)
                variants = {flag: parsed.get(flag) for flag in self._flags}
        values = []
        for attribute, flag in zip(self.attribute_keys, self.flag_keys, strict=True):
            values.append(
                self._label(next(attributes)) if attribute is not None else self._label(variants.get(flag or ""))
            )
        return tuple(values)

    def _label(self, part: object) -> str:
        """A key part as a label value: ``unknown`` when missing or empty, at most `MAX_VALUE_LENGTH` long."""
        if part is None:
            return UNKNOWN
        text = _text(part) if isinstance(part, bytes) else str(part)
        if text is INVALID:
            self.bad_values += 1
            return INVALID
        if len(text) > MAX_VALUE_LENGTH:
            self.truncated_values += 1
            text = text[:MAX_VALUE_LENGTH]
        return text if text else UNKNOWN


def _text(raw: bytes) -> str:
    """An AnyValue as label text: strings as they are, other values spelled out; `INVALID` when
    the bytes do not decode (e.g. kvlists nested past protobuf's depth limit)."""
    if raw and raw[0] == 0x0A and len(raw) > 1 and raw[1] < 0x80 and len(raw) == raw[1] + 2:
        return raw[2:].decode("utf-8", "replace")
    text = view.decode_str(raw)
    if text is None:
        try:
            value = view.decode_any(raw)
        except (DecodeError, RecursionError):
            return INVALID
        text = "" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
    return text
