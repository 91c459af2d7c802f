"""``otel-impact postmortem``: a Markdown impact summary of an incident, from a running processor.

    otel-impact postmortem --admin localhost:9464 --task checkout \\
        --from 2026-11-26T21:00:00Z --to 2026-11-26T21:45:00Z --mitigated-at 2026-11-26T21:32:00Z

It covers impacted users with bounds by segment, revenue at risk, the error budget consumed,
the alert timeline and the time to mitigate. Times are RFC 3339 with a zone, or unix seconds.
Exit codes: 0 written, 1 the processor could not be read, 2 it refused the request.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from otel_impact.processors.cli._admin_client import AdminConnection, AdminError, add_admin_arguments


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "postmortem",
        help="write a Markdown impact summary of an incident",
        description="Write a Markdown impact summary of an incident for a task: impacted users with bounds by "
        "segment, revenue at risk, error budget consumed, alert timeline and time to mitigate.",
    )
    parser.add_argument("--task", required=True, help="the user task, e.g. checkout")
    parser.add_argument("--from", dest="start", required=True, help="incident start (RFC 3339 or unix seconds)")
    parser.add_argument("--to", dest="end", required=True, help="incident end (RFC 3339 or unix seconds)")
    parser.add_argument("--mitigated-at", help="when the impact was mitigated (RFC 3339 or unix seconds)")
    parser.add_argument("--output", "-o", help="write the Markdown here instead of standard output")
    add_admin_arguments(parser, timeout=30.0)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from otel_impact.processors.postmortem.markdown import render_markdown  # noqa: PLC0415

    query = [("task", args.task), ("from", args.start), ("to", args.end)]
    if args.mitigated_at:
        query.append(("mitigated_at", args.mitigated_at))
    admin = AdminConnection.from_args(args)
    try:
        doc = admin.get_json("/api/v1/postmortem", query)
    except AdminError as error:
        print(f"otel-impact postmortem: {error}", file=sys.stderr)
        return 2 if error.refused else 1
    text = render_markdown(doc)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        (out or sys.stdout).write(text)
    return 0
