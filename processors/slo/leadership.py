"""What the SLO engine needs to share its work among replicas: one leader evaluates and delivers.

`Leadership` is the contract: a lease that at most one replica holds at a time (with a fencing
token that grows with every new holder), and the alert state stored next to it. `SloEngine`
takes one optionally; the shared-state stage implements it over Redis. Everything here is
called from a worker thread, never from the event loop, and may block for a network round trip.

The records crossing the contract are typed: `SharedAlerts` (what a new leader and the
followers load) and `AlertUpdate` (what the leader saves after each evaluation). Serializing
them is the implementation's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .alert_state import AlertRecord, AlertStateRecord, AlertTransition

__all__ = ["AlertUpdate", "Leadership", "SaveResult", "SharedAlerts", "SharedStateUnavailable"]

SaveResult = Literal["saved", "lease lost", "unavailable"]
"""The outcome of `Leadership.save`: written; refused because the lease no longer holds the
writer's token (another replica leads now); or not written because the store cannot be reached."""


class SharedStateUnavailable(Exception):
    """The shared alert state cannot be read now (the store is unreachable or failing)."""


@dataclass(frozen=True)
class SharedAlerts:
    """The alert state as the leader last saved it.

    ``alerts`` holds the active alerts and the timeline (oldest first, at most
    `alert_state.TIMELINE_LENGTH`); ``snapshot`` is the leader's last ``GET /api/v1/slos``
    document (``None`` before the first save); ``token`` is the fencing token of that save's
    writer and ``saved_at_ns`` its wall-clock time (``None`` before the first save).
    """

    alerts: AlertStateRecord = field(default_factory=AlertStateRecord)
    snapshot: Mapping[str, Any] | None = None
    token: int | None = None
    saved_at_ns: int | None = None


@dataclass(frozen=True)
class AlertUpdate:
    """What the leader saves after an evaluation: every active alert (replacing those stored),
    the transitions appended to the timeline since its last save, and the new snapshot."""

    active: tuple[AlertRecord, ...]
    appended: tuple[AlertTransition, ...]
    snapshot: Mapping[str, Any]
    saved_at_ns: int


class Leadership(Protocol):
    """One leader among the replicas, and the alert state it keeps. Called from a worker thread."""

    def renew_or_acquire(self) -> int | None:
        """Renew this replica's lease, or take it if no replica holds it.

        Returns the fencing token while this replica leads (the same token across renewals; a
        new, larger one after each acquisition), ``None`` otherwise. Never raises: a store that
        cannot be reached means "not leader".
        """
        ...

    def load(self) -> SharedAlerts:
        """The stored alert state (empty when nothing was saved yet).

        Raises `SharedStateUnavailable` when it cannot be read now.
        """
        ...

    def save(self, update: AlertUpdate, token: int) -> SaveResult:
        """Store ``update`` if and only if the lease still holds ``token`` (fencing). Never raises."""
        ...

    def release(self) -> None:
        """Give the lease up if this replica holds it (at shutdown), so another takes over at once.
        Idempotent; never raises."""
        ...
