"""The SLO alert state in Redis, written only by the lease holder (fencing).

Under the leader's hash tag ``{P:leader}`` (one Cluster slot with the lease):

============================ ====== ==========================================================
key                          type   holds
============================ ====== ==========================================================
``{P:leader}:alerts``        hash   ``active``: JSON list of the active alerts (each with when
                                    it was last sent); ``snapshot``: the last ``/api/v1/slos``
                                    document; ``token``: the writer's fencing token;
                                    ``saved_at``: the save's wall-clock nanoseconds
``{P:leader}:timeline``      list   one JSON alert transition per element, oldest first,
                                    trimmed to `TIMELINE_LENGTH`
============================ ====== ==========================================================

`AlertStore.save` runs one Lua script that first checks that the lease holds the writer's
``<replica>:<token>`` and refuses the write otherwise ("lease lost"): a leader that stalled
past its lease cannot overwrite what its successor wrote. `AlertStore.load` reads both keys in
one script (one consistent state). The typed records of the SLO stage are turned into JSON here
and nowhere else; what is read back is typed again.

Synchronous and blocking: call it from a worker thread. `save` and `load` raise one of
`REDIS_ERRORS` when Redis cannot be reached; `SharedLeadership` turns that into the
`Leadership` contract's results.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from otel_impact.processors.slo.alert_state import TIMELINE_LENGTH, AlertRecord, AlertStateRecord, AlertTransition
from otel_impact.processors.slo.alerts import Notification
from otel_impact.processors.slo.leadership import AlertUpdate, SharedAlerts

from .connection import SharedConnection
from .keys import LeaderKeys
from .lease import lease_value

__all__ = ["AlertStore", "StoreResult"]

StoreResult = Literal["saved", "lease lost"]
"""What `AlertStore.save` did: wrote the update, or refused it because the lease is not the writer's."""

# KEYS: lease, alerts, timeline. ARGV: expected lease value, active JSON, snapshot JSON, token,
# saved_at, timeline bound, then the appended transitions (JSON each).
_SAVE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[2], 'active', ARGV[2], 'snapshot', ARGV[3], 'token', ARGV[4], 'saved_at', ARGV[5])
for i = 7, #ARGV do
  redis.call('RPUSH', KEYS[3], ARGV[i])
end
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[6]), -1)
return 1
"""

# KEYS: alerts, timeline. Returns {active, snapshot, token, saved_at, timeline elements...}.
_LOAD = """
local fields = redis.call('HMGET', KEYS[1], 'active', 'snapshot', 'token', 'saved_at')
local result = {fields[1] or '', fields[2] or '', fields[3] or '', fields[4] or ''}
for _, item in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  result[#result + 1] = item
end
return result
"""


class AlertStore:
    """The alert state under ``keys`` (see the module docstring), written as ``replica``."""

    def __init__(self, connection: SharedConnection, keys: LeaderKeys, replica: str) -> None:
        self.connection = connection
        self.keys = keys
        self.replica = replica

    def save(self, update: AlertUpdate, token: int) -> StoreResult:
        """Write ``update`` if the lease holds this replica's ``token``, else refuse ("lease lost").

        Replaces the active alerts and the snapshot, appends ``update.appended`` to the timeline
        (keeping the last `TIMELINE_LENGTH`). Raises one of `REDIS_ERRORS` if Redis fails.
        """
        appended = update.appended[-TIMELINE_LENGTH:]
        args: list[str | int] = [
            lease_value(self.replica, token),
            _dumps([_alert_json(alert) for alert in update.active]),
            _dumps(dict(update.snapshot)),
            token,
            update.saved_at_ns,
            TIMELINE_LENGTH,
            *(_dumps(_transition_json(t)) for t in appended),
        ]
        keys = self.keys
        written = self.connection.get().eval(_SAVE, 3, keys.lease, keys.alerts, keys.timeline, *args)
        return "saved" if int(written) == 1 else "lease lost"

    def load(self) -> SharedAlerts:
        """The stored state, empty if nothing was saved. Raises one of `REDIS_ERRORS` if Redis
        fails, ``ValueError`` if what is stored cannot be read (written by something else)."""
        keys = self.keys
        reply: Sequence[bytes | str] = self.connection.get().eval(_LOAD, 2, keys.alerts, keys.timeline)
        active, snapshot, token, saved_at, *timeline = (_text(item) for item in reply)
        try:
            return SharedAlerts(
                alerts=AlertStateRecord(
                    tuple(_alert_from(item) for item in json.loads(active)) if active else (),
                    tuple(_transition_from(json.loads(item)) for item in timeline),
                ),
                snapshot=json.loads(snapshot) if snapshot else None,
                token=int(token) if token else None,
                saved_at_ns=int(saved_at) if saved_at else None,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"the stored alert state under {keys.tag} cannot be read: {error!r}") from error


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _transition_json(transition: AlertTransition) -> dict[str, Any]:
    return {
        "at_ns": transition.at_ns,
        "event": transition.event,
        "labels": dict(transition.labels),
        "summary": transition.summary,
    }


def _transition_from(raw: Mapping[str, Any]) -> AlertTransition:
    event = raw["event"]
    if event not in ("fired", "resolved"):
        raise ValueError(f"unknown alert event {event!r}")
    return AlertTransition(int(raw["at_ns"]), event, _strings(raw["labels"]), str(raw["summary"]))


def _notification_json(notification: Notification) -> dict[str, Any]:
    return {
        "labels": dict(notification.labels),
        "annotations": dict(notification.annotations),
        "starts_at_ns": notification.starts_at_ns,
        "ends_at_ns": notification.ends_at_ns,
        "resolved": notification.resolved,
        "details": dict(notification.details),
    }


def _notification_from(raw: Mapping[str, Any]) -> Notification:
    details = raw["details"]
    if not isinstance(details, dict):
        raise ValueError("notification details must be an object")
    return Notification(
        _strings(raw["labels"]),
        _strings(raw["annotations"]),
        int(raw["starts_at_ns"]),
        int(raw["ends_at_ns"]),
        bool(raw["resolved"]),
        details,
    )


def _alert_json(alert: AlertRecord) -> dict[str, Any]:
    return {
        "slo": alert.slo,
        "key": list(alert.key),
        "labels": dict(alert.labels),
        "starts_at_ns": alert.starts_at_ns,
        "impact_severity": alert.impact_severity,
        "last": _notification_json(alert.last),
        "last_sent_ns": alert.last_sent_ns,
        "held": alert.held,
    }


def _alert_from(raw: Mapping[str, Any]) -> AlertRecord:
    held = raw["held"]
    return AlertRecord(
        str(raw["slo"]),
        tuple(str(part) for part in raw["key"]),
        _strings(raw["labels"]),
        int(raw["starts_at_ns"]),
        str(raw["impact_severity"]),
        _notification_from(raw["last"]),
        int(raw["last_sent_ns"]),
        None if held is None else str(held),
    )


def _strings(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ValueError("labels and annotations must be objects")
    return {str(name): str(value) for name, value in raw.items()}
