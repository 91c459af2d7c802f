"""Logging helpers: one logger, and "say it once" for problems that would otherwise repeat per span."""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("otel_impact")

_said: set[str] = set()
_said_lock = threading.Lock()
_MAX_REMEMBERED = 1024


def log_once(key: str, level: int, message: str, *args: object, exc_info: bool = False) -> None:
    """Log ``message`` the first time ``key`` is seen in this process.

    Used on hot paths, where a problem repeats per span or per request. The number of
    remembered keys is bounded; past the bound, messages are still logged once per key
    until the set is cleared.
    """
    with _said_lock:
        if key in _said:
            return
        if len(_said) >= _MAX_REMEMBERED:
            _said.clear()
        _said.add(key)
    logger.log(level, message, *args, exc_info=exc_info)


def forget_logged() -> None:
    """Forget which messages were logged (for tests)."""
    with _said_lock:
        _said.clear()
