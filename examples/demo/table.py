"""The demo's live terminal view, drawn from the processor's JSON API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

BURN_SHOWN = ("5m", "1h", "6h")


def render(
    impact: Mapping[str, Any] | None,
    slos: Mapping[str, Any] | None,
    *,
    dashboard_url: str,
    sent: int,
    failed: int,
    uptime: str,
) -> str:
    """One screenful: traffic so far, impacted users by tier and variant, and the SLO's state."""
    lines = [
        f"otel-impact demo · dashboard: {dashboard_url} · Ctrl-C stops everything",
        f"up {uptime} · checkouts sent {sent:,}, failed {failed:,}",
        "",
    ]
    if impact is None:
        lines.append("waiting for the first spans to reach the processor…")
        return "\n".join(lines) + "\n"
    telemetry = impact.get("telemetry") or {}
    note = "" if telemetry.get("complete", True) else f"  (lower bounds: {telemetry.get('reason') or 'incomplete'})"
    lines.append(f"Checkout, last {impact['window']}{note}")
    header = ("tier", "variant", "checkouts", "failed", "success", "impacted users", "revenue at risk")
    rows = [header]
    for segment in impact.get("segments", []):
        seg = segment["segment"]
        events = segment["events"]
        rows.append(
            (
                seg.get("tier", "?"),
                seg.get("new_checkout", "?"),
                f"{events['total']:,}",
                f"{events['bad']:,}",
                "–" if segment.get("success_ratio") is None else f"{segment['success_ratio'] * 100:.1f}%",
                _users(segment["impacted_users"]),
                f"{segment['revenue_at_risk']:,.2f}",
            )
        )
    lines += _table(rows)
    for slo in (slos or {}).get("slos", []):
        budget = slo.get("budget") or {}
        covers = f" · budgets of {budget['covers']}" if budget.get("covers") else ""
        lines += ["", f"SLO {slo['name']}: {slo['objective']:g}% of checkouts succeed{covers}"]
        slo_rows = [("tier", "state", *(f"burn {w}" for w in BURN_SHOWN), "budget left", "severity")]
        for segment in slo.get("segments", []):
            burns = segment.get("burn_rates", {})
            impact_doc = segment.get("impact") or {}
            slo_rows.append(
                (
                    ",".join(str(v) for v in segment["segment"].values()) or "all",
                    str(segment["alert"]["state"]).upper(),
                    *(_burn(burns.get(w)) for w in BURN_SHOWN),
                    _budget(segment["budget"]),
                    str(impact_doc.get("severity", "–")),
                )
            )
        lines += _table(slo_rows)
    return "\n".join(lines) + "\n"


def _users(value: Mapping[str, Any]) -> str:
    if value.get("upper") is None:
        return f"≥ {round(value['lower']):,}"
    return f"{round(value['estimate']):,} ({round(value['lower']):,}–{round(value['upper']):,})"


def _budget(budget: Mapping[str, Any]) -> str:
    """The processor's words for the budget left (``82.3% left``, ``exhausted: 26x the budget
    spent``), never a bare negative percentage."""
    if budget.get("text"):
        return str(budget["text"])
    remaining = budget["remaining"]
    return "exhausted" if remaining <= 0 else f"{remaining * 100:.0f}% left"


def _burn(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}×"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for index, row in enumerate(rows):
        cells = [cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        out.append("  " + "  ".join(cells))
        if index == 0:
            out.append("  " + "  ".join("-" * width for width in widths))
    return out
