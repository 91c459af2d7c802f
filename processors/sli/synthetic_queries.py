"""Answers about synthetic traffic: which queries answer a `Traffic`, and the summary of the
synthetic events that the real-user impact document carries.

The synthetic state (`SliState.synthetic`) is read through a `SliQueries` of its own, over the
synthetic engine (`SliEngine.synthetic`): every answer the real state gives (impact, counts,
top customers, completeness) exists for synthetic traffic too, from its own events only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .queries import SliQueries
from .synthetic import Traffic

__all__ = ["SyntheticSummary", "synthetic_queries", "synthetic_summary", "traffic_queries"]


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


def traffic_queries(real: SliQueries, synthetic: SliQueries | None, traffic: Traffic, task: str) -> SliQueries:
    """The queries that answer ``traffic`` for ``task``. A task known to the real state but with no
    synthetic event yet is made known to the synthetic state (its answers are then empty), so
    both traffics answer for the same tasks. Raises ``ValueError`` when synthetic traffic is asked
    of an engine without a synthetic state."""
    if traffic == "real":
        return real
    if synthetic is None:
        raise ValueError("traffic=synthetic: this processor keeps no synthetic state")
    if task not in synthetic.engine.tasks and task in real.engine.tasks:
        synthetic.engine.ensure_task(task)
    return synthetic


def synthetic_summary(synthetic: SliQueries | None, task: str, start_ns: int, end_ns: int) -> SyntheticSummary:
    """``task``'s synthetic events in ``[start_ns, end_ns)`` (none when the task has none)."""
    if synthetic is None or task not in synthetic.engine.tasks:
        return NO_EVENTS
    counts = synthetic.counts(task, start_ns, end_ns).get(())
    if counts is None:
        return NO_EVENTS
    return SyntheticSummary(counts.total, counts.good, counts.bad)
