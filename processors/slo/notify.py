"""The notification of a firing SLO segment: its text for people and its details for tools.

`firing_notification` turns one segment's typed evaluation into a `Notification` (Alertmanager
annotations and the webhook's structured ``details``); `impact_score_json` and `bounds_json` are
the JSON forms it shares with the ``/api/v1/slos`` snapshot. Pure functions; nothing here keeps state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_impact.processors.impact_queries import Bounds

from .alerts import Notification
from .burn import budget_left
from .config import SloConfig
from .evaluate import SegmentEvaluation
from .scoring import ImpactScore
from .windows import window_name

__all__ = ["bounds_json", "firing_notification", "impact_score_json"]


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
        "data_delayed": impact.delay_reason,
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
            f"Error budget of the period: {budget_left(result.budget.consumed)}."
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
        if impact.delay_reason:
            annotations["data_delayed"] = impact.delay_reason
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


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
