"""Reading config mappings field by field, collecting every problem with its path and fix.

The config parsers of this package build frozen dataclasses from the raw YAML mapping. Rather
than stopping at the first bad field, they note each problem in a `Problems` list and raise one
`ConfigurationErrors` at the end, so ``otel-impact check-config`` shows them all at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from otel_impact._exceptions import ConfigurationError, ConfigurationErrors
from otel_impact.processors.durations import DURATION_FIX, format_duration, parse_duration

__all__ = ["Problems"]


class Problems:
    """Collects config problems while a mapping is read; `raise_if_any` ends the read."""

    def __init__(self) -> None:
        self.items: list[ConfigurationError] = []

    def add(self, path: str, problem: str, fix: str) -> None:
        self.items.append(ConfigurationError(path, problem, fix))

    def extend(self, error: ConfigurationError) -> None:
        """Add the problems of ``error``, except for fields that already have one."""
        known = {item.setting for item in self.items}
        found = error.problems if isinstance(error, ConfigurationErrors) else (error,)
        self.items.extend(item for item in found if item.setting not in known)

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigurationErrors(self.items)

    # -- readers: each returns the value, or None after noting a problem -------------------------

    def mapping(self, raw: object, path: str, known: Sequence[str]) -> Mapping[str, Any] | None:
        """``raw`` as a mapping with only ``known`` keys (unknown keys are noted as typos)."""
        if not isinstance(raw, Mapping):
            self.add(path, f"expected a mapping, got {_kind(raw)}", "write it as `key: value` lines")
            return None
        for key in raw:
            if key not in known:
                self.add(
                    f"{path}.{key}" if path else str(key),
                    "unknown field",
                    f"remove it or use one of: {', '.join(known)}",
                )
        return raw

    def string(self, raw: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
        value = raw.get(key)
        if value is None:
            if required:
                self.add(f"{path}.{key}", "missing", f"set `{key}`")
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(f"{path}.{key}", f"expected a non-empty string, got {_kind(value)}", f"set `{key}` to text")
            return None
        return value.strip()

    def number(
        self,
        raw: Mapping[str, Any],
        key: str,
        path: str,
        *,
        default: float | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive: bool = False,
    ) -> float | None:
        """A finite number within ``[minimum, maximum]`` (exclusive bounds if ``exclusive``)."""
        value = raw.get(key)
        if value is None:
            if default is None:
                self.add(f"{path}.{key}", "missing", f"set `{key}` to a number")
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.add(f"{path}.{key}", f"expected a number, got {_kind(value)}", f"set `{key}` to a number")
            return default
        low_bad = minimum is not None and (value <= minimum if exclusive else value < minimum)
        high_bad = maximum is not None and (value >= maximum if exclusive else value > maximum)
        if low_bad or high_bad:
            word = "between" if not exclusive else "strictly between"
            self.add(
                f"{path}.{key}",
                f"{value} is out of range",
                f"use a number {word} {_show(minimum)} and {_show(maximum)}",
            )
            return default
        return float(value)

    def integer(self, raw: Mapping[str, Any], key: str, path: str, *, default: int, minimum: int = 0) -> int:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.add(f"{path}.{key}", f"expected a whole number >= {minimum}, got {value!r}", f"set `{key}` to one")
            return default
        return value

    def boolean(self, raw: Mapping[str, Any], key: str, path: str, *, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            self.add(f"{path}.{key}", f"expected true or false, got {value!r}", f"set `{key}: true` or `false`")
            return default
        return value

    def duration(self, raw: Mapping[str, Any], key: str, path: str, *, default: float, minimum: float = 0.0) -> float:
        """A duration string such as ``30s`` or ``5m``, in seconds, at least ``minimum``."""
        value = raw.get(key)
        if value is None:
            return default
        try:
            seconds = parse_duration(value)
        except ValueError as error:
            self.add(f"{path}.{key}", str(error), DURATION_FIX)
            return default
        if seconds < minimum:
            self.add(f"{path}.{key}", f"{value} is too short", f"use at least {format_duration(minimum)}")
            return default
        return seconds

    def string_list(self, raw: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        value = raw.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            self.add(f"{path}.{key}", f"expected a list of strings, got {_kind(value)}", f"write `{key}: [a, b]`")
            return ()
        return tuple(value)


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _show(bound: float | None) -> str:
    if bound is None:
        return "infinity"
    return str(int(bound)) if bound == int(bound) else str(bound)
