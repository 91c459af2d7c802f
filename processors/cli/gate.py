"""``otel-impact gate``: is the canary worse than the baseline? A verdict as an exit code, for CI/CD.

    otel-impact gate --admin localhost:9464 --task checkout \\
        --baseline service.version=1.4 --canary service.version=1.5 --window 30m

Exit codes: 0 pass, 1 fail, 2 inconclusive (too little data, or telemetry incomplete), 3 the
gate could not be evaluated (processor unreachable, unknown task or dimension). The verdict's
one-paragraph explanation is printed either way; ``--json`` prints the whole answer instead.
The same verdict is served at ``GET /api/v1/gate``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from otel_impact.processors.cli._admin_client import AdminConnection, AdminError, add_admin_arguments
from otel_impact.processors.traffic import TRAFFIC_KINDS

EXIT_ERROR = 3


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "gate",
        help="canary vs baseline verdict as an exit code (0 pass, 1 fail, 2 inconclusive)",
        description="Compare a canary segment with a baseline segment of a task over a window: task success "
        "and latency, with a stated statistical test. Exit 0 pass, 1 fail, 2 inconclusive, 3 error.",
    )
    parser.add_argument("--task", required=True, help="the user task, e.g. checkout")
    parser.add_argument("--baseline", required=True, help="DIMENSION=VALUE, e.g. service.version=1.4 or flag:x=off")
    parser.add_argument("--canary", required=True, help="DIMENSION=VALUE, e.g. service.version=1.5 or flag:x=on")
    parser.add_argument("--window", default="30m", help="how far back to compare, 5m to 35d (default 30m)")
    parser.add_argument("--confidence", type=float, help="confidence of the test (default 0.95)")
    parser.add_argument(
        "--max-degradation", type=float, help="tolerated increase of the failure rate, e.g. 0.005 (the default)"
    )
    parser.add_argument(
        "--max-latency-degradation", type=float, help="tolerated increase of the slow rate (default 0.02)"
    )
    parser.add_argument("--min-events", type=int, help="events needed on each side (default 100)")
    parser.add_argument("--latency-threshold", type=float, help="seconds; default: the task's smallest threshold")
    parser.add_argument(
        "--traffic",
        choices=TRAFFIC_KINDS,
        default="real",
        help="judge real users (default) or synthetic probes alone, e.g. before real users reach the canary",
    )
    parser.add_argument("--json", action="store_true", help="print the whole JSON answer")
    add_admin_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    query = [("task", args.task), ("baseline", args.baseline), ("canary", args.canary), ("window", args.window)]
    optional = {
        "confidence": args.confidence,
        "max_degradation": args.max_degradation,
        "max_latency_degradation": args.max_latency_degradation,
        "min_events": args.min_events,
        "latency_threshold": args.latency_threshold,
    }
    query += [(name, str(value)) for name, value in optional.items() if value is not None]
    if args.traffic != "real":
        query.append(("traffic", args.traffic))
    admin = AdminConnection.from_args(args)
    try:
        answer = admin.get_json("/api/v1/gate", query)
    except AdminError as error:
        print(f"otel-impact gate: {error}", file=sys.stderr)
        return EXIT_ERROR
    code = answer.get("exit_code")
    if code not in (0, 1, 2):
        print("otel-impact gate: the processor's answer has no verdict", file=sys.stderr)
        return EXIT_ERROR
    out.write(json.dumps(answer, indent=2) + "\n" if args.json else f"{answer.get('explanation', '')}\n")
    return int(code)
