"""How the processor's config is read, and the delivery path's settings: a foundation every stage may import.

- `fields`: `Fields` and `Problems`, the one way every section is read and checked: each problem
  is noted with its field path and fix, and the owner of the `Problems` raises them all at once.
- `document`: `read_document` / `read_yaml`, the parsed YAML of a config file with its
  ``${env:NAME}`` references replaced.
- `model`, `delivery`: the settings of the delivery path (receivers, admin server, exporters,
  pseudonymization) and their parsers; `cors`: the OTLP/HTTP receiver's ``cors`` section.

Each analysis stage keeps its own section next to its code (``sli.config``, ``slo.config``,
``slo.alerting_config``, ``api.dashboard_config``), built on `fields`. The whole config of
``otel-impact serve``, `ServeConfig`, and its loader (defaults < file < environment < flags)
are assembled from all of them in ``otel_impact.processors.serve_config``: this package never
imports a stage.
"""

from otel_impact import ConfigurationErrors

from .cors import CorsConfig
from .delivery import parse_endpoint, parse_exporters, parse_listener, parse_pseudonymization, parse_receivers
from .document import ConfigDocument, read_document, read_yaml
from .fields import Fields, Problems, describe, join, parse_size
from .model import (
    ClientTls,
    ExporterConfig,
    HostPort,
    Listener,
    PseudonymizationConfig,
    QueueConfig,
    ReceiversConfig,
    RetryConfig,
    ServerAuth,
    ServerLimits,
    ServerTls,
)

__all__ = [
    "ClientTls",
    "ConfigDocument",
    "ConfigurationErrors",
    "CorsConfig",
    "ExporterConfig",
    "Fields",
    "HostPort",
    "Listener",
    "Problems",
    "PseudonymizationConfig",
    "QueueConfig",
    "ReceiversConfig",
    "RetryConfig",
    "ServerAuth",
    "ServerLimits",
    "ServerTls",
    "describe",
    "join",
    "parse_endpoint",
    "parse_exporters",
    "parse_listener",
    "parse_pseudonymization",
    "parse_receivers",
    "parse_size",
    "read_document",
    "read_yaml",
]
