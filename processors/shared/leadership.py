"""`SharedLeadership`: the SLO engine's `Leadership` over Redis, a `LeaderLease` plus an `AlertStore`.

Built once per process by the assembly and handed to `SloEngine(..., leadership=...)`; the engine
calls it from a worker thread. Redis errors never escape: a failed renewal means "not leader", a
failed save means "unavailable" (the engine withholds the notifications), and a failed load
raises the contract's `SharedStateUnavailable`. Every failure is counted here or in the lease.
"""

from __future__ import annotations

import logging

from otel_impact.processors.slo.leadership import AlertUpdate, SaveResult, SharedAlerts, SharedStateUnavailable

from .alert_store import AlertStore
from .connection import REDIS_ERRORS, SharedConnection
from .keys import LeaderKeys
from .lease import LeaderLease

__all__ = ["SharedLeadership"]

logger = logging.getLogger("otel_impact.shared.leadership")


class SharedLeadership:
    """The lease and the alert state of one replica (implements `slo.leadership.Leadership`).

    ``ttl_s`` is the SLO ``evaluation_interval``. Counters: ``save_errors`` and ``load_errors``
    (Redis failures), ``refused_saves`` (fenced off: another replica leads); the lease's own
    (``lease.acquisitions``, ``lease.losses``, ``lease.errors``).
    """

    def __init__(self, connection: SharedConnection, keys: LeaderKeys, replica: str, ttl_s: float) -> None:
        self.lease = LeaderLease(connection, keys, replica, ttl_s)
        self.store = AlertStore(connection, keys, replica)
        self.save_errors = 0
        self.load_errors = 0
        self.refused_saves = 0

    @property
    def is_leader(self) -> bool:
        """Whether this replica leads now (for ``/readyz`` and metrics)."""
        return self.lease.is_leader

    def renew_or_acquire(self) -> int | None:
        return self.lease.renew_or_acquire()

    def load(self) -> SharedAlerts:
        try:
            return self.store.load()
        except REDIS_ERRORS as error:
            self.load_errors += 1
            raise SharedStateUnavailable(f"{type(error).__name__}: {error}") from error
        except ValueError as error:
            self.load_errors += 1
            raise SharedStateUnavailable(str(error)) from error

    def save(self, update: AlertUpdate, token: int) -> SaveResult:
        try:
            result = self.store.save(update, token)
        except REDIS_ERRORS as error:
            self.save_errors += 1
            logger.warning("saving the SLO alert state failed: %s: %s", type(error).__name__, error)
            return "unavailable"
        if result == "lease lost":
            self.refused_saves += 1
        return result

    def release(self) -> None:
        self.lease.release()
