"""What crosses the pipes between the main intake process and an extra one (pickled).

Main → extra, on its control pipe: `Sync`. The pipe's end (EOF) tells the extra process to drain
and exit. Extra → main, on its relay pipe: lists of messages, each a `Ready`, `Failed`,
`MetricsSnapshot`, `Synced`, or an analysis message of ``analysis.sink`` (a result, unanalysed
spans, analyzer counts), in the order they were produced.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from otel_impact.processors.serve_config import ServeConfig

from .metrics import FamilySnapshot

__all__ = ["INTAKE_ENTRY", "Failed", "IntakeSpec", "MetricsSnapshot", "Ready", "Sync", "Synced"]

INTAKE_ENTRY: Final = "otel_impact.processors.intake_processes.child:main"
"""What `child_processes.start_child` runs for an extra intake process."""


@dataclass(frozen=True)
class IntakeSpec:
    """What an extra intake process is started with (pickled to its standard input)."""

    index: int
    config: ServeConfig
    """The main's config with the receivers' ports bound, no admin server and its own state directory."""
    log_level: int = logging.INFO
    metrics_interval_s: float = 1.0


@dataclass(frozen=True, slots=True)
class Sync:
    """Relay everything analysed so far and a fresh metrics snapshot, then answer `Synced`."""

    token: int


@dataclass(frozen=True, slots=True)
class Synced:
    """Everything before it on the relay pipe covers what was accepted before `Sync` ``token``."""

    token: int


@dataclass(frozen=True, slots=True)
class Ready:
    """The extra process listens on the shared ports."""

    pid: int


@dataclass(frozen=True, slots=True)
class Failed:
    """The extra process could not start: why, in one line."""

    reason: str


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """The extra process's metric families, with their current values."""

    families: tuple[FamilySnapshot, ...]
