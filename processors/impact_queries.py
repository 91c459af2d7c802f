"""The read side of the SLI engine, as its consumers see it: `ImpactQueries` and `EventCounts`.

The SLI engine (``processors.sli``) implements `ImpactQueries`; the SLO engine, the canary gate
and the dashboard depend on nothing else of it. Every assumption they make about the answers is
written here, so a second implementation (the in-memory one some tests use) can be checked
against the same text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["EventCounts", "ImpactQueries"]


@dataclass(frozen=True)
class EventCounts:
    """Events of one task (and segment) in one window.

    ``latency_met`` maps a threshold in seconds to the number of events whose duration was at
    most that threshold, all outcomes included, for every threshold configured for the task.
    """

    total: int
    good: int
    bad: int
    latency_met: Mapping[float, int]


@runtime_checkable
class ImpactQueries(Protocol):
    """Read access to the SLI engine's rolled-up events.

    ``counts`` answers events whose end time falls in ``[start_ns, end_ns)``, grouped by the
    values of the dimensions named in ``by`` (the key is ``()`` when ``by`` is empty) and
    filtered by ``where`` (dimension name -> value). Both bounds are rounded up to the minute, so a
    window ending now includes the minute still filling up; any window
    from 5 minutes to 35 days is answered. Resolution is one minute while the window starts in
    the last 6 hours; an older start is widened outward to its rolled-up bucket (10 minutes up
    to 3 days back, 1 hour beyond), so a 1d window may count up to 10 extra minutes and a 30d
    window up to an extra hour. An unknown task raises ``KeyError``.

    ``impact`` returns the JSON document of ``GET /api/v1/impact`` for that window: at least
    ``events{total,good,bad}``, ``users`` and ``impacted_users`` as ``{estimate,lower,upper}``
    (``upper`` is null when telemetry is incomplete and the estimates are lower bounds),
    ``revenue_at_risk``, ``telemetry{complete}`` and ``segments[]`` (each with ``segment``, a dict
    of dimension name to value, and the same fields).

    ``telemetry_complete`` says whether the task's span volume looks complete at ``at_ns``, and
    if not, why: estimates are then lower bounds, never a sign of health.
    """

    def tasks(self) -> Sequence[str]: ...

    def dimensions(self, task: str) -> Sequence[str]: ...

    def latency_thresholds(self, task: str) -> Sequence[float]: ...

    def counts(
        self,
        task: str,
        start_ns: int,
        end_ns: int,
        *,
        by: Sequence[str] = (),
        where: Mapping[str, str] | None = None,
    ) -> Mapping[tuple[str, ...], EventCounts]: ...

    def impact(
        self,
        task: str,
        start_ns: int,
        end_ns: int,
        *,
        by: Sequence[str] = (),
        where: Mapping[str, str] | None = None,
    ) -> dict[str, Any]: ...

    def telemetry_complete(self, task: str, at_ns: int) -> tuple[bool, str | None]: ...
