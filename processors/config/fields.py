"""Reading a config section out of parsed YAML, noting every problem with its field path and fix.

The one convention for every section (the delivery path's, ``sli:``, ``slos:``, ``alerting:``,
``dashboard:``): a section parser ``parse_x(raw, path, problems) -> XConfig`` reads its YAML
with a `Fields` sharing ``problems``, checks the rules between fields with
``XConfig.validate(problems, path)``, and returns the config object. Nothing raises while a
config is read: every problem is noted, naming the field path
(``exporters[1].retry.max_interval``) and the fix, and a bad value stands as its default so
that reading goes on. Whoever made the `Problems` (the loader, or a
tool reading one section) raises them all at once with `Problems.raise_if_any`, as one
`ConfigurationErrors`::

    def parse_dashboard(raw: object, path: str, problems: Problems) -> DashboardConfig:
        fields = Fields(raw, path, problems)       # raw is None when the file has no such section
        refresh = fields.take_duration("refresh", 10.0)
        limits = fields.take_section("limits")     # a nested mapping, sharing the problems
        rows = limits.take_int("rows", 50, minimum=1)
        limits.done()                              # notes its unknown keys
        fields.done()
        config = DashboardConfig(refresh, rows)
        config.validate(problems, path)            # notes what breaks a rule between fields
        return config

A key set to ``null`` counts as not set. `Problems` keeps one problem per field, the first noted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from otel_impact import ConfigurationError, ConfigurationErrors
from otel_impact.processors.durations import DURATION_FIX, format_duration, parse_duration

_Default = TypeVar("_Default")

_SIZE = re.compile(r"\A\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*\Z")
_SIZE_UNITS = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "KB": 10**3, "MB": 10**6, "GB": 10**9}


def join(path: str, key: str | int) -> str:
    """``join("exporters", 1)`` → ``exporters[1]``; ``join("admin", "endpoint")`` → ``admin.endpoint``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def parse_size(value: Any, path: str) -> int:
    """Bytes from an integer or a string such as ``4MiB``, ``512KiB``, ``1GB``."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        size = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    else:
        raise ConfigurationError(path, f"expected a size, got {describe(value)}", "write e.g. 4MiB or 4194304")
    if size < 0:
        raise ConfigurationError(path, "a size cannot be negative", "use a positive size")
    return size


def describe(value: object) -> str:
    """``value`` as a message shows it: ``the string 'soon'``, ``a list``, ``nothing``."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


class Problems:
    """The problems noted while a config is read: at most one per field, the first one noted."""

    def __init__(self) -> None:
        self._by_field: dict[str, ConfigurationError] = {}

    @property
    def items(self) -> list[ConfigurationError]:
        return list(self._by_field.values())

    def __len__(self) -> int:
        return len(self._by_field)

    def add(self, path: str, problem: str, fix: str) -> None:
        """Note that the value at ``path`` is wrong (``problem``) and how to put it right (``fix``)."""
        self._by_field.setdefault(path, ConfigurationError(path, problem, fix))

    def extend(self, error: ConfigurationError) -> None:
        """Add the problems of ``error`` (one, or each of a `ConfigurationErrors`)."""
        for item in error.problems if isinstance(error, ConfigurationErrors) else (error,):
            self._by_field.setdefault(item.setting, item)

    def raise_if_any(self) -> None:
        """Raise `ConfigurationErrors` listing every problem noted, if there is any."""
        if self._by_field:
            raise ConfigurationErrors(self.items)


class Fields:
    """The keys of one YAML mapping at ``path``, read one by one; problems are noted in ``problems``."""

    def __init__(self, raw: object, path: str, problems: Problems) -> None:
        self.path = path
        self.problems = problems
        self._asked: list[str] = []
        self._raw: dict[str, Any] = {}
        if isinstance(raw, Mapping):
            for key, value in raw.items():
                if isinstance(key, str):
                    self._raw[key] = value
                else:
                    self.problems.add(join(path, str(key)), "keys must be strings", "quote the key")
        elif raw is not None:
            self.problems.add(path or "the config file", f"expected a mapping, got {describe(raw)}", _MAPPING_FIX)
        # ``None`` is a section left out. Anything else that is not a mapping was noted just now:
        # its keys read as unset, without a further problem for each required one.
        self._readable = raw is None or isinstance(raw, Mapping)

    # -- the mapping --------------------------------------------------------------------------

    def at(self, key: str | int) -> str:
        """The path of ``key`` in messages."""
        return join(self.path, key)

    def report(self, key: str | int, problem: str, fix: str) -> None:
        """Note a problem with the value of ``key``."""
        self.problems.add(self.at(key), problem, fix)

    def has(self, key: str) -> bool:
        """Whether ``key`` is set (to something other than ``null``)."""
        return self._get(key) is not None

    def done(self) -> None:
        """Note every key nobody asked for (typo protection)."""
        known = ", ".join(sorted(self._asked)) or "none"
        for key in sorted(set(self._raw) - set(self._asked)):
            self.report(key, "unknown key", f"check the spelling; known keys here: {known}")

    def _get(self, key: str) -> Any:
        if key not in self._asked:
            self._asked.append(key)
        return self._raw.get(key)

    def _missing(self, key: str, fix: str | None) -> None:
        if fix is not None and self._readable:
            self.report(key, "is missing", fix)

    # -- values ---------------------------------------------------------------------------------

    def take(self, key: str, default: Any = None) -> Any:
        """The raw value of ``key`` (``null`` stays ``None``), or ``default`` when it is absent."""
        self._get(key)
        return self._raw.get(key, default)

    def take_str(self, key: str, default: _Default, *, if_missing: str | None = None) -> str | _Default:
        """A non-empty string. ``if_missing``: the fix to give when the key is not set (else optional)."""
        value = self._get(key)
        if value is None:
            self._missing(key, if_missing)
            return default
        if not isinstance(value, str) or not value.strip():
            self.report(key, f"expected a non-empty string, got {describe(value)}", "write text, quoted if needed")
            return default
        return value

    def take_bool(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.report(key, f"expected true or false, got {describe(value)}", "write true or false")
            return default
        return value

    def take_int(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            problem = f"expected a whole number >= {minimum}, got {describe(value)}"
            self.report(key, problem, f"write a whole number of at least {minimum}")
            return default
        return value

    def take_float(
        self,
        key: str,
        default: _Default,
        *,
        if_missing: str | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        exclusive: bool = False,
    ) -> float | _Default:
        """A finite number within ``[minimum, maximum]`` (exclusive bounds if ``exclusive``)."""
        value = self._get(key)
        if value is None:
            self._missing(key, if_missing)
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.report(key, f"expected a number, got {describe(value)}", "write a plain number, e.g. 0.25")
            return default
        too_low = minimum is not None and (value <= minimum if exclusive else value < minimum)
        too_high = maximum is not None and (value >= maximum if exclusive else value > maximum)
        if too_low or too_high:
            between = "strictly between" if exclusive else "between"
            fix = f"use a number {between} {_show(minimum)} and {_show(maximum)}"
            self.report(key, f"{value} is out of range", fix)
            return default
        return float(value)

    def take_share(self, key: str, default: float, *, fix: str = "write e.g. 95%, 0.95 or 1/16") -> float:
        """A share from 0 to 1, written as a number (``0.0625``), a fraction (``1/16``) or a
        percentage (``6.25%``). ``fix`` is the advice given with a value that is none of those or
        outside 0% to 100%."""
        value = self._get(key)
        if value is None:
            return default
        text = str(value).strip()
        try:
            if text.endswith("%"):
                share = float(text[:-1]) / 100
            else:
                numerator, slash, denominator = text.partition("/")
                share = float(numerator) / float(denominator) if slash else float(text)
        except (ValueError, ZeroDivisionError):
            self.report(key, f"{text!r} is not a share", fix)
            return default
        if not 0 <= share <= 1:
            self.report(key, f"{text} is outside 0% to 100%", fix)
            return default
        return share

    def take_duration(self, key: str, default: _Default, *, minimum: float = 0.0) -> float | _Default:
        """Seconds from a duration (``500ms``, ``30s``, ``1h30m``, ``7d``, or a number of seconds)."""
        value = self._get(key)
        if value is None:
            return default
        seconds = self._duration(value, self.at(key))
        if seconds is None:
            return default
        if seconds < minimum:
            self.report(key, f"{format_duration(seconds)} is too short", f"use at least {format_duration(minimum)}")
            return default
        return seconds

    def take_durations(self, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        """A list of durations, in seconds."""
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, list):
            self.report(key, f"expected a list of durations, got {describe(value)}", "write e.g. [300ms, 1s]")
            return default
        found = [self._duration(item, join(self.at(key), index)) for index, item in enumerate(value)]
        return default if None in found else tuple(seconds for seconds in found if seconds is not None)

    def take_size(self, key: str, default: int) -> int:
        """Bytes from an integer or a string such as ``4MiB``."""
        value = self._get(key)
        if value is None:
            return default
        try:
            return parse_size(value, self.at(key))
        except ConfigurationError as error:
            self.problems.extend(error)
            return default

    def take_str_list(self, key: str, default: tuple[str, ...] = (), *, allow_single: bool = False) -> tuple[str, ...]:
        """A list of non-empty strings (numbers are taken as text). With ``allow_single``, a lone
        value counts as a one-item list."""
        value = self._get(key)
        if value is None:
            return default
        if allow_single and _is_text(value):
            value = [value]
        if not isinstance(value, list | tuple):
            self.report(key, f"expected a list of strings, got {describe(value)}", f"write `{key}: [a, b]`")
            return default
        for index, item in enumerate(value):
            if not _is_text(item) or not str(item).strip():
                problem = f"expected a non-empty string, got {describe(item)}"
                self.problems.add(join(self.at(key), index), problem, "quote it")
                return default
        return tuple(str(item) for item in value)

    def take_str_map(self, key: str) -> dict[str, str]:
        """A mapping of names to text (numbers are taken as text)."""
        value = self._get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.report(key, f"expected a mapping, got {describe(value)}", "write name: value pairs")
            return {}
        out: dict[str, str] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not _is_text(item):
                self.problems.add(join(self.at(key), str(name)), "expected a string value", "quote the value")
                return {}
            out[name] = str(item)
        return out

    @classmethod
    def shorthand(cls, raw: object, path: str, problems: Problems, *, string_means: str) -> Fields:
        """A mapping, or a bare string written for the mapping ``{string_means: string}``.

        E.g. ``window: 30d`` for ``window: {rolling: 30d}``, or an exporter given as its endpoint.
        """
        return cls({string_means: raw} if isinstance(raw, str) else raw, path, problems)

    def take_section(self, key: str) -> Fields:
        """The mapping at ``key`` (empty when not set), read with the same problems."""
        return Fields(self._get(key), self.at(key), self.problems)

    def take_list(self, key: str, fix: str = "write one `- ...` item per entry") -> list[Any]:
        """The items of the list at ``key`` (none when not set); ``fix`` for a value that is not a list."""
        value = self._get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.report(key, f"expected a list, got {describe(value)}", fix)
            return []
        return value

    def take_entries(self, key: str, fix: str = "write one `- key: value` item per entry") -> list[Fields]:
        """The mappings of the list at ``key``, each read with the same problems."""
        items = self.take_list(key, fix)
        return [Fields(item, join(self.at(key), index), self.problems) for index, item in enumerate(items)]

    def _duration(self, value: object, path: str) -> float | None:
        try:
            return parse_duration(value)
        except ValueError as error:
            self.problems.add(path, str(error), DURATION_FIX)
            return None


_MAPPING_FIX = "write key: value pairs"


def _is_text(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int | float) and not isinstance(value, bool))


def _show(bound: float | None) -> str:
    if bound is None:
        return "infinity"
    return str(int(bound)) if bound == int(bound) else str(bound)
