"""The demo's command line: ``python examples/demo [options]``, also run by ``otel-impact demo``."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Sequence

from demo.runner import DemoOptions, run_demo


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-impact demo",
        description="Run otel-impact end to end on this machine: processor, checkout and payments services, "
        "traffic with a fault for pro customers on the new checkout, a live table and the dashboard.",
    )
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: run until Ctrl-C)")
    parser.add_argument("--rate", type=float, default=40.0, help="checkouts per second (default 40)")
    parser.add_argument("--customers", type=int, default=600, help="distinct customers (default 600)")
    parser.add_argument("--fault-rate", type=float, default=0.3, help="failure rate for pro on variant on (0.3)")
    parser.add_argument("--admin-port", type=int, default=9464, help="dashboard port, or a free one if busy (9464)")
    parser.add_argument("--refresh", type=float, default=2.0, help="seconds between table updates (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep the logs and state directory")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the demo; returns the exit code."""
    args = build_parser().parse_args(argv)
    # Ctrl-C stops everything, even when started from a shell that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if not 0 <= args.fault_rate <= 1 or args.rate <= 0 or args.customers < 1 or args.refresh <= 0:
        print("otel-impact demo: --fault-rate is 0 to 1; --rate, --customers and --refresh must be positive")
        return 2
    options = DemoOptions(
        duration=args.duration,
        rate=args.rate,
        customers=args.customers,
        fault_rate=args.fault_rate,
        admin_port=args.admin_port,
        refresh=args.refresh,
    )
    return run_demo(options, keep=args.keep)
