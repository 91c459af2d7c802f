"""Per-minute histories keyed by something (a task and service, an edge…): forgetting old minutes.

The attribution, lag and edge histories each keep ``{key: {minute index: value}}``; `forget_before`
is how all of them drop what has aged out.
"""

from __future__ import annotations

from typing import Any, TypeVar

from otel_impact.processors.durations import MINUTE_NS, SECOND_NS

__all__ = ["forget_before"]

Key = TypeVar("Key")


def forget_before(minutes_by_key: dict[Key, dict[int, Any]], now_ns: int, keep_s: int) -> None:
    """Drop from ``minutes_by_key`` the minutes older than ``keep_s`` before ``now_ns``, and the
    keys left with none."""
    oldest = (now_ns - keep_s * SECOND_NS) // MINUTE_NS
    for key in list(minutes_by_key):
        minutes = minutes_by_key[key]
        for minute in [m for m in minutes if m < oldest]:
            del minutes[minute]
        if not minutes:
            del minutes_by_key[key]
