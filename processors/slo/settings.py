"""Both SLO sections of the config file together, and reading them from a YAML file.

The processor's config loader registers `parse_slos_section` and `parse_alerting_section`
for the ``slos:`` and ``alerting:`` keys. Tools that need only these sections (``otel-impact
rules``) use `load_slo_settings`, which ignores the file's other sections.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from otel_impact._exceptions import ConfigurationError
from otel_impact.processors.config import Problems

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
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            problems.add("(top level)", "the config file is not a mapping", "write `slos:` and `alerting:` sections")
            problems.raise_if_any()
        assert isinstance(raw, Mapping)
        slos: tuple[SloConfig, ...] = ()
        alerting = AlertingConfig()
        try:
            slos = parse_slos_section(raw.get("slos"))
        except ConfigurationError as error:
            problems.extend(error)
        try:
            alerting = parse_alerting_section(raw.get("alerting"))
        except ConfigurationError as error:
            problems.extend(error)
        problems.raise_if_any()
        return cls(slos, alerting)


def load_slo_settings(path: str | Path) -> SloSettings:
    """Read the SLO sections of a YAML config file.

    Raises `ConfigurationError` for an unreadable file or bad YAML (with its line), and
    `ConfigurationErrors` for invalid sections.
    """
    name = Path(path).name
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(name, f"cannot read the config file ({error.strerror})", "check the path") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigurationError(name, f"{problem}{where}", "fix the YAML syntax") from None
    return SloSettings.from_mapping(raw)
