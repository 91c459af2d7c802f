"""Reading typed values out of a parsed YAML mapping, with errors that name the field and the fix.

`Fields` wraps one mapping and its path (``exporters[1]``); each ``take_*`` removes a key and
checks its type; `Fields.done` refuses keys nobody took (typo protection).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from otel_impact import ConfigurationError
from otel_impact.processors.durations import DURATION_FIX, parse_duration

_SIZE = re.compile(r"\A\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*\Z")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 10**3, "MB": 10**6, "GB": 10**9}


def join(path: str, key: str | int) -> str:
    """``join("exporters", 1)`` → ``exporters[1]``; ``join("admin", "endpoint")`` → ``admin.endpoint``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def parse_size(value: Any, path: str) -> int:
    """Bytes from an integer or a string such as ``4MiB``, ``512KiB``, ``1GB``."""
    if isinstance(value, bool):
        raise ConfigurationError(path, f"expected a size, got {value!r}", "write e.g. 4MiB or 4194304")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        size = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    else:
        raise ConfigurationError(path, f"expected a size, got {value!r}", "write e.g. 4MiB or 4194304")
    if size < 0:
        raise ConfigurationError(path, "a size cannot be negative", "use a positive size")
    return size


class Fields:
    """The keys of one YAML mapping at ``path``, taken one by one."""

    def __init__(self, raw: Any, path: str) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            where = path or "the config file"
            raise ConfigurationError(where, f"expected a mapping, got {type(raw).__name__}", "write key: value pairs")
        for key in raw:
            if not isinstance(key, str):
                raise ConfigurationError(join(path, str(key)), "keys must be strings", "quote the key")
        self._raw: dict[str, Any] = dict(raw)
        self._known: list[str] = []
        self.path = path

    def _pop(self, key: str, default: Any) -> Any:
        if key not in self._known:
            self._known.append(key)
        return self._raw.pop(key, default)

    def has(self, key: str) -> bool:
        return key in self._raw

    def at(self, key: str) -> str:
        return join(self.path, key)

    def take(self, key: str, default: Any = None) -> Any:
        return self._pop(key, default)

    def take_str(self, key: str, default: str | None = None) -> str | None:
        value = self._pop(key, default)
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(self.at(key), f"expected a string, got {value!r}", "quote the value")
        return value

    def take_bool(self, key: str, default: bool) -> bool:
        value = self._pop(key, default)
        if not isinstance(value, bool):
            raise ConfigurationError(self.at(key), f"expected true or false, got {value!r}", "write true or false")
        return value

    def take_int(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self._pop(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(self.at(key), f"expected an integer, got {value!r}", "write a whole number")
        if value < minimum:
            raise ConfigurationError(self.at(key), f"must be at least {minimum}, got {value}", f"use {minimum} or more")
        return value

    def take_float(self, key: str, default: float) -> float:
        value = self._pop(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigurationError(self.at(key), f"expected a number, got {value!r}", "write a number")
        return float(value)

    def take_duration(self, key: str, default: float) -> float:
        try:
            return parse_duration(self._pop(key, default))
        except ValueError as error:
            raise ConfigurationError(self.at(key), str(error), DURATION_FIX) from None

    def take_size(self, key: str, default: int) -> int:
        return parse_size(self._pop(key, default), self.at(key))

    def take_str_list(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self._pop(key, default)
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigurationError(self.at(key), f"expected a list of strings, got {value!r}", "write [a, b]")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise ConfigurationError(join(self.at(key), index), f"expected a string, got {item!r}", "quote it")
        return tuple(value)

    def take_str_map(self, key: str) -> dict[str, str]:
        value = self._pop(key, None) or {}
        if not isinstance(value, Mapping):
            raise ConfigurationError(self.at(key), f"expected a mapping, got {value!r}", "write name: value pairs")
        out: dict[str, str] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not isinstance(item, (str, int)) or isinstance(item, bool):
                raise ConfigurationError(join(self.at(key), str(name)), "expected a string value", "quote the value")
            out[name] = str(item)
        return out

    def done(self) -> None:
        """Refuse any key that was not taken (typo protection)."""
        if self._raw:
            key = sorted(self._raw)[0]
            known = ", ".join(sorted(self._known)) or "none"
            raise ConfigurationError(self.at(key), "unknown key", f"check the spelling; known keys here: {known}")
