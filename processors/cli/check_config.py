"""``otel-impact check-config FILE``: validate a config file (and the environment) without starting.

Prints ``ok`` and a summary, or every problem (field and fix) with exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from otel_impact import ConfigurationError
from otel_impact.processors.cli._processor import add_override_flags, load, needs_processor_extra


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="validate a processor config file",
        description="Validate the config file as `serve` would read it, with the same flags and variables.",
    )
    parser.add_argument("file", metavar="FILE", help="the YAML config file")
    add_override_flags(parser)
    parser.set_defaults(handler=run)


@needs_processor_extra
def run(args: argparse.Namespace) -> int:
    args.config = args.file
    config = load(args)
    if config is None:
        return 2
    from otel_impact.processors.pipeline.identity import build_rewriter  # noqa: PLC0415

    try:
        build_rewriter(config.pseudonymization)
    except ConfigurationError as error:
        print(f"otel-impact: config error: {error}", file=sys.stderr)
        return 2
    receivers = config.receivers
    print(f"ok: {args.file}")
    print(f"  otlp-grpc: {receivers.grpc.endpoint or 'off'}, otlp-http: {receivers.http.endpoint or 'off'}")
    print(f"  admin: {config.admin.endpoint or 'off'}")
    for exporter in config.exporters:
        print(f"  forward: {exporter.name} ({exporter.protocol})")
    if not config.exporters:
        print("  forward: none (spans are analyzed, not forwarded)")
    print(f"  queue: {'persistent under ' + config.state_dir if config.state_dir else 'in memory'}")
    return 0
