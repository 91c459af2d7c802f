"""``otel-impact explain``: what a task's failing requests have in common, from a running processor.

    otel-impact explain --admin localhost:9464 --task checkout --window 30m

It reads ``GET /api/v1/explain`` from the processor's admin address and prints one line per
finding, strongest first: the value (or pair of values), its share among failing and passing
events, the difference with its 95% interval, and the impacted users having it. Only the
standard library is used, so it works without the processor extra.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from otel_impact.processors.cli._admin_client import AdminConnection, AdminError, add_admin_arguments


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="print what a task's failing requests have in common, from a running processor",
        description="Print the attribute values over-represented among a task's failing events, "
        "with intervals, from a running processor's admin API.",
    )
    parser.add_argument("--task", required=True, help="the user task, e.g. checkout")
    parser.add_argument("--window", default="1h", help="how far back: 5m to 35d, e.g. 30m, 1h, 7d (default 1h)")
    parser.add_argument("--where", action="append", default=[], help="only events with DIMENSION=VALUE")
    parser.add_argument("--limit", type=int, default=10, help="print at most N findings (1-50, default 10)")
    add_admin_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Exit codes: 0 printed, 1 the processor could not be read, 2 it refused the request."""
    out = out or sys.stdout
    query = [("task", args.task), ("window", args.window), ("limit", str(args.limit))]
    query += [("where", item) for item in args.where]
    try:
        answer = AdminConnection.from_args(args).get_json("/api/v1/explain", query)
    except AdminError as failure:
        print(f"otel-impact explain: {failure}", file=sys.stderr)
        return 2 if failure.refused else 1
    out.write(render(answer))
    return 0


def describe(finding: dict[str, Any]) -> str:
    """``cloud.region=eu-west AND service.version=1.5``."""
    text = f"{finding['attribute']}={finding['value']}"
    also = finding.get("and")
    return text if also is None else f"{text} AND {also['attribute']}={also['value']}"


def render(answer: dict[str, Any]) -> str:
    """The answer as text: a header, one line per finding, and what was tested."""
    lines = [
        f"Task {answer['task']!r}, last {answer['window']} ({answer['start']} to {answer['end']}), {answer['scope']}",
        f"{answer['failing_events']:,} failing and {answer['passing_events']:,} passing events "
        f"({answer['passing_sampled']:,} passing sampled); {answer['candidates_tested']} candidates tested",
        "",
    ]
    findings = answer["findings"]
    if not findings:
        lines.append("Nothing stands out: no value is over-represented among failing events beyond chance.")
        return "\n".join(lines) + "\n"
    lines.append("What failing requests have in common (strongest first):")
    for finding in findings:
        difference = finding["difference"]
        lines.append(
            f"  {describe(finding)}: {100 * finding['failing_share']:.0f}% of failures vs "
            f"{100 * finding['passing_share']:.0f}% of successes "
            f"(difference {100 * difference['estimate']:.0f} points, 95% {100 * difference['low']:.0f}"
            f"-{100 * difference['high']:.0f}); {finding['failing_users']:,} impacted users"
        )
    if answer.get("sampled"):
        lines.append("")
        lines.append("Counts come from the event sample (a where restriction): fewer values reach significance.")
    return "\n".join(lines) + "\n"
