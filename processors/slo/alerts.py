"""Alert notifications and their wire formats (Alertmanager v2 and the generic JSON webhook).

An alert is identified by its label set; its fingerprint is the one Alertmanager computes
(64-bit FNV-1a over the sorted label names and values), so receivers, the API and Alertmanager
all name an alert the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .alerting_config import SEVERITIES

__all__ = ["ALERT_NAME", "Notification", "fingerprint", "rfc3339", "severity_rank"]

ALERT_NAME = "ImpactSLOBurnRate"
"""The ``alertname`` of every SLO burn alert, from the processor and from the generated rules."""

_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def severity_rank(severity: str) -> int:
    """0 for SEV1 (the worst), rising to SEV4; any other severity (``unknown``) ranks below all."""
    return _RANK.get(severity, len(SEVERITIES))


_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1
_SEPARATOR = 0xFF


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set, as 16 hex digits."""
    value = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                value = ((value ^ byte) * _FNV_PRIME) & _MASK
            value = ((value ^ _SEPARATOR) * _FNV_PRIME) & _MASK
    return f"{value:016x}"


def rfc3339(ns: int) -> str:
    """Nanoseconds since the epoch -> ``2024-03-31T01:00:00.000Z``."""
    moment = dt.datetime.fromtimestamp(ns // 1_000_000 / 1000, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Notification:
    """One state of one alert, ready to send.

    A firing alert's ``ends_at_ns`` lies in the future (the receiver resolves it by itself if
    the processor stops re-sending it); a resolved alert's is the time it resolved.
    ``details`` is the structured impact for the webhook (Alertmanager only takes strings).
    """

    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at_ns: int
    ends_at_ns: int
    resolved: bool
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.labels)

    @property
    def status(self) -> str:
        return "resolved" if self.resolved else "firing"

    def alertmanager_json(self) -> dict[str, Any]:
        """One element of the ``POST /api/v2/alerts`` body."""
        return {
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": rfc3339(self.starts_at_ns),
            "endsAt": rfc3339(self.ends_at_ns),
        }

    def webhook_json(self) -> dict[str, Any]:
        """One element of the webhook body's ``alerts`` list."""
        return {
            "status": self.status,
            "fingerprint": self.fingerprint,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "startsAt": rfc3339(self.starts_at_ns),
            "endsAt": rfc3339(self.ends_at_ns),
            **dict(self.details),
        }
