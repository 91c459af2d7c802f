"""Both SLO sections of the config file together, and reading them from a YAML file.

``otel-impact serve`` reads the ``slos:`` and ``alerting:`` keys with the rest of its config
(``otel_impact.processors.serve_config``). Tools that need only these sections (``otel-impact
rules``) use `load_slo_settings`, which reads them with the same parsers, `parse_slos_section`
and `parse_alerting_section`, and ignores the file's other sections.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from otel_impact.processors.config import Problems, read_yaml

from .alerting_config import AlertingConfig, parse_alerting_section
from .config import SloConfig, parse_slos_section

__all__ = ["SloSettings", "load_slo_settings"]


@dataclass(frozen=True)
class SloSettings:
    """The ``slos:`` and ``alerting:`` sections."""

    slos: tuple[SloConfig, ...] = ()
    alerting: AlertingConfig = field(default_factory=AlertingConfig)

    @classmethod
    def from_mapping(cls, raw: object) -> SloSettings:
        """Read both sections from a whole config mapping; raises `ConfigurationErrors` listing all."""
        problems = Problems()
        document = {} if raw is None else raw
        if not isinstance(document, Mapping):
            problems.add("(top level)", "the config file is not a mapping", "write `slos:` and `alerting:` sections")
            document = {}
        slos = parse_slos_section(document.get("slos"), "slos", problems)
        alerting = parse_alerting_section(document.get("alerting"), "alerting", problems)
        problems.raise_if_any()
        return cls(slos, alerting)


def load_slo_settings(path: str | Path) -> SloSettings:
    """Read the SLO sections of a YAML config file.

    Raises `ConfigurationError` for an unreadable file or bad YAML (with its line), and
    `ConfigurationErrors` listing every problem of the sections.
    """
    return SloSettings.from_mapping(read_yaml(str(path), sections=("slos", "alerting")))
