"""``otel-impact rules --config FILE``: Prometheus rules for the configured SLOs.

Writes recording and alerting rules (YAML, valid for ``promtool check rules``) for the
``slos:`` of the config file, using its ``alerting:`` guard and low-budget settings. Exit code
0 on success, 2 when the config is invalid (every problem is printed with its field and fix).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from otel_impact._exceptions import ConfigurationError
from otel_impact.processors.cli._processor import needs_processor_extra


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rules",
        help="write Prometheus recording and alerting rules for the configured SLOs",
        description="Write Prometheus recording and alerting rules (YAML) for the SLOs in the config file.",
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="the otel-impact YAML config file")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the rules here instead of standard output")
    parser.set_defaults(handler=run)


@needs_processor_extra
def run(args: argparse.Namespace) -> int:
    from otel_impact.processors.slo import load_slo_settings, render_rules  # noqa: PLC0415

    try:
        settings = load_slo_settings(args.config)
    except ConfigurationError as error:
        print(f"otel-impact rules: invalid config:\n{error}", file=sys.stderr)
        return 2
    if not settings.slos:
        print("otel-impact rules: the config has no `slos:`; nothing to generate", file=sys.stderr)
        return 2
    text = render_rules(settings.slos, settings.alerting, source=Path(args.config).name)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
