"""Gathering an incident's numbers: impact by segment, error budget consumed, alert timeline.

`build_postmortem` returns a typed `Postmortem` for one task over ``[start, end)``; the HTTP
layer turns it into the JSON document, and `render_markdown` renders that document as Markdown,
here or in the CLI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from otel_impact.processors.durations import MINUTE_NS
from otel_impact.processors.impact_queries import ImpactQueries, ImpactReport
from otel_impact.processors.slo.alert_state import AlertTransition
from otel_impact.processors.slo.burn import tally
from otel_impact.processors.slo.config import SloConfig
from otel_impact.processors.slo.windows import period_bounds

__all__ = ["BudgetConsumed", "Mitigation", "Postmortem", "SegmentBudget", "build_postmortem"]


@dataclass(frozen=True)
class Mitigation:
    """When the impact was mitigated, and from when the time to mitigate is measured."""

    at_ns: int
    since_ns: int
    measured_from: Literal["the first alert", "the start of the incident"]


@dataclass(frozen=True)
class SegmentBudget:
    """One SLO segment's events in the incident and the share of its period's budget they spent.

    ``budget_consumed`` is ``None`` when the period allows no bad event (no traffic).
    """

    segment: Mapping[str, str]
    events_in_incident: int
    bad_in_incident: int
    allowed_bad_in_period: float
    budget_consumed: float | None


@dataclass(frozen=True)
class BudgetConsumed:
    """The error budget one SLO lost to the incident, segment by segment.

    The budget is of the period the processor's state has seen (`ImpactQueries.window_completeness`
    of the period): ``observed_seconds`` of it, all of it when ``state_covers_period``.
    """

    slo: str
    objective: float
    sli: str
    window: str
    period_start_ns: int
    segments: tuple[SegmentBudget, ...]
    observed_seconds: float | None = None
    state_covers_period: bool = True


@dataclass(frozen=True)
class Postmortem:
    """An incident's numbers: its impact, the budgets it consumed and its alert timeline."""

    task: str
    start_ns: int
    end_ns: int
    generated_at_ns: int
    mitigation: Mitigation | None
    first_alert_ns: int | None
    impact: ImpactReport
    budgets: tuple[BudgetConsumed, ...]
    alerts: tuple[AlertTransition, ...]


def build_postmortem(
    queries: ImpactQueries,
    slos: Sequence[SloConfig],
    timeline: Sequence[AlertTransition],
    task: str,
    start_ns: int,
    end_ns: int,
    *,
    mitigated_ns: int | None,
    now_ns: int,
) -> Postmortem:
    """The postmortem of ``task`` for ``[start_ns, end_ns)``.

    ``timeline`` is the alert transitions of the task in that range (oldest first). Time to
    mitigate runs from the first alert that fired in the range, or from the start when none
    did. The budget consumed is the incident's bad events over the budget the SLO's period
    (the one containing ``end_ns``) allows. Raises ``KeyError`` for an unknown task and
    ``ValueError`` for a bad range.
    """
    if end_ns <= start_ns:
        raise ValueError("the incident must end after it starts")
    if mitigated_ns is not None and mitigated_ns < start_ns:
        raise ValueError("mitigated_at is before the incident started")
    impact = queries.impact(task, start_ns, end_ns)
    fired = [t for t in timeline if t.event == "fired"]
    first_alert = fired[0].at_ns if fired else None
    mitigation: Mitigation | None = None
    if mitigated_ns is not None:
        from_alert = first_alert is not None and first_alert <= mitigated_ns
        mitigation = Mitigation(
            at_ns=mitigated_ns,
            since_ns=first_alert if from_alert and first_alert is not None else start_ns,
            measured_from="the first alert" if from_alert else "the start of the incident",
        )
    return Postmortem(
        task=task,
        start_ns=start_ns,
        end_ns=end_ns,
        generated_at_ns=now_ns,
        mitigation=mitigation,
        first_alert_ns=first_alert,
        impact=impact,
        budgets=tuple(_budget(queries, slo, start_ns, end_ns) for slo in slos if slo.task == task),
        alerts=tuple(timeline),
    )


def _budget(queries: ImpactQueries, slo: SloConfig, start_ns: int, end_ns: int) -> BudgetConsumed:
    period_start, _, _ = period_bounds(slo.window, end_ns)
    completeness = queries.window_completeness(slo.task, period_start, max(end_ns, period_start + MINUTE_NS))
    incident = queries.counts(slo.task, start_ns, end_ns, by=slo.by)
    period = queries.counts(slo.task, period_start, end_ns, by=slo.by)
    segments = []
    for key in sorted(set(incident) | set(period)):
        bad = tally(incident.get(key), slo.sli)
        allowed = slo.error_budget * tally(period.get(key), slo.sli).total
        segments.append(
            SegmentBudget(
                segment=dict(zip(slo.by, key, strict=True)),
                events_in_incident=bad.total,
                bad_in_incident=bad.bad,
                allowed_bad_in_period=round(allowed, 3),
                budget_consumed=None if allowed == 0 else round(bad.bad / allowed, 6),
            )
        )
    return BudgetConsumed(
        slo=slo.name,
        objective=slo.objective,
        sli=slo.sli.describe(),
        window=slo.window.label,
        period_start_ns=period_start,
        segments=tuple(segments),
        observed_seconds=completeness.observed_seconds,
        state_covers_period=completeness.state_covers_window,
    )
