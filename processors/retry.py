"""The one retry policy of the processor: how long to wait before trying again, and when to stop.

Span forwarding (``export``) and alert delivery (``slo``) both retry with it; each keeps its own
rule for *which* answers are worth retrying (the OTLP spec for spans, the receiver's status for
alerts), and both ask this module *how long* to wait:

- a server's ``Retry-After`` (RFC 9110 §10.2.3: delta-seconds or an HTTP-date) or gRPC
  ``RetryInfo`` replaces the computed wait, capped at `MAX_SERVER_DELAY`;
- otherwise the wait before retry *n* (0 for the first) is ``initial_interval * multiplier**n``,
  capped at ``max_interval``, then spread by ``±randomization_factor`` (``2**n * uniform(0.8,
  1.2)`` for a multiplier of 2 and a factor of 0.2);
- a wait that would end past ``max_elapsed_time`` since the first attempt is not taken: the
  caller gives up (``max_elapsed_time`` 0: never give up).
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = ["MAX_SERVER_DELAY", "Backoff", "BackoffPolicy", "BackoffSettings", "parse_retry_after"]

MAX_SERVER_DELAY: Final = 600.0
"""A server asking for a longer wait than this is capped (a broken header must not stall delivery for days)."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or None when absent or invalid.

    Accepts delta-seconds (``"120"``) and an HTTP-date (``"Wed, 21 Oct 2015 07:28:10 GMT"``,
    measured from ``now``, a Unix time defaulting to the current one). A date in the past gives
    0; anything else (a negative or fractional number, text, a date without a zone) is ignored.
    The result is capped at `MAX_SERVER_DELAY`.
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_SERVER_DELAY)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are in GMT; a zoneless one is not an HTTP-date
        return None
    seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_SERVER_DELAY)


class BackoffSettings(Protocol):
    """What `Backoff` reads; the export ``RetryConfig`` and `BackoffPolicy` both provide it."""

    @property
    def initial_interval(self) -> float: ...

    @property
    def max_interval(self) -> float: ...

    @property
    def max_elapsed_time(self) -> float: ...

    @property
    def multiplier(self) -> float: ...

    @property
    def randomization_factor(self) -> float: ...


@dataclass(frozen=True)
class BackoffPolicy:
    """A backoff policy for callers whose configuration names its fields differently.

    The field names and meanings are those of the OTLP exporters' and the collector's
    ``retry_on_failure`` (see the module docstring).
    """

    initial_interval: float
    max_interval: float
    max_elapsed_time: float = 0.0
    multiplier: float = 2.0
    randomization_factor: float = 0.2


class Backoff:
    """Exponential backoff with jitter, capped, bounded by ``max_elapsed_time``.

    It keeps no per-attempt state (the caller counts attempts and elapsed time), so one instance
    serves every retry loop of one event loop. ``rng`` is injectable for repeatable jitter in
    tests; `random.Random` is not meant to be shared across threads.
    """

    def __init__(self, settings: BackoffSettings, rng: random.Random | None = None) -> None:
        self.config = settings
        self._rng = rng or random.Random()

    def delay(self, attempt: int, server_delay: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0 for the first failure).

        ``server_delay`` (Retry-After, RetryInfo) wins when given, capped at `MAX_SERVER_DELAY`.
        """
        if server_delay is not None and math.isfinite(server_delay):
            return min(max(server_delay, 0.0), MAX_SERVER_DELAY)
        config = self.config
        base = min(config.initial_interval * config.multiplier ** min(max(attempt, 0), 64), config.max_interval)
        spread = config.randomization_factor * base
        return float(base - spread + self._rng.random() * 2 * spread)

    def next_wait(self, attempt: int, elapsed: float, server_delay: float | None = None) -> float | None:
        """The wait before retrying after failed attempt ``attempt``, or None to give up.

        ``elapsed`` is the time since the first attempt began; None means the wait would end
        past ``max_elapsed_time`` (when that is positive).
        """
        wait = self.delay(attempt, server_delay)
        limit = self.config.max_elapsed_time
        if limit > 0 and elapsed + wait > limit:
            return None
        return wait
