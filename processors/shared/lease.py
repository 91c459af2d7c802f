"""The leader lease: at most one replica evaluates SLOs and delivers alerts at a time.

The lease is one key, ``{P:leader}:lease``, holding ``<replica>:<token>`` with a TTL. A replica
takes it when it is free (``SET NX PX``) with a new fencing token (``INCR {P:leader}:fence``),
and renews it while it is its own (compare, then ``PEXPIRE``); both in one Lua script, so a
renewal cannot extend a lease that another replica took meanwhile, and a follower's attempt
does not consume tokens. The token grows with every acquisition, so whatever the leader writes
can be fenced: the alert store refuses a write whose token the lease no longer holds.

The TTL is the SLO evaluation interval and the engine renews every third of it, so a dead
leader is replaced within about 1.33 intervals. A replica also stops counting itself leader
once a TTL has passed since its last successful renewal began, whatever it heard since (its
lease may have expired in Redis already).

An unreachable or failing Redis means "not leader": the call returns ``None``, the error is
counted (`LeaderLease.errors`) and logged at most once a minute. Synchronous and blocking:
call it from a worker thread, never from the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .connection import REDIS_ERRORS, SharedConnection
from .keys import LeaderKeys

__all__ = ["LeaderLease", "lease_value"]

logger = logging.getLogger("otel_impact.shared.lease")

LOG_INTERVAL_S = 60.0
"""Redis errors of the lease are logged at most once per this many seconds."""

# KEYS: lease, fence. ARGV: replica, ttl in ms.
# Returns {1, token} renewed, {2, token} acquired, {0, holder} held by another replica.
# A replica id is unique per process, so a lease naming this replica is this process's own.
_RENEW_OR_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
local mine = ARGV[1] .. ':'
if current and string.sub(current, 1, #mine) == mine then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, string.sub(current, #mine + 1)}
end
if not current then
  local token = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'NX', 'PX', ARGV[2])
  return {2, tostring(token)}
end
return {0, current}
"""

# KEYS: lease. ARGV: the value we hold. Deletes the lease only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lease_value(replica: str, token: int) -> str:
    """What the lease key holds while ``replica`` leads under ``token``."""
    return f"{replica}:{token}"


class LeaderLease:
    """This replica's view of the leader lease (see the module docstring).

    ``ttl_s`` is the lease's time to live (the SLO evaluation interval); renew at least every
    ``ttl_s / 3``. ``monotonic`` is injectable for tests. Thread-safe: calls are serialized.
    """

    def __init__(
        self,
        connection: SharedConnection,
        keys: LeaderKeys,
        replica: str,
        ttl_s: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s < 0.01:
            raise ValueError(f"ttl_s must be at least 0.01 seconds, got {ttl_s!r}")
        if ":" in replica or not replica:
            raise ValueError(f"replica must be a non-empty id without ':', got {replica!r}")
        self.connection = connection
        self.keys = keys
        self.replica = replica
        self.ttl_s = ttl_s
        self.acquisitions = 0
        """Times this replica took the lease (a new token each time)."""
        self.losses = 0
        """Times this replica stopped leading without releasing: taken over, expired or unreachable."""
        self.errors = 0
        """Calls that failed on a Redis error (each meant "not leader")."""
        self.holder: str | None = None
        """The lease's value at the last call that saw another replica hold it (for logs and status)."""
        self._monotonic = monotonic
        self._token: int | None = None
        self._valid_until = 0.0
        self._next_log = 0.0
        self._lock = threading.Lock()

    @property
    def token(self) -> int | None:
        """The fencing token while this replica leads, else ``None``."""
        return self._token if self.is_leader else None

    @property
    def is_leader(self) -> bool:
        """Whether this replica holds the lease, as far as it can know: its last call renewed or
        took it, and less than a TTL has passed since that call began."""
        return self._token is not None and self._monotonic() < self._valid_until

    def renew_or_acquire(self) -> int | None:
        """Renew the lease if it is this replica's, or take it if it is free.

        Returns the fencing token while this replica leads (the same across renewals), ``None``
        when another replica holds the lease or Redis cannot be reached. Never raises.
        """
        with self._lock:
            began = self._monotonic()
            try:
                client = self.connection.get()
                reply = client.eval(
                    _RENEW_OR_ACQUIRE,
                    2,
                    self.keys.lease,
                    self.keys.fence,
                    self.replica,
                    max(1, round(self.ttl_s * 1000)),
                )
                status, value = int(reply[0]), _text(reply[1])
            except REDIS_ERRORS as error:
                self.errors += 1
                self._lose("Redis unreachable")
                self._log_error(error)
                return None
            if status == 0:
                self.holder = value
                self._lose(f"held by {value}")
                return None
            token = int(value)
            if status == 2 or token != self._token:
                if self._token is not None:
                    self._lose("lease expired")
                self.acquisitions += 1
                logger.info("replica %s took the leader lease (fencing token %d)", self.replica, token)
            self._token = token
            self._valid_until = began + self.ttl_s
            self.holder = None
            return token

    def release(self) -> None:
        """Delete the lease if this replica still holds it (at shutdown), so another replica takes
        over at once. Idempotent; never raises."""
        with self._lock:
            token, self._token = self._token, None
            if token is None:
                return
            try:
                self.connection.get().eval(_RELEASE, 1, self.keys.lease, lease_value(self.replica, token))
                logger.info("replica %s released the leader lease (token %d)", self.replica, token)
            except REDIS_ERRORS as error:
                self.errors += 1
                self._log_error(error)

    def _lose(self, why: str) -> None:
        if self._token is not None:
            self.losses += 1
            logger.warning("replica %s lost the leader lease (token %d): %s", self.replica, self._token, why)
            self._token = None

    def _log_error(self, error: BaseException) -> None:
        now = self._monotonic()
        if now >= self._next_log:
            self._next_log = now + LOG_INTERVAL_S
            logger.warning(
                "leader lease: Redis error, this replica does not lead (%d errors so far; logged once a minute): %s",
                self.errors,
                error,
            )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
