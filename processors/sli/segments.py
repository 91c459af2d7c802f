"""Segment dimensions: reading a span's segment key, and decoding it into label values.

The hot loop builds an *undecoded* key per task event: for attribute dimensions the raw
AnyValue bytes (from the span, else from its resource), for flag dimensions the variant string.
Keys repeat, so each distinct key is decoded once and memoized per task. A missing value is
``unknown``; a flag variant comes from ``impact.feature_flags`` (``key=variant`` strings) or,
failing that, from a ``feature_flag.evaluation`` span event (``feature_flag.key`` and
``feature_flag.result.variant``, or the older ``feature_flag.variant``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from otel_impact.proto import view

from .config import DimensionConfig
from .tasks import UNKNOWN

__all__ = ["SegmentReader"]

FEATURE_FLAGS: Final = "impact.feature_flags"
FLAG_EVENT: Final = "feature_flag.evaluation"
MAX_VALUE_LENGTH: Final = 128
_MEMO_LIMIT: Final = 4096

KeyFunction = Callable[[Any, Any, tuple[Any, ...]], object]
"""``(span attributes, span, resource values) -> undecoded key``."""


class SegmentReader:
    """Compiled dimensions: `key` for the hot loop, `decode` for a new key, `resource_values` per resource."""

    def __init__(self, dimensions: Sequence[DimensionConfig]) -> None:
        self.names: tuple[str, ...] = tuple(d.name for d in dimensions)
        self.attribute_keys: tuple[str | None, ...] = tuple(d.attribute for d in dimensions)
        self.flag_keys: tuple[str | None, ...] = tuple(d.flag for d in dimensions)
        self._flag_memo: dict[bytes, dict[str, str]] = {}
        self.key: KeyFunction = self._compile()

    def aliases(self) -> dict[str, str]:
        """Names users may use for each dimension: its name and, for flags, ``flag:<key>``."""
        out = {name: name for name in self.names}
        for name, flag in zip(self.names, self.flag_keys, strict=True):
            if flag is not None:
                out.setdefault(f"flag:{flag}", name)
        return out

    def resource_values(self, resource_attributes: Any) -> tuple[bytes | None, ...]:
        """Per-resource fallbacks for the attribute dimensions (read once per ResourceSpans)."""
        get = resource_attributes.get
        return tuple(None if key is None else get(key) for key in self.attribute_keys)

    def _compile(self) -> KeyFunction:
        keys = self.attribute_keys
        if not keys:
            return lambda attrs, span, resource: ()
        if all(flag is None for flag in self.flag_keys):
            if len(keys) == 1:
                (k0,) = keys

                def key1(attrs: Any, span: Any, resource: tuple[Any, ...]) -> object:
                    return attrs.get(k0) or resource[0]

                return key1
            if len(keys) == 2:
                k0, k1 = keys

                def key2(attrs: Any, span: Any, resource: tuple[Any, ...]) -> object:
                    get = attrs.get
                    return (get(k0) or resource[0], get(k1) or resource[1])

                return key2
            if len(keys) == 3:
                k0, k1, k2 = keys

                def key3(attrs: Any, span: Any, resource: tuple[Any, ...]) -> object:
                    get = attrs.get
                    return (get(k0) or resource[0], get(k1) or resource[1], get(k2) or resource[2])

                return key3
        return self._generic_key

    def _generic_key(self, attrs: Any, span: Any, resource: tuple[Any, ...]) -> object:
        get = attrs.get
        out: list[object] = []
        flags: dict[str, str] | None = None
        for index, (attribute, flag) in enumerate(zip(self.attribute_keys, self.flag_keys, strict=True)):
            if attribute is not None:
                out.append(get(attribute) or resource[index])
                continue
            if flags is None:
                flags = self._flags(get(FEATURE_FLAGS), span)
            out.append(flags.get(flag))  # type: ignore[arg-type]
        return tuple(out)

    def _flags(self, raw: bytes | None, span: Any) -> dict[str, str]:
        flags: dict[str, str] = {}
        if raw is not None:
            memo = self._flag_memo.get(raw)
            if memo is None:
                memo = {}
                for item in view.decode_str_array(raw):
                    key, sep, variant = item.partition("=")
                    if sep and key:
                        memo[key] = variant
                if len(self._flag_memo) >= _MEMO_LIMIT:
                    self._flag_memo.clear()
                self._flag_memo[raw] = memo
            flags = memo
        if len(flags) < sum(f is not None for f in self.flag_keys) and span.events:
            flags = dict(flags)
            for event in span.events:
                if event.name != FLAG_EVENT:
                    continue
                attributes = event.attributes
                flag_key = view.decode_str(attributes.get("feature_flag.key"))
                variant = attributes.get("feature_flag.result.variant") or attributes.get("feature_flag.variant")
                if flag_key and flag_key not in flags and variant is not None:
                    flags[flag_key] = _text(variant)
        return flags

    def decode(self, key: object) -> tuple[str, ...]:
        """Label values for an undecoded key built by `key`."""
        parts = key if isinstance(key, tuple) else (key,)
        return tuple(_label(part) for part in parts)


def _text(raw: bytes) -> str:
    text = view.decode_str(raw)
    if text is None:
        value = view.decode_any(raw)
        text = "" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
    return text


def _label(part: object) -> str:
    if part is None:
        return UNKNOWN
    text = _text(part) if isinstance(part, bytes) else str(part)
    text = text[:MAX_VALUE_LENGTH]
    return text if text else UNKNOWN
