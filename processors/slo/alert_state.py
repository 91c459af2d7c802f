"""The alert state machine: one alert per SLO segment, its escalations, and the alert timeline.

Alert identity and severity
---------------------------
An SLO segment has at most one alert, at the highest level that fires (``page`` over
``ticket``). Its labels are ``alertname``, ``slo``, ``task``, the segment's dimensions,
``severity`` (page/ticket), ``impact_severity`` (SEV1..SEV4) and the SLO's routing labels.
While an alert is active its impact severity only ever rises (a fluctuating score does not
flap the label); a ticket whose impact reaches ``page_at_severity`` is delivered as a page.
When the labels change (page <-> ticket, an escalation) the old alert is resolved and the
new one fires. A firing alert is not resolved while the task's telemetry is incomplete: a
drop in spans must never read as recovery.

`AlertStates.update` takes one `SegmentEvaluation` and appends what must be sent (a new alert,
a resolution, the periodic re-send of a firing alert) to ``outgoing``; every fired and resolved
alert is also kept on the in-memory timeline the postmortem reads (`AlertStates.timeline`).

Export and restore
------------------
When replicas share one alert state (one leader evaluates at a time), the state moves between
processes as typed records: `AlertStates.export` gives every active alert as an `AlertRecord`
and the timeline; `AlertStates.restore` replaces the state with them. An alert's last-sent time
crosses as wall-clock nanoseconds (a monotonic reading means nothing in another process), so
the next holder re-sends a firing alert only when ``resend_interval`` says so.
`AlertStates.transitions_since` gives the transitions appended after a mark, so a writer can
append to a stored timeline instead of rewriting it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from otel_impact.processors.clock import Clock

from .alerting_config import AlertingConfig
from .alerts import ALERT_NAME, Notification, severity_rank
from .config import SloConfig
from .evaluate import SegmentEvaluation
from .notify import firing_notification

__all__ = [
    "TIMELINE_LENGTH",
    "ActiveAlert",
    "AlertRecord",
    "AlertStateRecord",
    "AlertStates",
    "AlertTransition",
    "select_transitions",
]

_NS = 1_000_000_000
_UNKNOWN = "unknown"

TIMELINE_LENGTH = 10_000
"""Alert transitions kept in memory for `AlertStates.timeline` (the oldest are forgotten first)."""


@dataclass(frozen=True)
class AlertTransition:
    """An alert fired or resolved: one line of the alert timeline."""

    at_ns: int
    event: Literal["fired", "resolved"]
    labels: Mapping[str, str]
    summary: str


def select_transitions(
    transitions: Iterable[AlertTransition], start_ns: int, end_ns: int, *, task: str | None = None
) -> list[AlertTransition]:
    """The ``transitions`` in ``[start_ns, end_ns)`` (optionally of one task), in their order."""
    return [t for t in transitions if start_ns <= t.at_ns < end_ns and (task is None or t.labels.get("task") == task)]


@dataclass(frozen=True)
class AlertRecord:
    """One active alert as it moves between processes (see the module docstring).

    ``slo`` and ``key`` name the SLO segment; ``last_sent_ns`` is when its last notification was
    handed to delivery, in wall-clock nanoseconds. The other fields are `ActiveAlert`'s.
    """

    slo: str
    key: tuple[str, ...]
    labels: Mapping[str, str]
    starts_at_ns: int
    impact_severity: str
    last: Notification
    last_sent_ns: int
    held: str | None = None


@dataclass(frozen=True)
class AlertStateRecord:
    """The whole alert state: the active alerts and the timeline, oldest transition first."""

    active: tuple[AlertRecord, ...] = ()
    timeline: tuple[AlertTransition, ...] = ()


@dataclass
class ActiveAlert:
    """A firing alert: its labels, since when, its impact severity (which only rises), the last
    notification built for it and when it was last sent (monotonic seconds). ``held`` says why
    it is kept firing although its conditions no longer hold."""

    labels: dict[str, str]
    starts_at_ns: int
    impact_severity: str
    last: Notification
    last_sent: float
    held: str | None = None


class AlertStates:
    """The active alerts of every SLO segment, keyed by ``(slo name, segment key)``.

    Single-threaded, like the engine that owns it.
    """

    def __init__(self, alerting: AlertingConfig, clock: Clock) -> None:
        self.alerting = alerting
        self.clock = clock
        self._active: dict[tuple[str, tuple[str, ...]], ActiveAlert] = {}
        self._timeline: deque[AlertTransition] = deque(maxlen=TIMELINE_LENGTH)
        self._appended = 0  # transitions ever appended to the timeline (the marks of `transitions_since`)

    def keys(self, slo: str) -> list[tuple[str, ...]]:
        """The segment keys of ``slo`` with an active alert."""
        return [key for name, key in self._active if name == slo]

    def active(self, slo: str, key: tuple[str, ...]) -> ActiveAlert | None:
        """The active alert of one SLO segment, if any (read it; do not change it)."""
        return self._active.get((slo, key))

    def timeline(self, start_ns: int, end_ns: int, *, task: str | None = None) -> list[AlertTransition]:
        """Alerts fired or resolved in ``[start_ns, end_ns)`` (optionally for one task), oldest first.

        Kept in memory: the last `TIMELINE_LENGTH` transitions since the process started.
        """
        return select_transitions(self._timeline, start_ns, end_ns, task=task)

    # -- moving the state between processes ----------------------------------------------------------

    def export(self, now_ns: int) -> AlertStateRecord:
        """The active alerts and the whole timeline as records (``now_ns``: the clock's wall time)."""
        return AlertStateRecord(self.export_active(now_ns), tuple(self._timeline))

    def export_active(self, now_ns: int) -> tuple[AlertRecord, ...]:
        """Every active alert as a record, its last-sent time turned into wall-clock nanoseconds."""
        mono = self.clock.monotonic()
        return tuple(
            AlertRecord(
                slo,
                key,
                dict(active.labels),
                active.starts_at_ns,
                active.impact_severity,
                active.last,
                now_ns - round((mono - active.last_sent) * _NS),
                active.held,
            )
            for (slo, key), active in self._active.items()
        )

    def transitions_since(self, mark: int) -> tuple[tuple[AlertTransition, ...], int]:
        """The transitions appended after ``mark`` (at most the `TIMELINE_LENGTH` kept), and the
        mark to pass next time. Mark 0 is the start; `restore` sets the mark to its timeline's end."""
        new = max(0, min(self._appended - mark, len(self._timeline)))
        kept = tuple(self._timeline)
        return (kept[len(kept) - new :] if new else ()), self._appended

    @property
    def mark(self) -> int:
        """The mark of the timeline's end (see `transitions_since`)."""
        return self._appended

    def transitions(self) -> tuple[AlertTransition, ...]:
        """The whole timeline kept, oldest first (a copy)."""
        return tuple(self._timeline)

    def restore(self, record: AlertStateRecord, now_ns: int) -> None:
        """Replace the state with ``record`` (exported by `export`, maybe in another process).

        A last-sent time becomes a monotonic reading again, relative to ``now_ns`` (the clock's
        wall time), so the re-send schedule carries over.
        """
        mono = self.clock.monotonic()
        self._active = {
            (alert.slo, tuple(alert.key)): ActiveAlert(
                dict(alert.labels),
                alert.starts_at_ns,
                alert.impact_severity,
                alert.last,
                mono - (now_ns - alert.last_sent_ns) / _NS,
                alert.held,
            )
            for alert in record.active
        }
        self._timeline = deque(record.timeline, maxlen=TIMELINE_LENGTH)
        self._appended += len(self._timeline)

    def update(
        self,
        slo: SloConfig,
        result: SegmentEvaluation,
        now: int,
        hold_reason: str | None,
        outgoing: list[Notification],
    ) -> None:
        """Move one segment's alert on from its new evaluation.

        ``hold_reason`` (the task's telemetry is incomplete) keeps a firing alert from resolving.
        """
        alert_key = (slo.name, result.key)
        active = self._active.get(alert_key)
        if result.level is None:
            if active is None:
                return
            if hold_reason is not None:
                self._hold(active, f"telemetry incomplete: {hold_reason}", now, outgoing)
                return
            self._resolve(active, now, outgoing)
            del self._active[alert_key]
            return
        severity = result.impact.severity if result.impact is not None else _UNKNOWN
        if active is not None and severity_rank(active.impact_severity) < severity_rank(severity):
            severity = active.impact_severity
        page_at = self.alerting.page_at_severity
        promoted = page_at is not None and severity_rank(severity) <= severity_rank(page_at)
        level = "page" if result.level == "page" or promoted else "ticket"
        labels = {
            "alertname": ALERT_NAME,
            "slo": slo.name,
            "task": slo.task,
            **{name: value for name, value in result.where.items() if value},
            "severity": level,
            "impact_severity": severity,
            **slo.routing_labels(),
        }
        if active is not None and active.labels != labels:
            self._resolve(active, now, outgoing)
            active = None
        starts_at = active.starts_at_ns if active else now
        notification = firing_notification(slo, result, labels, starts_at, self._ends_at(now))
        mono = self.clock.monotonic()
        if active is None:
            self._active[alert_key] = ActiveAlert(labels, now, severity, notification, mono)
            outgoing.append(notification)
            self._record(AlertTransition(now, "fired", labels, notification.annotations.get("summary", "")))
            return
        active.last = notification
        active.held = None
        if mono - active.last_sent >= self.alerting.delivery.resend_interval:
            active.last_sent = mono
            outgoing.append(notification)

    def hold_all(self, slo: str, reason: str, now: int, outgoing: list[Notification]) -> None:
        """Keep every firing alert of ``slo`` firing: its data cannot be trusted (``reason``)."""
        for (name, _), active in self._active.items():
            if name == slo:
                self._hold(active, reason, now, outgoing)

    def _resolve(self, active: ActiveAlert, now: int, outgoing: list[Notification]) -> None:
        last = active.last
        outgoing.append(Notification(last.labels, last.annotations, last.starts_at_ns, now, True, last.details))
        self._record(AlertTransition(now, "resolved", active.labels, last.annotations.get("summary", "")))

    def _record(self, transition: AlertTransition) -> None:
        self._timeline.append(transition)
        self._appended += 1

    def _hold(self, active: ActiveAlert, reason: str, now: int, outgoing: list[Notification]) -> None:
        """Keep a firing alert firing (re-sent on schedule) while its data cannot be trusted."""
        active.held = reason
        annotations = {**active.last.annotations, "held": f"not resolved: {reason}"}
        active.last = Notification(
            active.last.labels, annotations, active.starts_at_ns, self._ends_at(now), False, active.last.details
        )
        mono = self.clock.monotonic()
        if mono - active.last_sent >= self.alerting.delivery.resend_interval:
            active.last_sent = mono
            outgoing.append(active.last)

    def _ends_at(self, now: int) -> int:
        return now + int(4 * self.alerting.delivery.resend_interval * _NS)
