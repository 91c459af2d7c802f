"""``otel-impact report``: the impact of a task as a terminal table, from a running processor.

    otel-impact report --admin localhost:9464 --task checkout --window 1h --by tier

It reads ``GET /api/v1/impact`` from the processor's admin address and prints one line per
segment, worst first, with distinct-user estimates and their bounds. Only the standard library
is used, so it works without the processor extra.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from otel_impact.processors.cli._admin_client import AdminConnection, AdminError, add_admin_arguments
from otel_impact.processors.traffic import TRAFFIC_KINDS


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="print a task's impact per segment from a running processor",
        description="Print a task's impact per segment (events, success, users and impacted users with bounds, "
        "latency, revenue at risk) from a running processor's admin API.",
    )
    parser.add_argument("--task", required=True, help="the user task, e.g. checkout")
    parser.add_argument("--window", default="1h", help="how far back: 5m to 35d, e.g. 15m, 1h, 7d (default 1h)")
    parser.add_argument(
        "--by", action="append", default=[], help="group by this dimension (repeatable), e.g. tier or flag:new_checkout"
    )
    parser.add_argument("--where", action="append", default=[], help="only this segment, DIMENSION=VALUE (repeatable)")
    parser.add_argument("--top", type=int, default=0, help="also list the N most impacted customers (pseudonyms)")
    parser.add_argument(
        "--traffic",
        choices=TRAFFIC_KINDS,
        default="real",
        help="real users (default; the synthetic probes' success is shown apart) or synthetic probes alone",
    )
    add_admin_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Exit codes: 0 printed, 1 the processor could not be read, 2 it refused the request."""
    out = out or sys.stdout
    query = [("task", args.task), ("window", args.window)]
    query += [("by", name) for name in args.by] + [("where", item) for item in args.where]
    synthetic = args.traffic == "synthetic"
    if synthetic:
        query.append(("traffic", "synthetic"))
    admin = AdminConnection.from_args(args)
    try:
        impact = admin.get_json("/api/v1/impact", query)
        top = None
        if args.top > 0 and not synthetic:  # top customers are real users'; probes are not customers
            top_query = [("task", args.task), ("window", args.window), ("limit", str(args.top))]
            top_query += [("where", item) for item in args.where]
            top = admin.get_json("/api/v1/customers/top", top_query)
    except AdminError as failure:
        print(f"otel-impact report: {failure}", file=sys.stderr)
        return 2 if failure.refused else 1
    out.write(render(impact, top))
    return 0


def render(impact: dict[str, Any], top: dict[str, Any] | None = None) -> str:
    """The report as text: a header, a table of segments, and notes on accuracy."""
    lines = []
    telemetry = impact["telemetry"]
    state = "complete" if telemetry["complete"] else f"INCOMPLETE: {telemetry['reason']}"
    lines.append(f"Task {impact['task']!r}, last {impact['window']} ({impact['start']} to {impact['end']})")
    lines.append(f"Telemetry: {state}")
    if impact.get("estimates_are_lower_bounds"):
        lines.append("Figures are LOWER BOUNDS: events may be missing.")
    if impact.get("traffic") == "synthetic":
        lines.append("Traffic: synthetic probes only (real users are left out).")
    probes = impact.get("synthetic")
    if isinstance(probes, dict) and probes.get("events", {}).get("total"):
        events, ratio = probes["events"], probes.get("success_ratio")
        success = "-" if ratio is None else f"{100 * ratio:.2f}%"
        lines.append(
            f"Synthetic probes (not counted above): {events['total']} events, {events['bad']} bad, success {success}"
        )
    lines.append("")
    dimensions = impact.get("dimensions", [])
    headers = [
        "segment",
        "events",
        "bad",
        "success",
        "users (95% bounds)",
        "impacted (95% bounds)",
        "p95 ms",
        "at risk",
    ]
    rows = [_row("ALL", impact)]
    for segment in impact["segments"]:
        label = ", ".join(f"{name}={segment['segment'][name]}" for name in dimensions) or "-"
        rows.append(_row(label, segment))
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(len(headers))]
    lines.append(_line(headers, widths))
    lines.append(_line(["-" * w for w in widths], widths))
    lines.extend(_line(row, widths) for row in rows)
    accuracy = impact.get("accuracy", {})
    lines.append("")
    lines.append(
        f"Users are HyperLogLog estimates, bounds at {accuracy.get('users_bounds', '2 standard deviations')}; "
        f"latency quantiles have a rank error of {100 * accuracy.get('latency_rank_error', 0):.1f}%."
    )
    if impact.get("overflow_events"):
        lines.append(f"{impact['overflow_events']} events fell beyond the series cap into the _overflow segment.")
    if top is not None:
        lines.append("")
        lines.append("Most impacted customers (pseudonyms):")
        for customer in top["customers"]:
            bounds = f"{customer['lower']}-{customer['upper']}"
            lines.append(f"  {customer['customer']}  {customer['bad_events']} bad events ({bounds})")
        if not top["customers"]:
            lines.append("  none")
    return "\n".join(lines) + "\n"


def _row(label: str, data: dict[str, Any]) -> list[str]:
    events = data["events"]
    ratio = data["success_ratio"]
    return [
        label,
        f"{events['total']:,}",
        f"{events['bad']:,}",
        "-" if ratio is None else f"{100 * ratio:.2f}%",
        _bounds(data["users"]),
        _bounds(data["impacted_users"]),
        "-" if data["latency_ms"]["p95"] is None else f"{data['latency_ms']['p95']:,.0f}",
        f"{data['revenue_at_risk']:,.2f}",
    ]


def _bounds(value: dict[str, Any]) -> str:
    if value["upper"] is None:
        return f">= {value['lower']:,}"
    if value["lower"] == value["upper"]:
        return f"{value['estimate']:,}"
    return f"{value['estimate']:,} ({value['lower']:,}-{value['upper']:,})"


def _line(cells: list[str], widths: list[int]) -> str:
    first, *rest = cells
    return "  ".join(
        [first.ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True))]
    )
