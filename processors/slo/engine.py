"""The SLO evaluation loop: budgets, burn rates and alert states for every SLO and segment.

`SloEngine.evaluate` runs one pass at the injected clock's time. It reads only the
`ImpactQueries` contract, keeps one alert per SLO segment, and hands state changes (and the
periodic re-sends of firing alerts) to the `AlertDispatcher` without waiting for delivery.
`SloEngine.snapshot` is what ``GET /api/v1/slos`` serves.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from otel_impact.processors.clock import Clock
from otel_impact.processors.impact_queries import EventCounts, ImpactQueries

from .alerting_config import SEVERITIES, AlertingConfig
from .alerts import ALERT_NAME, Notification, rfc3339
from .burn import Budget, ConditionResult, MissingThreshold, Tally, alert_level, evaluate_conditions, tally
from .config import SloConfig
from .delivery import AlertSink
from .scoring import ImpactScore, ImpactUnavailable, score_impact, top_segments
from .windows import BURN_WINDOWS, period_bounds, window_name

__all__ = ["SloEngine"]

logger = logging.getLogger("otel_impact.slo")

_NS = 1_000_000_000
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
_UNKNOWN = "unknown"


def _rank(severity: str) -> int:
    return _RANK.get(severity, len(SEVERITIES))


TIMELINE_LENGTH = 10_000
"""Alert transitions kept in memory for `SloEngine.timeline` (the oldest are forgotten first)."""


@dataclass(frozen=True)
class AlertTransition:
    """An alert fired or resolved: one line of the alert timeline."""

    at_ns: int
    event: Literal["fired", "resolved"]
    labels: Mapping[str, str]
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {"at": rfc3339(self.at_ns), "event": self.event, "labels": dict(self.labels), "summary": self.summary}


@dataclass
class _ActiveAlert:
    labels: dict[str, str]
    starts_at_ns: int
    impact_severity: str
    last: Notification
    last_sent: float
    held: str | None = None


@dataclass(frozen=True)
class _SegmentResult:
    where: dict[str, str]
    period: Tally
    budget: Budget
    burns: dict[float, float | None]
    conditions: list[ConditionResult]
    level: Literal["page", "ticket"] | None
    impact: ImpactScore | None
    impact_error: str | None


class SloEngine:
    """Evaluates the configured SLOs against an `ImpactQueries` source.

    Single-threaded: call `evaluate`, `snapshot`, `start` and `aclose` from one event loop.
    ``dispatcher`` is optional (without it, alerts are tracked and served but not sent).
    """

    def __init__(
        self,
        slos: Sequence[SloConfig],
        alerting: AlertingConfig,
        queries: ImpactQueries,
        *,
        clock: Clock,
        dispatcher: AlertSink | None = None,
    ) -> None:
        self.slos = tuple(slos)
        self.alerting = alerting
        self.queries = queries
        self.clock = clock
        self.dispatcher = dispatcher
        self.evaluations = 0
        self.evaluation_errors = 0
        self._active: dict[tuple[str, tuple[str, ...]], _ActiveAlert] = {}
        self._timeline: deque[AlertTransition] = deque(maxlen=TIMELINE_LENGTH)
        self._snapshot: dict[str, Any] | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, *, sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        """Start the dispatcher and evaluate every ``evaluation_interval`` until `aclose`."""
        if self._task is not None:
            return
        if self.dispatcher is not None:
            await self.dispatcher.start()
        self._stop.clear()
        self._task = asyncio.create_task(self._run(sleep), name="slo-evaluation")

    async def aclose(self, timeout: float = 5.0) -> None:
        """Stop evaluating and give queued notifications up to ``timeout`` seconds. Idempotent."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self.dispatcher is not None:
            await self.dispatcher.aclose(timeout)

    async def _run(self, sleep: Callable[[float], Awaitable[None]] | None) -> None:
        interval = self.alerting.evaluation_interval
        while not self._stop.is_set():
            self.evaluate()
            if sleep is not None:
                await sleep(interval)
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=interval)

    # -- evaluation ------------------------------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        """One pass over every SLO at the clock's current time; returns the new snapshot."""
        now = self.clock.now_ns()
        outgoing: list[Notification] = []
        slo_docs = []
        for slo in self.slos:
            try:
                slo_docs.append(self._evaluate_slo(slo, now, outgoing))
            except Exception as error:  # a broken answer must not stop the other SLOs or the loop
                self.evaluation_errors += 1
                logger.exception("evaluating SLO %s failed", slo.name)
                slo_docs.append(self._slo_doc(slo, now, "error", f"evaluation failed: {error}", [], None))
                self._hold_all(slo, f"evaluation failed: {error}", now, outgoing)
        self.evaluations += 1
        if self.dispatcher is not None and outgoing:
            self.dispatcher.submit(outgoing)
        self._snapshot = {
            "evaluated_at": rfc3339(now),
            "evaluation_interval_seconds": self.alerting.evaluation_interval,
            "slos": slo_docs,
            "delivery": self.dispatcher.stats() if self.dispatcher is not None else {},
        }
        return self._snapshot

    def snapshot(self) -> dict[str, Any]:
        """The last evaluation (evaluating now if there was none)."""
        return self._snapshot if self._snapshot is not None else self.evaluate()

    def _evaluate_slo(self, slo: SloConfig, now: int, outgoing: list[Notification]) -> dict[str, Any]:
        queries = self.queries
        if slo.task not in queries.tasks():
            reason = f"no events seen for task {slo.task!r} yet"
            self._hold_all(slo, reason, now, outgoing)
            return self._slo_doc(slo, now, "no_data", reason, [], None)
        problem = self._runtime_problem(slo)
        if problem is not None:
            logger.warning("SLO %s cannot be evaluated: %s", slo.name, problem)
            self._hold_all(slo, problem, now, outgoing)
            return self._slo_doc(slo, now, "error", problem, [], None)
        start_ns, _, period_seconds = period_bounds(slo.window, now)
        period = queries.counts(slo.task, start_ns, now, by=slo.by)
        windows = {w: queries.counts(slo.task, now - int(w * _NS), now, by=slo.by) for w in BURN_WINDOWS}
        keys = set(period)
        for answer in windows.values():
            keys.update(answer)
        keys.update(key for name, key in self._active if name == slo.name)
        complete, incomplete_reason = queries.telemetry_complete(slo.task, now)
        dimensions = tuple(queries.dimensions(slo.task))
        segments = []
        for key in sorted(keys):
            result = self._evaluate_segment(slo, key, now, period_seconds, period, windows, dimensions)
            self._update_alert(slo, key, result, now, None if complete else incomplete_reason, outgoing)
            segments.append(result)
        telemetry = {"complete": complete, "reason": incomplete_reason}
        return self._slo_doc(slo, now, "ok", None, segments, telemetry)

    def _runtime_problem(self, slo: SloConfig) -> str | None:
        dimensions = list(self.queries.dimensions(slo.task))
        missing = [name for name in slo.by if name not in dimensions]
        if missing:
            return (
                f"dimension(s) {', '.join(missing)} are not configured for task {slo.task!r} "
                f"(it has: {', '.join(dimensions) or 'none'}); add them to the SLI dimensions or change `by`"
            )
        if slo.sli.kind == "latency":
            assert slo.sli.threshold_seconds is not None
            thresholds = list(self.queries.latency_thresholds(slo.task))
            if not any(math.isclose(t, slo.sli.threshold_seconds, rel_tol=1e-9) for t in thresholds):
                shown = ", ".join(f"{t:g}s" for t in thresholds) or "none"
                return (
                    f"latency threshold {slo.sli.threshold_seconds:g}s is not counted for task {slo.task!r} "
                    f"(thresholds: {shown}); add it to the task's latency thresholds or use one of them"
                )
        return None

    def _evaluate_segment(
        self,
        slo: SloConfig,
        key: tuple[str, ...],
        now: int,
        period_seconds: float,
        period: Mapping[tuple[str, ...], EventCounts],
        windows: Mapping[float, Mapping[tuple[str, ...], EventCounts]],
        dimensions: Sequence[str],
    ) -> _SegmentResult:
        error_budget = slo.error_budget
        try:
            period_tally = tally(period.get(key), slo.sli)
            tallies = {w: tally(answer.get(key), slo.sli) for w, answer in windows.items()}
        except MissingThreshold as missing:
            raise RuntimeError(f"the counts lack latency threshold {missing.args[0]:g}s") from missing
        budget = Budget.of(period_tally, error_budget)
        conditions = evaluate_conditions(
            tallies,
            budget,
            error_budget=error_budget,
            period_seconds=period_seconds,
            guard=self.alerting.low_traffic_guard,
            low_budget=self.alerting.low_budget_page,
        )
        level = alert_level(conditions)
        where = dict(zip(slo.by, (str(value) for value in key), strict=True))
        score_window = self.alerting.scoring.window
        if level is not None:
            score_window = min(c.long for c in conditions if c.firing and c.severity == level)
        impact: ImpactScore | None = None
        impact_error = None
        start = now - int(score_window * _NS)
        try:
            impact = score_impact(
                self.queries,
                slo.task,
                start,
                now,
                where=where,
                task_dimensions=dimensions,
                scoring=self.alerting.scoring,
                severity=self.alerting.severity,
            )
            if level is not None:
                top_by = [d for d in dimensions if d not in where]
                top = top_segments(
                    self.queries, slo.task, start, now, where=where, by=top_by, limit=self.alerting.scoring.top_segments
                )
                impact = _with_top(impact, top)
        except ImpactUnavailable as error:
            impact_error = str(error)
        burns = {w: t.burn_rate(error_budget) for w, t in tallies.items()}
        return _SegmentResult(where, period_tally, budget, burns, conditions, level, impact, impact_error)

    # -- alerts ----------------------------------------------------------------------------------

    def _update_alert(
        self,
        slo: SloConfig,
        key: tuple[str, ...],
        result: _SegmentResult,
        now: int,
        hold_reason: str | None,
        outgoing: list[Notification],
    ) -> None:
        alert_key = (slo.name, key)
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
        if active is not None and _rank(active.impact_severity) < _rank(severity):
            severity = active.impact_severity
        page_at = self.alerting.page_at_severity
        promoted = page_at is not None and _rank(severity) <= _rank(page_at)
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
        notification = self._firing(slo, result, labels, active.starts_at_ns if active else now, now)
        mono = self.clock.monotonic()
        if active is None:
            self._active[alert_key] = _ActiveAlert(labels, now, severity, notification, mono)
            outgoing.append(notification)
            self._timeline.append(AlertTransition(now, "fired", labels, notification.annotations.get("summary", "")))
            return
        active.last = notification
        active.held = None
        if mono - active.last_sent >= self.alerting.delivery.resend_interval:
            active.last_sent = mono
            outgoing.append(notification)

    def _resolve(self, active: _ActiveAlert, now: int, outgoing: list[Notification]) -> None:
        outgoing.append(_resolved(active.last, now))
        self._timeline.append(
            AlertTransition(now, "resolved", active.labels, active.last.annotations.get("summary", ""))
        )

    def timeline(self, start_ns: int, end_ns: int, *, task: str | None = None) -> list[AlertTransition]:
        """Alerts fired or resolved in ``[start_ns, end_ns)`` (optionally for one task), oldest first.

        Kept in memory: the last `TIMELINE_LENGTH` transitions since the process started.
        """
        return [
            t for t in self._timeline if start_ns <= t.at_ns < end_ns and (task is None or t.labels.get("task") == task)
        ]

    def _hold(self, active: _ActiveAlert, reason: str, now: int, outgoing: list[Notification]) -> None:
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

    def _hold_all(self, slo: SloConfig, reason: str, now: int, outgoing: list[Notification]) -> None:
        for (name, _), active in self._active.items():
            if name == slo.name:
                self._hold(active, reason, now, outgoing)

    def _ends_at(self, now: int) -> int:
        return now + int(4 * self.alerting.delivery.resend_interval * _NS)

    def _firing(
        self, slo: SloConfig, result: _SegmentResult, labels: dict[str, str], starts_at: int, now: int
    ) -> Notification:
        firing = [c for c in result.conditions if c.firing]
        worst = max(firing, key=lambda c: c.long_burn or 0.0)
        segment = ",".join(f"{k}={v}" for k, v in result.where.items())
        title = f"{slo.name}" + (f" [{segment}]" if segment else "")
        burns = " ".join(f"{window_name(w)}={_fmt(b)}" for w, b in result.burns.items())
        annotations = {
            "summary": (
                f"{title}: error budget burning {_fmt(worst.long_burn)}x over {window_name(worst.long)} "
                f"(threshold {worst.threshold:g}x, {labels['severity']})"
            ),
            "description": (
                f"SLO {slo.objective:g}% {slo.sli.describe()} for task {slo.task} over {slo.window.label}. "
                f"Conditions: {', '.join(c.name for c in firing)}. Burn rates: {burns}. "
                f"Budget remaining: {result.budget.remaining:.1%}."
            ),
            "conditions": ",".join(c.name for c in firing),
            "budget_remaining": f"{result.budget.remaining:.4f}",
        }
        if slo.runbook:
            annotations["runbook_url"] = slo.runbook
        impact_json: dict[str, Any]
        if result.impact is not None:
            impact = result.impact
            annotations["impact_score"] = f"{impact.score:.1f}"
            annotations["impacted_users"] = impact.impacted_users.describe()
            annotations["revenue_at_risk"] = f"{impact.revenue_at_risk:.2f}"
            annotations["top_segments"] = "; ".join(
                ",".join(f"{k}={v}" for k, v in row["segment"].items())
                + f": {row['impacted_users']['estimate']:.0f} users"
                for row in impact.top_segments
            )
            if not impact.telemetry_complete:
                annotations["impact_lower_bound"] = "telemetry incomplete: impact figures are lower bounds"
            impact_json = impact.to_json()
        else:
            annotations["impact_score"] = f"unknown: {result.impact_error}"
            impact_json = {"error": result.impact_error}
        details = {
            "slo": {"name": slo.name, "task": slo.task, "objective": slo.objective, "window": slo.window.to_json()},
            "segment": dict(result.where),
            "conditions": [c.name for c in firing],
            "burn_rates": {window_name(w): b for w, b in result.burns.items()},
            "budget_remaining": result.budget.remaining,
            "impact": impact_json,
        }
        return Notification(labels, annotations, starts_at, self._ends_at(now), False, details)

    # -- snapshot --------------------------------------------------------------------------------

    def _slo_doc(
        self,
        slo: SloConfig,
        now: int,
        status: str,
        reason: str | None,
        segments: list[_SegmentResult],
        telemetry: dict[str, Any] | None,
    ) -> dict[str, Any]:
        start_ns, end_ns, length = period_bounds(slo.window, now)
        segment_docs = [self._segment_doc(slo, result) for result in segments]
        levels = [doc["alert"]["state"] for doc in segment_docs]
        scores = [doc["impact"]["score"] for doc in segment_docs if doc["impact"]]
        severities = [doc["impact"]["severity"] for doc in segment_docs if doc["impact"]]
        return {
            "name": slo.name,
            "task": slo.task,
            "objective": slo.objective,
            "error_budget": slo.error_budget,
            "sli": {"kind": slo.sli.kind, "threshold_seconds": slo.sli.threshold_seconds},
            "window": slo.window.to_json(),
            "period": {"start": rfc3339(start_ns), "end": rfc3339(min(end_ns, now)), "length_seconds": length},
            "by": list(slo.by),
            "labels": slo.routing_labels(),
            "runbook": slo.runbook,
            "status": status,
            "reason": reason,
            "telemetry": telemetry,
            "alert_state": "page" if "page" in levels else "ticket" if "ticket" in levels else "ok",
            "budget_remaining": min((doc["budget"]["remaining"] for doc in segment_docs), default=None),
            "score": max(scores, default=None),
            "severity": min(severities, key=_rank, default=None),
            "segments": segment_docs,
        }

    def _segment_doc(self, slo: SloConfig, result: _SegmentResult) -> dict[str, Any]:
        active = self._active.get((slo.name, tuple(result.where.values())))
        budget = result.budget
        return {
            "segment": result.where,
            "events": {"total": result.period.total, "good": result.period.good, "bad": result.period.bad},
            "sli": result.period.good / result.period.total if result.period.total else None,
            "budget": {
                "allowed_bad": budget.allowed_bad,
                "consumed": budget.consumed,
                "remaining": budget.remaining,
            },
            "burn_rates": {window_name(w): b for w, b in result.burns.items()},
            "conditions": [
                {
                    "name": c.name,
                    "severity": c.severity,
                    "long_window": window_name(c.long),
                    "short_window": window_name(c.short),
                    "threshold": c.threshold,
                    "long_burn": c.long_burn,
                    "short_burn": c.short_burn,
                    "firing": c.firing,
                    "guarded": c.guarded and c.burning,
                }
                for c in result.conditions
            ],
            "alert": {
                "state": active.labels["severity"] if active else "ok",
                "fingerprint": active.last.fingerprint if active else None,
                "labels": active.labels if active else None,
                "starts_at": rfc3339(active.starts_at_ns) if active else None,
                "held": active.held if active else None,
            },
            "impact": result.impact.to_json() if result.impact is not None else None,
            "impact_error": result.impact_error,
        }


def _resolved(last: Notification, now: int) -> Notification:
    return Notification(last.labels, last.annotations, last.starts_at_ns, now, True, last.details)


def _with_top(impact: ImpactScore, top: tuple[dict[str, Any], ...]) -> ImpactScore:
    return replace(impact, top_segments=top)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"
