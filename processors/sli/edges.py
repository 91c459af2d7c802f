"""Service edges that lose the customer: per-minute counts kept for ``GET /api/v1/attribution``.

The analyzers' `EdgeTracker` (``sli.propagation``) count, per (task, caller service, callee
service) and minute of arrival, the calls whose parent span carried the customer, split by
whether the callee's first span still carried it. `EdgeHistory` keeps those counts for
`EDGE_HISTORY_S` and answers the edges of a task over a window, worst coverage first, plus the
counts since the processor started for ``/metrics``.

Bounded: at most `MAX_EDGES` (task, caller, callee) keys; the counts of later edges are only
added to `overflow` (children not attributed to an edge). Like attribution by service, the
history lives in memory: it is not checkpointed and each replica answers for its own spans.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from otel_impact.processors.durations import MINUTE_NS

from .minutes import forget_before
from .propagation import EdgeReport

__all__ = ["EDGE_HISTORY_S", "MAX_EDGES", "Edge", "EdgeHistory", "EdgeKey"]

EDGE_HISTORY_S: Final = 6 * 3600
"""How long per-minute edge counts are kept: answers cover at most the last 6 hours of a window."""
MAX_EDGES: Final = 1024

EdgeKey = tuple[str, str, str]
"""(task, caller service, callee service)."""


@dataclass(frozen=True)
class Edge:
    """One caller → callee edge of a task over a window: children of a parent that carried the
    customer, with and without it."""

    caller: str
    callee: str
    children_with_customer: int
    children_without_customer: int

    @property
    def coverage(self) -> float | None:
        """The share of children that kept the customer, 0 to 1 (``None`` without children)."""
        total = self.children_with_customer + self.children_without_customer
        return None if not total else round(self.children_with_customer / total, 6)


class EdgeHistory:
    """Edge counts per (task, caller, callee) and minute of arrival (see the module docstring)."""

    def __init__(self) -> None:
        self._minutes: dict[EdgeKey, dict[int, list[int]]] = {}
        self.totals: dict[EdgeKey, list[int]] = {}
        """Children with and without the customer per edge since the process started."""
        self.overflow = 0
        """Children of edges beyond `MAX_EDGES`, not counted under any edge."""
        self.unresolved = 0
        """Children whose parent never arrived in time (see `EdgeReport`), since the process started."""
        self.dropped_early = 0
        """Span ids the analyzers forgot early because their map was full, since the process started."""

    def add_all(self, report: EdgeReport, tasks: Mapping[str, object]) -> None:
        """Add an analysis result's edge report, the counts for the tasks in ``tasks`` only."""
        self.unresolved += report.unresolved
        self.dropped_early += report.dropped_early
        for (task, caller, callee, minute), (with_customer, without) in report.counts.items():
            if task in tasks:
                self.add((task, caller, callee), minute, with_customer, without)

    def add(self, key: EdgeKey, minute: int, with_customer: int, without: int) -> None:
        """Count children of ``key`` that arrived in ``minute``."""
        minutes = self._minutes.get(key)
        if minutes is None:
            if len(self._minutes) >= MAX_EDGES:
                self.overflow += with_customer + without
                return
            minutes = self._minutes[key] = {}
        held = minutes.get(minute)
        if held is None:
            minutes[minute] = [with_customer, without]
        else:
            held[0] += with_customer
            held[1] += without
        total = self.totals.get(key)
        if total is None:
            total = self.totals[key] = [0, 0]
        total[0] += with_customer
        total[1] += without

    def edges(self, task: str, start_ns: int, end_ns: int) -> list[Edge]:
        """``task``'s edges with children that arrived in ``[start_ns, end_ns)``, worst coverage
        first (then most children without the customer)."""
        first, last = start_ns // MINUTE_NS, (end_ns - 1) // MINUTE_NS
        found = []
        for (each, caller, callee), minutes in list(self._minutes.items()):  # a copy: see LagHistory
            if each != task:
                continue
            with_customer = without = 0
            for minute, (w, wo) in list(minutes.items()):
                if first <= minute <= last:
                    with_customer += w
                    without += wo
            if with_customer or without:
                found.append(Edge(caller, callee, with_customer, without))
        found.sort(key=lambda edge: (edge.coverage or 0.0, -edge.children_without_customer))
        return found

    def prune(self, now_ns: int) -> None:
        """Forget minutes older than `EDGE_HISTORY_S`, and edges left with none (their totals stay
        while the edge count allows)."""
        forget_before(self._minutes, now_ns, EDGE_HISTORY_S)
        if len(self.totals) > MAX_EDGES:  # keep the exposed label sets bounded
            for key in [k for k in self.totals if k not in self._minutes]:
                del self.totals[key]

    def __iter__(self) -> Iterator[EdgeKey]:
        return iter(list(self._minutes))
