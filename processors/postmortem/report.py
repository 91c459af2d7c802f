"""Gathering an incident's numbers: impact by segment, error budget consumed, alert timeline.

`build_postmortem` returns a JSON-ready document for one task over ``[start, end)``; the
Markdown is rendered from it by `render_markdown`, here or in the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otel_impact.processors.durations import SECOND_NS, format_duration
from otel_impact.processors.impact_queries import ImpactQueries
from otel_impact.processors.slo.alerts import rfc3339
from otel_impact.processors.slo.burn import tally
from otel_impact.processors.slo.config import SloConfig
from otel_impact.processors.slo.engine import AlertTransition
from otel_impact.processors.slo.windows import period_bounds


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
) -> dict[str, Any]:
    """The postmortem document of ``task`` for ``[start_ns, end_ns)``.

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
    mitigation: dict[str, Any] | None = None
    if mitigated_ns is not None:
        origin = first_alert if first_alert is not None and first_alert <= mitigated_ns else start_ns
        mitigation = {
            "at": rfc3339(mitigated_ns),
            "time_to_mitigate": format_duration((mitigated_ns - origin) // SECOND_NS),
            "measured_from": "the first alert" if origin == first_alert else "the start of the incident",
        }
    return {
        "task": task,
        "from": rfc3339(start_ns),
        "to": rfc3339(end_ns),
        "duration": format_duration((end_ns - start_ns) // SECOND_NS),
        "generated_at": rfc3339(now_ns),
        "mitigation": mitigation,
        "first_alert": None if first_alert is None else rfc3339(first_alert),
        "impact": impact,
        "budgets": [_budget(queries, slo, start_ns, end_ns) for slo in slos if slo.task == task],
        "alerts": [t.to_json() for t in timeline],
    }


def _budget(queries: ImpactQueries, slo: SloConfig, start_ns: int, end_ns: int) -> dict[str, Any]:
    period_start, _, _ = period_bounds(slo.window, end_ns)
    incident = queries.counts(slo.task, start_ns, end_ns, by=slo.by)
    period = queries.counts(slo.task, period_start, end_ns, by=slo.by)
    segments = []
    for key in sorted(set(incident) | set(period)):
        bad = tally(incident.get(key), slo.sli)
        allowed = slo.error_budget * tally(period.get(key), slo.sli).total
        segments.append(
            {
                "segment": dict(zip(slo.by, key, strict=True)),
                "events_in_incident": bad.total,
                "bad_in_incident": bad.bad,
                "allowed_bad_in_period": round(allowed, 3),
                "budget_consumed": None if allowed == 0 else round(bad.bad / allowed, 6),
            }
        )
    return {
        "slo": slo.name,
        "objective": slo.objective,
        "sli": slo.sli.describe(),
        "window": slo.window.label,
        "period_start": rfc3339(period_start),
        "segments": segments,
    }
