"""``otel-impact demo``: the whole product working on this machine, in one command.

The demo is not part of the installed package: it lives in ``examples/demo`` of a clone of the
repository (processor, checkout and payments services, traffic with a fault, a live table and the
dashboard). This command finds that folder and runs it with the arguments it was given; from an
installed wheel it says how to get the clone instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

DEMO_HINT = "the demo runs from a clone of the otel-impact repository: run scripts/demo there."


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the processor, two instrumented services and a fault, with a live view",
        description="Run otel-impact end to end on this machine (from a clone of the repository). "
        "Options go to the demo: see `otel-impact demo --help`.",
        add_help=False,
    )
    parser.set_defaults(handler=run, passthrough=True)


def find_demo(start: Path | None = None) -> Path | None:
    """The ``examples/demo`` folder of the clone this package runs from, or above ``start``; else None."""
    here = Path(__file__).resolve()
    candidates = [here.parents[2], *(start or Path.cwd()).resolve().parents]
    candidates.insert(1, (start or Path.cwd()).resolve())
    for root in candidates:
        demo = root / "examples" / "demo"
        if (demo / "__main__.py").is_file():
            return demo
    return None


def run(args: argparse.Namespace) -> int:
    demo = find_demo()
    if demo is None:
        print(f"otel-impact demo: {DEMO_HINT}", file=sys.stderr)
        return 2
    argv = [sys.executable, str(demo), *args.extra]
    sys.stdout.flush()
    os.execv(sys.executable, argv)
