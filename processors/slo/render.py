"""SLO evaluations as documents: the ``GET /api/v1/slos`` snapshot and the alert notifications.

Pure functions from the typed results (`SloEvaluation`, `ImpactScore`, `AlertTransition`) to
JSON-ready dicts and to `Notification`: their text (summary, description) and their structured
``details`` for the webhook. Nothing here queries or keeps state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from otel_impact.processors.impact_queries import Bounds

from .alerts import Notification, rfc3339, severity_rank
from .config import SloConfig
from .evaluate import SegmentEvaluation, SloEvaluation
from .scoring import ImpactScore
from .windows import period_bounds, window_name

if TYPE_CHECKING:
    from .alert_state import ActiveAlert, AlertTransition

__all__ = [
    "bounds_json",
    "firing_notification",
    "impact_score_json",
    "snapshot_document",
    "transition_json",
]

ActiveLookup = Callable[[str, tuple[str, ...]], "ActiveAlert | None"]
"""``(slo name, segment key) -> the segment's active alert``, e.g. `AlertStates.active`."""


def bounds_json(bounds: Bounds) -> dict[str, float | None]:
    """``{"estimate", "lower", "upper"}`` (``upper`` is null when unbounded)."""
    return {"estimate": bounds.estimate, "lower": bounds.lower, "upper": bounds.upper}


def impact_score_json(impact: ImpactScore) -> dict[str, Any]:
    """An impact score as in the snapshot's segments and in the webhook's ``details.impact``."""
    return {
        "score": round(impact.score, 3),
        "score_range": [round(impact.score_range[0], 3), _round(impact.score_range[1])],
        "severity": impact.severity,
        "impacted_users": bounds_json(impact.impacted_users),
        "weighted_users": round(impact.weighted_users, 3),
        "revenue_at_risk": impact.revenue_at_risk,
        "telemetry_complete": impact.telemetry_complete,
        "window_seconds": impact.window_seconds,
        "top_segments": [
            {
                "segment": dict(row.segment),
                "impacted_users": bounds_json(row.impacted_users),
                "bad_events": row.bad_events,
                "revenue_at_risk": row.revenue_at_risk,
            }
            for row in impact.top_segments
        ],
    }


def transition_json(transition: AlertTransition) -> dict[str, Any]:
    """One line of the alert timeline (``GET /api/v1/alerts``, the postmortem's ``alerts``)."""
    return {
        "at": rfc3339(transition.at_ns),
        "event": transition.event,
        "labels": dict(transition.labels),
        "summary": transition.summary,
    }


def firing_notification(
    slo: SloConfig, result: SegmentEvaluation, labels: Mapping[str, str], starts_at_ns: int, ends_at_ns: int
) -> Notification:
    """The firing notification of one SLO segment: its text for people and its details for tools."""
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
            ",".join(f"{k}={v}" for k, v in row.segment.items()) + f": {row.impacted_users.estimate:.0f} users"
            for row in impact.top_segments
        )
        if not impact.telemetry_complete:
            annotations["impact_lower_bound"] = "telemetry incomplete: impact figures are lower bounds"
        impact_json = impact_score_json(impact)
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
    return Notification(labels, annotations, starts_at_ns, ends_at_ns, False, details)


def snapshot_document(
    now: int,
    evaluation_interval: float,
    evaluations: Sequence[SloEvaluation],
    active: ActiveLookup,
    delivery: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``GET /api/v1/slos`` document of one evaluation pass."""
    return {
        "evaluated_at": rfc3339(now),
        "evaluation_interval_seconds": evaluation_interval,
        "slos": [slo_document(evaluation, active) for evaluation in evaluations],
        "delivery": dict(delivery),
    }


def slo_document(evaluation: SloEvaluation, active: ActiveLookup) -> dict[str, Any]:
    """One SLO of the snapshot, with its segments and the state of their alerts."""
    slo, now = evaluation.slo, evaluation.at_ns
    start_ns, end_ns, length = period_bounds(slo.window, now)
    alerts = [active(slo.name, result.key) for result in evaluation.segments]
    levels = [alert.labels["severity"] for alert in alerts if alert is not None]
    impacts = [result.impact for result in evaluation.segments if result.impact is not None]
    telemetry = evaluation.telemetry
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
        "status": evaluation.status,
        "reason": evaluation.reason,
        "telemetry": None if telemetry is None else {"complete": telemetry[0], "reason": telemetry[1]},
        "alert_state": "page" if "page" in levels else "ticket" if "ticket" in levels else "ok",
        "budget_remaining": min((result.budget.remaining for result in evaluation.segments), default=None),
        "score": max((round(impact.score, 3) for impact in impacts), default=None),
        "severity": min((impact.severity for impact in impacts), key=severity_rank, default=None),
        "segments": [_segment_doc(result, alert) for result, alert in zip(evaluation.segments, alerts, strict=True)],
    }


def _segment_doc(result: SegmentEvaluation, active: ActiveAlert | None) -> dict[str, Any]:
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
        "impact": impact_score_json(result.impact) if result.impact is not None else None,
        "impact_error": result.impact_error,
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
