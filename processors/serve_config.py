"""`ServeConfig`, the whole config of ``otel-impact serve``, and loading it: defaults < YAML file <
``OTEL_IMPACT_*`` environment < command-line flags.

=========================== =========================== ==========================================
flag                        environment variable        file
=========================== =========================== ==========================================
``--otlp-grpc HOST:PORT``   ``OTEL_IMPACT_OTLP_GRPC``   ``receivers.grpc.endpoint``
``--otlp-http HOST:PORT``   ``OTEL_IMPACT_OTLP_HTTP``   ``receivers.http.endpoint``
``--admin HOST:PORT``       ``OTEL_IMPACT_ADMIN``       ``admin.endpoint``
``--forward URL`` (repeat)  ``OTEL_IMPACT_FORWARD``     ``exporters`` (a flag or variable replaces
                            (comma-separated)           the file's list)
``--config FILE``           ``OTEL_IMPACT_CONFIG``      (none)
``--state DIR``             ``OTEL_IMPACT_STATE_DIR``   ``state_dir``
``--shared-state URL``      ``OTEL_IMPACT_SHARED_STATE``  ``shared_state.url``
``--analysis-workers N``    ``OTEL_IMPACT_ANALYSIS_WORKERS`` ``analysis.workers``
``--workers N``             ``OTEL_IMPACT_WORKERS``     ``receivers.processes``
=========================== =========================== ==========================================

String values in the file may refer to environment variables as ``${env:NAME}`` (see
``config.document``). The process also reads the SDK's ``OTEL_IMPACT_HASH_KEY`` /
``OTEL_IMPACT_HASH_KEY_FILE`` for pseudonymization; `unknown_variables` names every other
``OTEL_IMPACT_*`` variable, with the closest known name (a misspelled variable is otherwise
silently ignored).

An endpoint of ``none`` turns that server off. The file's top-level keys are the delivery
path's (``receivers``, ``admin``, ``exporters``, ``pseudonymization``, ``state_dir``,
``drain_timeout``, ``log_level``, read by ``config.delivery``) and one per analysis stage, each
read by the parser next to the stage's code: ``sli`` (``sli.config``), ``slos``
(``slo.config``), ``alerting`` (``slo.alerting_config``), ``dashboard``
(``api.dashboard_config``), ``shared_state`` (``shared.settings``) and ``analysis``
(``analysis.settings``). Any other key is an error.

Part of the assembly (it imports the stages' sections): the stages import
``otel_impact.processors.config``, never this module. Every problem is noted with its field
(``exporters[1].endpoint``) and fix; `load_config` raises one `ConfigurationErrors` with all of them.
Besides each section's own checks, the loader checks what the file proves wrong across
sections: an SLO's ``by:`` dimension or latency threshold that the ``sli`` section does not
count (`check_slos_against_sli`).
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Final

from otel_impact import ConfigurationError, ConfigurationErrors
from otel_impact.instrumentation.settings import KNOWN_VARIABLES as SDK_VARIABLES
from otel_impact.processors.analysis.settings import AnalysisConfig, parse_analysis_section
from otel_impact.processors.api.dashboard_config import DashboardConfig, parse_dashboard_section
from otel_impact.processors.cli._admin_client import TOKEN_ENV
from otel_impact.processors.config import (
    ExporterConfig,
    Fields,
    HostPort,
    Listener,
    Problems,
    PseudonymizationConfig,
    ReceiversConfig,
    parse_endpoint,
    parse_exporters,
    parse_listener,
    parse_pseudonymization,
    parse_receivers,
    read_document,
)
from otel_impact.processors.config.model import DEFAULT_ADMIN, INTAKE_PROCESSES_FIX, MAX_INTAKE_PROCESSES
from otel_impact.processors.shared.settings import SharedStateConfig, address_of, parse_shared_state_section
from otel_impact.processors.sli.config import SliConfig, parse_sli_section
from otel_impact.processors.slo.alerting_config import AlertingConfig, parse_alerting_section
from otel_impact.processors.slo.config import SloConfig, parse_slos_section
from otel_impact.proto.prefilter import PURE_PYTHON_ENV

__all__ = [
    "PROCESSOR_VARIABLES",
    "ConfigurationErrors",
    "Overrides",
    "ServeConfig",
    "check_slos_against_sli",
    "load_config",
    "parse_config",
    "unknown_variables",
]

ENV_PREFIX: Final = "OTEL_IMPACT_"
FLAGS: Final = {
    "OTLP_GRPC": "--otlp-grpc",
    "OTLP_HTTP": "--otlp-http",
    "ADMIN": "--admin",
    "STATE_DIR": "--state",
    "SHARED_STATE": "--shared-state",
    "ANALYSIS_WORKERS": "--analysis-workers",
    "WORKERS": "--workers",
}
PROCESSOR_VARIABLES: Final = frozenset(
    {*(ENV_PREFIX + name for name in (*FLAGS, "FORWARD", "CONFIG")), TOKEN_ENV, PURE_PYTHON_ENV}
)
"""Every ``OTEL_IMPACT_*`` variable the processor's commands read (the SDK's are `SDK_VARIABLES`)."""
LOG_LEVELS: Final = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class ServeConfig:
    """Everything ``otel-impact serve`` needs: the delivery path's settings and each analysis section.

    A section absent from the file holds its defaults. `load_config` returns it validated.
    """

    receivers: ReceiversConfig = field(default_factory=ReceiversConfig)
    admin: Listener = field(default_factory=lambda: Listener(HostPort.parse(DEFAULT_ADMIN, "")))
    exporters: tuple[ExporterConfig, ...] = ()
    pseudonymization: PseudonymizationConfig = field(default_factory=PseudonymizationConfig)
    state_dir: str | None = None
    drain_timeout: float = 10.0
    log_level: str = "info"
    sli: SliConfig = field(default_factory=SliConfig)
    slos: tuple[SloConfig, ...] = ()
    alerting: AlertingConfig = field(default_factory=AlertingConfig)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)
    shared_state: SharedStateConfig = field(default_factory=SharedStateConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)

    def validate(self, problems: Problems) -> None:
        """Note every problem of the delivery path's settings in ``problems``.

        The analysis sections were validated by their parsers; these settings are checked once
        the flags and variables that replace some of them are applied.
        """
        self.receivers.validate(problems, "receivers")
        self.admin.limits.validate(problems, "admin", grpc=False)
        names: set[str] = set()
        for index, exporter in enumerate(self.exporters):
            path = f"exporters[{index}]"
            exporter.validate(problems, path)
            if exporter.name in names:
                problems.add(f"{path}.name", f"duplicate name {exporter.name!r}", "give each a unique name")
            names.add(exporter.name)
        if self.log_level not in LOG_LEVELS:
            problems.add("log_level", "unknown level", "use debug, info, warning or error")


@dataclass(frozen=True)
class Overrides:
    """Values from the command line; ``None`` (or empty) means not given."""

    otlp_grpc: str | None = None
    otlp_http: str | None = None
    admin: str | None = None
    forward: tuple[str, ...] = ()
    config_file: str | None = None
    state_dir: str | None = None
    shared_state: str | None = None
    analysis_workers: str | None = None
    workers: str | None = None


def load_config(
    overrides: Overrides = Overrides(),
    environ: Mapping[str, str] | None = None,
    *,
    warn: Callable[[str], None] | None = None,
) -> ServeConfig:
    """Build and validate the config; raises `ConfigurationErrors` listing every problem.

    With ``warn``, each unknown ``OTEL_IMPACT_*`` variable of ``environ`` is passed to it once
    (`unknown_variables`), counting the variables the file refers to as known.
    """
    env = os.environ if environ is None else environ
    config_file = overrides.config_file or env.get(f"{ENV_PREFIX}CONFIG") or None
    problems = Problems()
    referenced: frozenset[str] = frozenset()
    raw = None
    if config_file:
        try:
            document = read_document(config_file, problems, env)
        except ConfigurationError as error:  # nothing of the file can be read
            raise ConfigurationErrors([error]) from None
        raw, referenced = document.data, document.variables
    if warn is not None:
        for warning in unknown_variables(env, referenced):
            warn(warning)
    config = parse_config(raw, problems)
    config = _apply_overrides(config, overrides, env, problems)
    config.validate(problems)
    problems.raise_if_any()
    return config


def unknown_variables(environ: Mapping[str, str], referenced: frozenset[str] = frozenset()) -> list[str]:
    """One warning for every ``OTEL_IMPACT_*`` variable in ``environ`` that nothing reads.

    Known are the processor's `PROCESSOR_VARIABLES`, the SDK's `SDK_VARIABLES` (the processor
    reads its hash-key variables) and the ``referenced`` names of the config file. Each warning
    names the closest known variable, when one is close.
    """
    known = PROCESSOR_VARIABLES | SDK_VARIABLES | referenced
    warnings: list[str] = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "see docs/processor-config.md for the variables it reads"
        warnings.append(f"{name} is not a variable otel-impact reads (ignored); {hint}")
    return warnings


def parse_config(raw: object, problems: Problems) -> ServeConfig:
    """Read a YAML document (``None`` for none) into a `ServeConfig`, noting every problem of
    every section in ``problems``, including those between sections (`check_slos_against_sli`).
    The delivery path's settings are not validated yet (`ServeConfig.validate`)."""
    top = Fields(raw, "", problems)
    raw_slos = top.take("slos")
    config = ServeConfig(
        receivers=parse_receivers(top.take("receivers"), "receivers", problems),
        admin=parse_listener(top.take("admin"), "admin", problems, default_endpoint=DEFAULT_ADMIN),
        exporters=parse_exporters(top.take("exporters"), "exporters", problems),
        pseudonymization=parse_pseudonymization(top.take("pseudonymization"), "pseudonymization", problems),
        state_dir=top.take_str("state_dir", None),
        drain_timeout=top.take_duration("drain_timeout", 10.0),
        log_level=top.take_str("log_level", "info"),
        sli=parse_sli_section(top.take("sli"), "sli", problems),
        slos=parse_slos_section(raw_slos, "slos", problems),
        alerting=parse_alerting_section(top.take("alerting"), "alerting", problems),
        dashboard=parse_dashboard_section(top.take("dashboard"), "dashboard", problems),
        shared_state=parse_shared_state_section(top.take("shared_state"), "shared_state", problems),
        analysis=parse_analysis_section(top.take("analysis"), "analysis", problems),
    )
    top.done()
    if isinstance(raw_slos, list):  # the parser leaves out an item that is not a mapping
        paths = [f"slos[{index}]" for index, item in enumerate(raw_slos) if isinstance(item, Mapping)]
        check_slos_against_sli(config.slos, paths, config.sli, problems)
    return config


def check_slos_against_sli(slos: tuple[SloConfig, ...], paths: list[str], sli: SliConfig, problems: Problems) -> None:
    """Note each SLO (at ``paths``, one per SLO) that needs what the ``sli`` section does not
    count: a ``by:`` dimension it does not define, or a latency threshold its task lacks.

    The SLO engine could only report these at run time, on every evaluation.
    """
    dimensions = [dimension.name for dimension in sli.dimensions]
    for slo, path in zip(slos, paths, strict=True):
        for index, name in enumerate(slo.by):
            if name not in dimensions:
                problems.add(
                    f"{path}.by[{index}]",
                    f"dimension {name!r} is not defined in sli.dimensions (it has: {', '.join(dimensions) or 'none'})",
                    f"add {{name: {name}, attribute: ...}} to sli.dimensions or remove it from by",
                )
        threshold = slo.sli.threshold_seconds
        if slo.sli.kind != "latency" or threshold is None or threshold <= 0:
            continue
        task = sli.task(slo.task)
        thresholds = sli.thresholds_for(task)
        if any(math.isclose(known, threshold, rel_tol=1e-9) for known in thresholds):
            continue
        shown = ", ".join(f"{known:g}s" for known in thresholds) or "none"
        if task is not None:
            where = f"sli.tasks[{sli.tasks.index(task)}].latency_thresholds"
            owner = f"task {slo.task!r} counts {shown}"
        else:
            where = "sli.latency_thresholds"
            owner = f"task {slo.task!r} is not in sli.tasks and the default thresholds are {shown}"
        problems.add(
            f"{path}.sli.threshold_seconds",
            f"{threshold:g}s is not a latency threshold the SLI engine counts ({owner})",
            f"add {threshold:g}s to {where} or use one of {shown}",
        )


def _apply_overrides(
    config: ServeConfig, overrides: Overrides, env: Mapping[str, str], problems: Problems
) -> ServeConfig:
    def pick(flag: str | None, variable: str) -> tuple[str, str] | None:
        if flag is not None:
            return flag, FLAGS[variable]
        value = env.get(ENV_PREFIX + variable)
        return (value, ENV_PREFIX + variable) if value else None

    def endpoint(listener: Listener, chosen: tuple[str, str]) -> Listener:
        value, source = chosen
        return replace(listener, endpoint=parse_endpoint(value, source, problems, default=listener.endpoint))

    receivers = config.receivers
    if (chosen := pick(overrides.otlp_grpc, "OTLP_GRPC")) is not None:
        receivers = replace(receivers, grpc=endpoint(receivers.grpc, chosen))
    if (chosen := pick(overrides.otlp_http, "OTLP_HTTP")) is not None:
        receivers = replace(receivers, http=endpoint(receivers.http, chosen))
    admin = config.admin
    if (chosen := pick(overrides.admin, "ADMIN")) is not None:
        admin = endpoint(admin, chosen)
    exporters = config.exporters
    if overrides.forward:
        exporters = tuple(ExporterConfig(endpoint=url) for url in overrides.forward)
    elif env.get(ENV_PREFIX + "FORWARD"):
        urls = [url.strip() for url in env[ENV_PREFIX + "FORWARD"].split(",") if url.strip()]
        exporters = tuple(ExporterConfig(endpoint=url) for url in urls)
    state_dir = config.state_dir
    if (chosen := pick(overrides.state_dir, "STATE_DIR")) is not None:
        state_dir = chosen[0]
    shared = config.shared_state
    if (chosen := pick(overrides.shared_state, "SHARED_STATE")) is not None:
        url, source = chosen
        shared = replace(shared, address=address_of(url, source, problems))
    if (chosen := pick(overrides.workers, "WORKERS")) is not None:
        value, source = chosen
        text = value.strip()
        if text.isdigit() and 1 <= int(text) <= MAX_INTAKE_PROCESSES:
            receivers = replace(receivers, processes=int(text))
        else:
            problems.add(source, repr(value), INTAKE_PROCESSES_FIX)
    analysis = config.analysis
    if (chosen := pick(overrides.analysis_workers, "ANALYSIS_WORKERS")) is not None:
        value, source = chosen
        if value.strip().isdigit():
            analysis = replace(analysis, workers=int(value.strip()))
            analysis.validate(problems, source)
        else:
            problems.add(source, repr(value), "write a whole number: 0 (analyse on the intake loop) or more workers")
    return replace(
        config,
        receivers=receivers,
        admin=admin,
        exporters=exporters,
        state_dir=state_dir,
        shared_state=shared,
        analysis=analysis,
    )
