"""The postmortem document as Markdown, for a postmortem template or an incident ticket."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def render_markdown(doc: Mapping[str, Any]) -> str:
    """Markdown for a `build_postmortem` document."""
    impact = doc["impact"]
    telemetry = impact.get("telemetry") or {}
    lines = [
        f"# Impact summary: {doc['task']}",
        "",
        f"- **Incident window:** {doc['from']} to {doc['to']} ({doc['duration']})",
    ]
    mitigation = doc.get("mitigation")
    if mitigation:
        lines.append(
            f"- **Mitigated at:** {mitigation['at']}; time to mitigate **{mitigation['time_to_mitigate']}**, "
            f"measured from {mitigation['measured_from']}"
            + (f" ({doc['first_alert']})" if mitigation["measured_from"] == "the first alert" else "")
        )
    if doc.get("first_alert"):
        lines.append(f"- **First alert:** {doc['first_alert']}")
    if telemetry.get("complete", True):
        lines.append("- **Telemetry:** complete for the window")
    else:
        lines.append(
            f"- **Telemetry: incomplete** ({telemetry.get('reason')}). The figures below are **lower bounds**."
        )
    events = impact["events"]
    lines += [
        "",
        "## Customer impact",
        "",
        "| measure | value | bounds |",
        "|---|---|---|",
        f"| impacted users (at least one failed task) | {_int(impact['impacted_users']['estimate'])} | "
        f"{_bounds(impact['impacted_users'])} |",
        f"| users who attempted the task | {_int(impact['users']['estimate'])} | {_bounds(impact['users'])} |",
        f"| failed tasks | {_int(events['bad'])} of {_int(events['total'])} ({_pct(_ratio(events))}) | exact |",
        f"| revenue at risk | {_money(impact['revenue_at_risk'])} | exact |",
        "",
    ]
    segments = impact.get("segments") or []
    if segments:
        lines += [
            "### By segment",
            "",
            "| segment | tasks | failed | success | impacted users | bounds | revenue at risk |",
            "|---|---|---|---|---|---|---|",
        ]
        for segment in segments:
            seg_events = segment["events"]
            lines.append(
                f"| {_segment(segment['segment'])} | {_int(seg_events['total'])} | {_int(seg_events['bad'])} | "
                f"{_pct(segment.get('success_ratio'))} | {_int(segment['impacted_users']['estimate'])} | "
                f"{_bounds(segment['impacted_users'])} | {_money(segment['revenue_at_risk'])} |"
            )
        lines.append("")
    lines += ["## Error budget consumed", ""]
    budgets = doc.get("budgets") or []
    if not budgets:
        lines += ["No SLO is configured for this task.", ""]
    else:
        lines += ["| SLO | segment | failed in the incident | budget of the period consumed |", "|---|---|---|---|"]
        for budget in budgets:
            for segment in budget["segments"]:
                consumed = segment["budget_consumed"]
                lines.append(
                    f"| {budget['slo']} ({budget['objective']:g}% {budget['sli']}, {budget['window']}) | "
                    f"{_segment(segment['segment'])} | {_int(segment['bad_in_incident'])} | "
                    f"{'–' if consumed is None else _pct(consumed)} |"
                )
        lines.append("")
    lines += ["## Alert timeline", ""]
    alerts = doc.get("alerts") or []
    if not alerts:
        lines += ["No alert fired or resolved for this task in the window.", ""]
    else:
        lines += ["| time | event | severity | segment | summary |", "|---|---|---|---|---|"]
        for alert in alerts:
            labels = alert["labels"]
            segment = {k: v for k, v in labels.items() if k not in _ALERT_LABELS}
            lines.append(
                f"| {alert['at']} | {alert['event']} | {labels.get('severity', '')} "
                f"{labels.get('impact_severity', '')} | {_segment(segment)} | {alert['summary']} |"
            )
        lines.append("")
    accuracy = impact.get("accuracy") or {}
    lines += [
        "## How these numbers were made",
        "",
        "- Task counts and revenue at risk are exact sums of the task spans the processor received.",
        f"- Users are HyperLogLog estimates; bounds are {accuracy.get('users_bounds', 'about 95%')}.",
        "- Budget consumed: the incident's failed tasks over the failures the SLO allows in its period "
        "so far (budgeting by occurrences).",
        f"- Generated at {doc['generated_at']} by otel-impact.",
        "",
    ]
    return "\n".join(lines)


_ALERT_LABELS = frozenset({"alertname", "slo", "task", "severity", "impact_severity", "owner", "team", "route"})


def _int(value: float | None) -> str:
    return "–" if value is None else f"{round(value):,}"


def _money(value: float | None) -> str:
    return "–" if value is None else f"{value:,.2f}"


def _pct(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio * 100:.2f}%"


def _ratio(events: Mapping[str, int]) -> float | None:
    return None if not events["total"] else events["bad"] / events["total"]


def _bounds(value: Mapping[str, Any]) -> str:
    if value.get("upper") is None:
        return f"at least {_int(value.get('lower'))}"
    return f"{_int(value.get('lower'))} – {_int(value.get('upper'))}"


def _segment(segment: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in segment.items()) or "all"
