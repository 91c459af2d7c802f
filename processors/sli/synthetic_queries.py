"""Answers about synthetic traffic: the queries over the synthetic state, and the summary of the
synthetic events that the real-user impact document carries.

The synthetic state (`SliState.synthetic`) is read through a `SliQueries` of its own, over the
synthetic engine (`SliEngine.synthetic`): every answer the real state gives (impact, counts,
top customers, completeness) exists for synthetic traffic too, from its own events only.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_impact.processors.impact_queries import EventCounts

from .queries import SliQueries

__all__ = ["NO_EVENTS", "SyntheticSummary", "summary_of", "synthetic_queries", "synthetic_summary"]


@dataclass(frozen=True)
class SyntheticSummary:
    """Synthetic task events of one task in one window (the ``synthetic`` part of the impact document)."""

    total: int
    good: int
    bad: int

    @property
    def success_ratio(self) -> float | None:
        """Good events out of all; ``None`` without events."""
        return self.good / self.total if self.total else None


NO_EVENTS = SyntheticSummary(0, 0, 0)


def synthetic_queries(queries: SliQueries) -> SliQueries | None:
    """Queries over the synthetic state of ``queries``' engine; ``None`` when it has none."""
    engine = queries.engine.synthetic
    return None if engine is None else SliQueries(engine)


def synthetic_summary(synthetic: SliQueries | None, task: str, start_ns: int, end_ns: int) -> SyntheticSummary:
    """``task``'s synthetic events in ``[start_ns, end_ns)`` (none when the task has none)."""
    if synthetic is None or task not in synthetic.engine.tasks:
        return NO_EVENTS
    return summary_of(synthetic.counts(task, start_ns, end_ns).get(()))


def summary_of(counts: EventCounts | None) -> SyntheticSummary:
    """The summary of a task's synthetic ``counts`` (``None``: none)."""
    return NO_EVENTS if counts is None else SyntheticSummary(counts.total, counts.good, counts.bad)
