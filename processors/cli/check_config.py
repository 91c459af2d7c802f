"""``otel-impact check-config FILE``: validate a config file (and the environment) without starting.

Prints ``ok: FILE`` and one line per section it checked, or every problem (field and fix) with
exit code 2. The flags of ``serve`` that override the file (all but ``--config``) apply, so the
effective config can be checked; unknown ``OTEL_IMPACT_*`` variables are warned about as
``serve`` does.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from otel_impact import ConfigurationError
from otel_impact.processors.cli._processor import add_override_flags, load, needs_processor_extra

if TYPE_CHECKING:
    from otel_impact.processors.config import Listener
    from otel_impact.processors.serve_config import ServeConfig


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="validate a processor config file",
        description="Validate the config file as `serve` would read it, with the same flags and variables.",
    )
    parser.add_argument("file", metavar="FILE", help="the YAML config file")
    add_override_flags(parser, config_flag=False)
    parser.set_defaults(handler=run)


@needs_processor_extra
def run(args: argparse.Namespace) -> int:
    config = load(args, config_file=args.file)
    if config is None:
        return 2
    from otel_impact.processors.pipeline.identity import build_rewriter  # noqa: PLC0415

    try:
        build_rewriter(config.pseudonymization)
    except ConfigurationError as error:
        print(f"otel-impact: config error: {error}", file=sys.stderr)
        return 2
    print(f"ok: {args.file}")
    for line in summary(config):
        print(f"  {line}")
    return 0


def summary(config: ServeConfig) -> list[str]:
    """One line per section checked: what the processor will do with it."""
    receivers = config.receivers
    lines = [
        f"receivers: otlp-grpc {_listener(receivers.grpc)}, otlp-http {_listener(receivers.http)}",
        f"admin: {_listener(config.admin)}",
    ]
    lines += [f"forward: {exporter.name} ({exporter.protocol})" for exporter in config.exporters]
    if not config.exporters:
        lines.append("forward: none (spans are analyzed, not forwarded)")
    lines.append(f"queue: {'persistent under ' + config.state_dir if config.state_dir else 'in memory'}")
    pseudonymization = config.pseudonymization
    lines.append(
        f"pseudonymization: {', '.join(pseudonymization.attributes)} ({pseudonymization.algorithm})"
        if pseudonymization.enabled
        else "pseudonymization: off"
    )
    sli = config.sli
    tasks = ", ".join(task.name for task in sli.tasks) or "none configured"
    dimensions = ", ".join(dimension.name for dimension in sli.dimensions) or "none"
    lines.append(
        f"sli: tasks {tasks}{' (+ any impact.task.name)' if sli.auto_tasks else ''}; dimensions {dimensions}; "
        f"{sli.propagation.describe()}"
        if sli.enabled
        else "sli: off"
    )
    if sli.enabled:
        workers = config.analysis.workers
        lines.append(
            f"analysis: {workers} worker process{'es' if workers != 1 else ''}, "
            f"{config.analysis.buffer_bytes >> 20} MiB buffered each"
            if workers
            else "analysis: on the intake event loop"
        )
        from otel_impact.processors.sli.explain_config import DISCOVERED_CANDIDATES  # noqa: PLC0415 (processor extra)

        explain = sli.explain
        named = len(explain.attributes)
        lines.append(
            f"explain: the dimensions, flags, {len(DISCOVERED_CANDIDATES)} common attributes"
            + (f", {named} named" if named else "")
            + (f" and up to {explain.max_auto_keys} found automatically" if explain.auto_discover else "")
            + f"; at most {explain.max_values_per_key} values per attribute, {explain.max_values_per_task} per task"
            + " (answers cover this process's events)"
            if explain.enabled
            else "explain: off"
        )
    shared = config.shared_state
    lines.append(
        f"shared_state: {shared.address.display()}, flushed every {shared.flush_interval_s:g}s"
        if shared.address is not None
        else "shared_state: none (answers cover this process's spans)"
    )
    lines.append(f"slos: {', '.join(slo.name for slo in config.slos) or 'none'}")
    alerting = config.alerting
    targets = [f"alertmanager {_host(url)}" for url in alerting.alertmanager_urls]
    targets += [f"webhook {_host(webhook.url)}" for webhook in alerting.webhooks]
    lines.append(f"alerting: {', '.join(targets) or 'no receivers (alerts on /api/v1/alerts only)'}")
    dashboard = config.dashboard
    lines.append(f"dashboard: refresh {dashboard.refresh_seconds:g}s, default window {dashboard.default_window}")
    return lines


def _host(url: str) -> str:
    """``host:port`` of ``url``: a webhook's path or a URL's user info may hold a secret."""
    return urlsplit(url).netloc.rpartition("@")[2]


def _listener(listener: Listener) -> str:
    if listener.endpoint is None:
        return "off"
    secured = (("tls", listener.tls is not None), ("token", listener.auth.bearer_token is not None))
    extras = [name for name, on in secured if on]
    if listener.cors is not None and listener.cors.enabled:
        extras.append(listener.cors.describe())
    return f"{listener.endpoint}{' (' + ', '.join(extras) + ')' if extras else ''}"
