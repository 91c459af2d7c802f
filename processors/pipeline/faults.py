"""Logging failures on the intake path: one line per kind and interval, a traceback once per kind.

A hostile sender can make every request fail the same way; the log must not grow by a
traceback per request. `FaultLog.report` logs the first occurrence of a kind with its
traceback (for our own faults) and afterwards at most one line per ``interval`` seconds per
kind, saying how many were suppressed. The counters in `Accounting` count every occurrence.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

__all__ = ["FaultLog"]

LOG_INTERVAL_S: Final = 60.0
"""The least time between two log lines of the same kind."""
_MAX_KINDS: Final = 256
"""Kinds remembered (the kinds are fixed strings and exception type names: a small set)."""


class FaultLog:
    """Rate-limited logging per kind. Not thread-safe (the processor's event loop)."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = LOG_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._monotonic = monotonic
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._traced: set[str] = set()

    def report(self, kind: str, message: str, error: BaseException | None = None, *, trace: bool = False) -> bool:
        """Log ``message`` for ``kind`` unless one was logged in the last interval; True when logged.

        With ``trace``, the first line of each kind carries ``error``'s traceback.
        """
        now = self._monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        if len(self._last) >= _MAX_KINDS and kind not in self._last:
            self._last.clear()
            self._suppressed.clear()
        self._last[kind] = now
        suppressed = self._suppressed.pop(kind, 0)
        detail = f"{message}: {type(error).__name__}: {error}" if error is not None else message
        if suppressed:
            detail += f" ({suppressed} more like this since the last report)"
        traced = trace and error is not None and kind not in self._traced
        if traced:
            self._traced.add(kind)
        self._logger.warning("otel-impact: %s", detail, exc_info=error if traced else None)
        return True
