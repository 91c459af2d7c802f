"""The postmortem document as Markdown, for a postmortem template or an incident ticket.

Text that comes from telemetry (task names, segment values, alert summaries, reasons) is escaped
with `text`: HTML is shown as text, never rendered, and Markdown punctuation and table bars are
literal, so a span attribute cannot inject a link, an image or a broken table into a ticket.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def text(value: object) -> str:
    """``value`` as literal Markdown text on one line: no HTML, links, images or table breaks."""
    escaped = html.escape(str(value), quote=False)
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", escaped).replace("\r", " ").replace("\n", " ")


def render_markdown(doc: Mapping[str, Any]) -> str:
    """Markdown for a `build_postmortem` document."""
    impact = doc["impact"]
    lines = [
        *_summary(doc, impact.get("telemetry") or {}),
        *_customer_impact(impact),
        *_common(doc.get("explanation")),
        *_budgets(doc.get("budgets") or []),
        *_alerts(doc.get("alerts") or []),
        *_method(doc, impact.get("accuracy") or {}),
    ]
    return "\n".join(lines)


def _summary(doc: Mapping[str, Any], telemetry: Mapping[str, Any]) -> list[str]:
    lines = [
        f"# Impact summary: {text(doc['task'])}",
        "",
        f"- **Incident window:** {doc['from']} to {doc['to']} ({doc['duration']})",
    ]
    mitigation = doc.get("mitigation")
    if mitigation:
        lines.append(
            f"- **Mitigated at:** {mitigation['at']}; time to mitigate **{mitigation['time_to_mitigate']}**, "
            f"measured from {mitigation['measured_from']}"
            + (f" ({text(doc['first_alert'])})" if mitigation["measured_from"] == "the first alert" else "")
        )
    if doc.get("first_alert"):
        lines.append(f"- **First alert:** {text(doc['first_alert'])}")
    if telemetry.get("complete", True):
        lines.append("- **Telemetry:** complete for the window")
    else:
        lines.append(
            f"- **Telemetry: incomplete** ({text(telemetry.get('reason'))}). The figures below are **lower bounds**."
        )
    return lines


def _customer_impact(impact: Mapping[str, Any]) -> list[str]:
    events = impact["events"]
    impacted, users = impact["impacted_users"], impact["users"]
    lines = [
        "",
        "## Customer impact",
        "",
        *_table(
            ("measure", "value", "bounds"),
            [
                ("impacted users (at least one failed task)", _int(impacted["estimate"]), _bounds(impacted)),
                ("users who attempted the task", _int(users["estimate"]), _bounds(users)),
                ("failed tasks", f"{_int(events['bad'])} of {_int(events['total'])} ({_pct(_ratio(events))})", "exact"),
                ("revenue at risk", _money(impact["revenue_at_risk"]), "exact"),
            ],
        ),
    ]
    segments = impact.get("segments") or []
    if segments:
        headers = ("segment", "tasks", "failed", "success", "impacted users", "bounds", "revenue at risk")
        rows = [
            (
                _segment(segment["segment"]),
                _int(segment["events"]["total"]),
                _int(segment["events"]["bad"]),
                _pct(segment.get("success_ratio")),
                _int(segment["impacted_users"]["estimate"]),
                _bounds(segment["impacted_users"]),
                _money(segment["revenue_at_risk"]),
            )
            for segment in segments
        ]
        lines += ["### By segment", "", *_table(headers, rows)]
    return lines


def _common(explanation: Mapping[str, Any] | None) -> list[str]:
    """What the failing requests had in common (the explain answer for the incident window)."""
    if explanation is None:
        return []
    lines = ["## What failing requests had in common", ""]
    tested = (
        f"{_int(explanation['failing_events'])} failing and {_int(explanation['passing_events'])} passing events "
        f"compared over {_int(explanation['candidates_tested'])} candidate values ({text(explanation['scope'])}); "
        "a value is listed only when its over-representation is beyond chance."
    )
    findings = explanation.get("findings") or []
    if not findings:
        return [*lines, f"Nothing stood out. {tested}", ""]
    rows = []
    for finding in findings:
        value = f"{text(finding['attribute'])}={text(finding['value'])}"
        also = finding.get("and")
        if also:
            value += f" AND {text(also['attribute'])}={text(also['value'])}"
        difference = finding["difference"]
        rows.append(
            (
                value,
                _pct(finding["failing_share"]),
                _pct(finding["passing_share"]),
                f"{_pct(difference['estimate'])} ({_pct(difference['low'])} – {_pct(difference['high'])})",
                _int(finding["failing_users"]),
            )
        )
    headers = ("value", "of failures", "of successes", "difference (95%)", "impacted users")
    return [*lines, *_table(headers, rows), tested, ""]


def _budgets(budgets: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["## Error budget consumed", ""]
    if not budgets:
        return [*lines, "No SLO is configured for this task.", ""]
    rows = [
        (
            f"{budget['slo']} ({budget['objective']:g}% {budget['sli']}, {budget['window']})",
            _segment(segment["segment"]),
            _int(segment["bad_in_incident"]),
            _consumed(segment, budget.get("covers")),
        )
        for budget in budgets
        for segment in budget["segments"]
    ]
    table = _table(("SLO", "segment", "failed in the incident", "budget of the period consumed"), rows)
    observed = sorted({str(b["covers"]) for b in budgets if str(b.get("covers") or "").endswith(" observed")})
    if observed:
        table += [
            f"The processor's state is younger than the SLO's period: budgets are of {' and '.join(observed)} only.",
            "",
        ]
    return [*lines, *table]


def _consumed(segment: Mapping[str, Any], covers: str | None) -> str:
    """``17.5% of the budget spent`` or ``exhausted: 20x the budget spent``, with the period it is of."""
    if segment["budget_consumed"] is None:
        return "–"
    text = segment.get("budget_text") or _pct(segment["budget_consumed"])
    return f"{text} (of {covers})" if covers else text


def _alerts(alerts: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["## Alert timeline", ""]
    if not alerts:
        return [*lines, "No alert fired or resolved for this task in the window.", ""]
    rows = []
    for alert in alerts:
        labels = alert["labels"]
        segment = {k: v for k, v in labels.items() if k not in _ALERT_LABELS}
        severity = f"{labels.get('severity', '')} {labels.get('impact_severity', '')}"
        rows.append((alert["at"], alert["event"], text(severity), _segment(segment), text(alert["summary"])))
    return [*lines, *_table(("time", "event", "severity", "segment", "summary"), rows)]


def _method(doc: Mapping[str, Any], accuracy: Mapping[str, Any]) -> list[str]:
    return [
        "## How these numbers were made",
        "",
        "- Task counts and revenue at risk are exact sums of the task spans the processor received.",
        f"- Users are HyperLogLog estimates; bounds are {accuracy.get('users_bounds', 'about 95%')}.",
        "- Budget consumed: the incident's failed tasks over the failures the SLO allows in its period "
        "so far (budgeting by occurrences).",
        f"- Generated at {doc['generated_at']} by otel-impact.",
        "",
    ]


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A Markdown table, then an empty line."""
    return [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]


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
    return ", ".join(f"{text(k)}={text(v)}" for k, v in segment.items()) or "all"
