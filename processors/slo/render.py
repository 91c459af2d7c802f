"""SLO evaluations as documents: the ``GET /api/v1/slos`` snapshot and the alert timeline.

Pure functions from the typed results (`SloEvaluation`, `AlertTransition`) to JSON-ready dicts;
the notification of a firing alert is `notify`'s. Nothing here queries or keeps state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .alert_state import ActiveAlert, AlertTransition
from .alerts import rfc3339, severity_rank
from .burn import budget_covers, budget_left
from .evaluate import SegmentEvaluation, SloEvaluation
from .notify import impact_score_json
from .windows import period_bounds, window_name

__all__ = ["snapshot_document", "transition_json"]

ActiveLookup = Callable[[str, tuple[str, ...]], "ActiveAlert | None"]
"""``(slo name, segment key) -> the segment's active alert``, e.g. `AlertStates.active`."""


def transition_json(transition: AlertTransition) -> dict[str, Any]:
    """One line of the alert timeline (``GET /api/v1/alerts``, the postmortem's ``alerts``)."""
    return {
        "at": rfc3339(transition.at_ns),
        "event": transition.event,
        "labels": dict(transition.labels),
        "summary": transition.summary,
    }


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
    completeness = evaluation.completeness
    telemetry = None if completeness is None else {"complete": completeness.complete, "reason": completeness.reason}
    coverage = _coverage(evaluation)
    budgets = [result.budget for result in evaluation.segments]
    least = min(budgets, key=lambda budget: budget.remaining, default=None)
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
        "telemetry": telemetry,
        "alert_state": "page" if "page" in levels else "ticket" if "ticket" in levels else "ok",
        "budget_remaining": None if least is None else least.remaining,
        "budget": None
        if least is None
        else {"remaining": least.remaining, **coverage, "text": budget_left(least.consumed)},
        "score": max((round(impact.score, 3) for impact in impacts), default=None),
        "severity": min((impact.severity for impact in impacts), key=severity_rank, default=None),
        "segments": [
            _segment_doc(result, alert, coverage) for result, alert in zip(evaluation.segments, alerts, strict=True)
        ],
    }


def _coverage(evaluation: SloEvaluation) -> dict[str, Any]:
    """What the SLO's budgets are of: ``observed_seconds`` of the period the processor's state has
    seen and ``covers`` in words (``the 12 minutes observed`` while the state is younger)."""
    completeness = evaluation.completeness
    if completeness is None:
        return {"observed_seconds": None, "covers": None}
    return {
        "observed_seconds": round(completeness.observed_seconds, 3),
        "covers": budget_covers(
            completeness.observed_seconds, completeness.state_covers_window, evaluation.slo.window.label
        ),
    }


def _segment_doc(result: SegmentEvaluation, active: ActiveAlert | None, coverage: Mapping[str, Any]) -> dict[str, Any]:
    budget = result.budget
    return {
        "segment": result.where,
        "events": {"total": result.period.total, "good": result.period.good, "bad": result.period.bad},
        "sli": result.period.good / result.period.total if result.period.total else None,
        "budget": {
            "allowed_bad": budget.allowed_bad,
            "consumed": budget.consumed,
            "remaining": budget.remaining,
            **coverage,
            "text": budget_left(budget.consumed),
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
