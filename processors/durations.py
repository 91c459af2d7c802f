"""Durations as people write them (``300ms``, ``5m``, ``1h30m``, ``30d``), query windows and times.

Every config section reads its durations with `parse_duration` (through
`otel_impact.processors.config.Fields.take_duration`), and the query APIs read windows and
times with `parse_window` and `parse_timestamp`. A window for the query API is a whole number
of minutes from 5 minutes to 35 days; a calendar month (up to 31 days) fits. `parse_window` and
`parse_timestamp` raise ``ValueError`` with a message that says what is accepted, so callers can
hand it to users as it is; `parse_duration`'s message says what is wrong, and `DURATION_FIX`
what to write instead.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Final

MINUTE_NS: Final = 60_000_000_000
HOUR_NS: Final = 3_600_000_000_000
SECOND_NS: Final = 1_000_000_000
MIN_WINDOW_S: Final = 5 * 60
MAX_WINDOW_S: Final = 35 * 86_400
MAX_TIMESTAMP_S: Final = 253_402_300_799
"""The last second `parse_timestamp` accepts: 9999-12-31T23:59:59Z (the last one ``datetime`` can hold)."""

DURATION_FIX: Final = "write a duration such as 300ms, 5s, 30s, 5m, 1h30m or 7d, or a positive number of seconds"
"""What to tell a user whose duration `parse_duration` refused."""

TIMESTAMP_FIX: Final = "use unix seconds or RFC 3339 from 1970 to 9999, e.g. 2026-11-26T21:00:00Z"

_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w)\s*)+")


def parse_duration(value: object) -> float:
    """Seconds in ``value``: a number (seconds) or a string such as ``250ms``, ``5m``, ``1h30m``, ``1w``.

    Units are ``ms``, ``s``, ``m``, ``h``, ``d`` and ``w``; parts add up (``1h 30m`` is 5400).
    Raises ``ValueError`` for anything else, and for a negative or NaN number.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0 or value != value:  # negative or NaN
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        return float(value)
    text = value.strip() if isinstance(value, str) else ""
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"expected a duration, got {value!r}")
    return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text))


def parse_window(value: str) -> int:
    """Nanoseconds in a query window such as ``5m``, ``1h``, ``7d``, ``30d``.

    The window must be a whole number of minutes from 5m to 35d.
    """
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise ValueError(f"window {value!r} is not a duration; use e.g. 5m, 1h, 6h, 7d or 30d") from None
    if seconds < MIN_WINDOW_S or seconds > MAX_WINDOW_S:
        raise ValueError(f"window {value!r} is out of range; use a duration from 5m to 35d")
    if seconds % 60:
        raise ValueError(f"window {value!r} is not a whole number of minutes; use e.g. 5m, 90m or 1h30m")
    return int(seconds) * SECOND_NS


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: ``300ms``, ``5m``, ``1h30m``, ``7d``."""
    if seconds < 1 and seconds > 0:
        return f"{round(seconds * 1000, 3):g}ms"
    if seconds != int(seconds):
        return f"{seconds:g}s"
    rest = int(seconds)
    if rest == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def floor_minute(ns: int) -> int:
    """``ns`` floored to the minute."""
    return ns - ns % MINUTE_NS


def ceil_minute(ns: int) -> int:
    """``ns`` rounded up to a whole minute (unchanged when it already is one)."""
    return -(-ns // MINUTE_NS) * MINUTE_NS


def parse_timestamp(text: str, name: str = "time") -> int:
    """Unix seconds (``1767225600``) or RFC 3339 with a zone (``2026-01-01T00:00:00Z``) -> ns.

    Raises ``ValueError`` naming ``name`` and the accepted forms, also for a time before 1970 or
    after `MAX_TIMESTAMP_S` (a huge number is a mistake, never an overflow).
    """
    try:
        seconds = float(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} {text!r} is not unix seconds or an RFC 3339 time") from None
        if parsed.tzinfo is None:
            raise ValueError(f"{name} {text!r} has no time zone; add Z or an offset") from None
        seconds = parsed.timestamp()
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} {text!r} is not a time; {TIMESTAMP_FIX}")
    if seconds > MAX_TIMESTAMP_S:
        raise ValueError(f"{name} {text!r} is out of range; {TIMESTAMP_FIX}")
    return int(seconds * 1e9)
