"""Configuration of ``otel-impact serve``: one YAML file, ``OTEL_IMPACT_*`` variables and flags.

See `loader` for precedence and the names, `model` for the settings, and `sections` for how a
component adds its own top-level section.
"""

from otel_impact import ConfigurationErrors

from ._fields import Fields, Problems, describe, join, parse_size
from .loader import Overrides, load_config, parse_config, read_yaml
from .model import (
    ClientTls,
    ExporterConfig,
    HostPort,
    Listener,
    PseudonymizationConfig,
    QueueConfig,
    ReceiversConfig,
    RetryConfig,
    ServeConfig,
    ServerAuth,
    ServerTls,
)
from .sections import SECTION_MODULES, register_section, registered_sections, unregister_section

__all__ = [
    "SECTION_MODULES",
    "ClientTls",
    "ConfigurationErrors",
    "ExporterConfig",
    "Fields",
    "HostPort",
    "Listener",
    "Overrides",
    "Problems",
    "PseudonymizationConfig",
    "QueueConfig",
    "ReceiversConfig",
    "RetryConfig",
    "ServeConfig",
    "ServerAuth",
    "ServerTls",
    "describe",
    "join",
    "load_config",
    "parse_config",
    "parse_size",
    "read_yaml",
    "register_section",
    "registered_sections",
    "unregister_section",
]
