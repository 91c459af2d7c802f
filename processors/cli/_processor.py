"""Shared by the processor's commands: the processor extra, the flags that override the config file, loading."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otel_impact.processors.serve_config import ServeConfig

PROCESSOR_MISSING = "otel-impact: this command needs the processor extra: pip install 'otel-impact[processor]'"
PROCESSOR_MODULES = frozenset({"grpc", "google", "aiohttp", "yaml", "prometheus_client", "datasketches", "numpy"})
"""Top-level modules of the processor extra: only their absence means the extra is missing."""


Handler = Callable[[argparse.Namespace], int]


def missing_extra(error: ModuleNotFoundError) -> bool:
    """True when ``error`` is a processor-extra dependency missing (anything else is a bug to show)."""
    return (error.name or "").split(".")[0] in PROCESSOR_MODULES


def needs_processor_extra(run: Handler) -> Handler:
    """Wrap the handler of a command that imports the processor extra (lazily, inside ``run``):
    when one of its dependencies is missing, say how to install it and exit with 2."""

    @functools.wraps(run)
    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except ModuleNotFoundError as error:
            if not missing_extra(error):
                raise
            print(PROCESSOR_MISSING, file=sys.stderr)
            return 2

    return guarded


def add_override_flags(parser: argparse.ArgumentParser, *, config_flag: bool = True) -> None:
    """Add the flags that override the config file; ``--config FILE`` too unless ``config_flag``
    is false (``check-config`` takes its file as an argument)."""
    if config_flag:
        parser.add_argument("--config", metavar="FILE", help="the YAML config file")
    parser.add_argument("--otlp-grpc", metavar="HOST:PORT", help="OTLP/gRPC receiver (default localhost:4317)")
    parser.add_argument("--otlp-http", metavar="HOST:PORT", help="OTLP/HTTP receiver (default localhost:4318)")
    parser.add_argument("--admin", metavar="HOST:PORT", help="/healthz, /readyz, /metrics (default localhost:9464)")
    parser.add_argument(
        "--forward",
        metavar="URL",
        action="append",
        default=[],
        help="downstream grpc://host:port or http(s)://host:port; repeat for several",
    )
    parser.add_argument("--state", metavar="DIR", help="durable state (the persistent queue) lives here")
    parser.add_argument(
        "--shared-state",
        metavar="URL",
        help="share impact state with other replicas through Redis: redis://[user:password@]host:port[/db], "
        "rediss:// for TLS, or host:port,host:port,... seeds of a Redis Cluster",
    )
    parser.add_argument(
        "--analysis-workers",
        metavar="N",
        help="SLI analysis worker processes (default 1); 0 analyses on the intake event loop",
    )
    parser.add_argument(
        "--workers",
        metavar="N",
        help="intake processes sharing the receivers' ports (default 1), each with its own analysis workers",
    )


def load(args: argparse.Namespace, config_file: str | None = None) -> ServeConfig | None:
    """The validated `ServeConfig`, or None after printing every problem to stderr (needs the processor extra).

    The file is ``config_file``, else ``--config``. Each unknown ``OTEL_IMPACT_*`` variable is
    warned about on stderr, once.
    """
    from otel_impact.processors.serve_config import ConfigurationErrors, Overrides, load_config  # noqa: PLC0415

    overrides = Overrides(
        otlp_grpc=args.otlp_grpc,
        otlp_http=args.otlp_http,
        admin=args.admin,
        forward=tuple(args.forward),
        config_file=config_file or getattr(args, "config", None),
        state_dir=args.state,
        shared_state=args.shared_state,
        analysis_workers=args.analysis_workers,
        workers=args.workers,
    )
    try:
        return load_config(overrides, warn=lambda warning: print(f"otel-impact: warning: {warning}", file=sys.stderr))
    except ConfigurationErrors as errors:
        for problem in errors.problems:
            print(f"otel-impact: config error: {problem}", file=sys.stderr)
        return None
