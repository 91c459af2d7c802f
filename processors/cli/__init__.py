"""The ``otel-impact`` command.

Each subcommand lives in its own module, which defines ``register(subparsers)``: it adds its
parser and sets ``handler`` to a function taking the parsed arguments and returning the exit
code. Commands that need the processor extra import it lazily, inside a handler wrapped in
`_processor.needs_processor_extra`, which says how to install the extra when it is missing.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from otel_impact.version import __version__

COMMAND_MODULES: tuple[str, ...] = (
    "serve",
    "check_config",
    "report",
    "explain",
    "rules",
    "gate",
    "postmortem",
    "demo",
)
"""Modules under ``otel_impact.processors.cli`` that provide a subcommand, in help order."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-impact",
        description="Which customers does an incident hurt? The otel-impact processor and its tools.",
    )
    parser.add_argument("--version", action="version", version=f"otel-impact {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    return int(handler(args))
