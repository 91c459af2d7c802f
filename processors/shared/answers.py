"""Answers under shared state: asked of Redis off the event loop, else of this replica, flagged.

`SharedAnswers.run(question)` runs ``question(shared_queries)`` in a worker thread. When the
shared state cannot be read (`SharedStateUnavailable`), it asks this replica's own SLI state
instead, on the event loop, through `FallbackQueries`, which marks every answer incomplete
with the reason: "shared state unreachable (...): answering from this replica's own spans
only". A question that still cannot be answered raises `AnswerUnavailable` (HTTP 503).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from otel_impact.processors.answers import AnswerQueries
from otel_impact.processors.impact_queries import (
    AnswerUnavailable,
    Completeness,
    EventCounts,
    ImpactReport,
)
from otel_impact.processors.sli.queries import SliQueries, TopCustomers

from .reader import SharedQueries, SharedStateUnavailable

__all__ = ["FallbackQueries", "SharedAnswers"]

T = TypeVar("T")


class SharedAnswers:
    """Asks `SharedQueries` from a worker thread, falling back to the local state."""

    def __init__(self, shared: SharedQueries, local: SliQueries) -> None:
        self.shared = shared
        self.local = local
        self.fallbacks = 0
        """Questions answered from the local state because Redis could not be read."""

    async def run(self, question: Callable[[AnswerQueries], T]) -> T:
        try:
            return await asyncio.to_thread(question, self.shared)
        except SharedStateUnavailable as error:
            self.fallbacks += 1
            try:
                return question(FallbackQueries(self.local, f"{error}: answering from this replica's own spans only"))
            except SharedStateUnavailable as again:
                raise AnswerUnavailable(str(again)) from None


class FallbackQueries:
    """This replica's own answers, each marked incomplete with ``reason``."""

    def __init__(self, local: SliQueries, reason: str) -> None:
        self.local = local
        self.reason = reason

    def tasks(self) -> Sequence[str]:
        return self.local.tasks()

    def dimensions(self, task: str) -> Sequence[str]:
        return self.local.dimensions(task)

    def latency_thresholds(self, task: str) -> Sequence[float]:
        return self.local.latency_thresholds(task)

    def resolve_dimension(self, name: str) -> str:
        return self.local.resolve_dimension(name)

    def counts(
        self, task: str, start_ns: int, end_ns: int, *, by: Sequence[str] = (), where: Mapping[str, str] | None = None
    ) -> Mapping[tuple[str, ...], EventCounts]:
        return self.local.counts(task, start_ns, end_ns, by=by, where=where)

    def impact(
        self,
        task: str,
        start_ns: int,
        end_ns: int,
        *,
        by: Sequence[str] = (),
        where: Mapping[str, str] | None = None,
        window: str | None = None,
    ) -> ImpactReport:
        report = self.local.impact(task, start_ns, end_ns, by=by, where=where, window=window)
        telemetry = dataclasses.replace(report.telemetry, complete=False, reason=self.reason)
        return _lower_bounds(dataclasses.replace(report, telemetry=telemetry, estimates_are_lower_bounds=True))

    def top_customers(
        self, task: str, start_ns: int, end_ns: int, *, limit: int = 10, where: Mapping[str, str] | None = None
    ) -> TopCustomers:
        return self.local.top_customers(task, start_ns, end_ns, limit=limit, where=where)

    def telemetry_complete(self, task: str, at_ns: int) -> tuple[bool, str | None]:
        self.local.telemetry_complete(task, at_ns)
        return False, self.reason

    def window_completeness(self, task: str, start_ns: int, end_ns: int) -> Completeness:
        completeness = self.local.window_completeness(task, start_ns, end_ns)
        return dataclasses.replace(completeness, complete=False, reason=self.reason)


def _lower_bounds(report: ImpactReport) -> ImpactReport:
    """The report with every user estimate turned into a lower bound (no upper bound)."""
    segments = tuple(
        dataclasses.replace(
            segment,
            users=dataclasses.replace(segment.users, upper=None),
            impacted_users=dataclasses.replace(segment.impacted_users, upper=None),
        )
        for segment in report.segments
    )
    return dataclasses.replace(
        report,
        segments=segments,
        users=dataclasses.replace(report.users, upper=None),
        impacted_users=dataclasses.replace(report.impacted_users, upper=None),
    )
