"""Injectable time, so windows, retries and checkpoints are testable without sleeping."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock nanoseconds (for event time) and monotonic seconds (for intervals)."""

    def now_ns(self) -> int: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock."""

    def now_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, start_ns: int = 1_700_000_000 * 10**9) -> None:
        self._now_ns = start_ns
        self._monotonic = 0.0

    def now_ns(self) -> int:
        return self._now_ns

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._now_ns += int(seconds * 1e9)
        self._monotonic += seconds
