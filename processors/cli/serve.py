"""``otel-impact serve``: run the impact processor (OTLP in, OTLP out, nothing lost).

Exit codes: 0 after a graceful stop (SIGTERM/SIGINT), 2 for a configuration error (each
problem is printed, naming the field and the fix), 1 when the service cannot start (a port in
use, an unreadable state directory): one line on stderr says why, e.g. ``otel-impact serve:
cannot start: cannot listen on 127.0.0.1:4317 for OTLP/gRPC: address already in use (choose
another with --otlp-grpc or stop the other process)``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from otel_impact import ConfigurationError
from otel_impact.processors.cli._processor import add_override_flags, load, needs_processor_extra


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the impact processor",
        description="Receive OTLP traces, analyze them and forward them, losing nothing. "
        "Flags override OTEL_IMPACT_* variables, which override the config file.",
    )
    add_override_flags(parser)
    parser.set_defaults(handler=run)


@needs_processor_extra
def run(args: argparse.Namespace) -> int:
    config = load(args)
    if config is None:
        return 2
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    import prometheus_client  # noqa: PLC0415

    from otel_impact.processors.components import attach_impact  # noqa: PLC0415
    from otel_impact.processors.service import ProcessorService  # noqa: PLC0415

    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series only add noise to the accounting

    try:
        service = ProcessorService(config)
        attach_impact(service)
    except ConfigurationError as error:
        print(f"otel-impact: config error: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(service.run())
    except OSError as error:  # a `ListenError` names the server, the address and the fix
        print(f"otel-impact serve: cannot start: {error}", file=sys.stderr)
        return 1
    return 0
