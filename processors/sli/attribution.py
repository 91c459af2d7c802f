"""Where task events lose their customer: attribution counts by service and route or RPC.

The analyzer counts, per (task, service, route, minute of arrival), the task events with and
without a customer and the bad ones without; `AttributionHistory` keeps them for
`ATTRIBUTION_HISTORY_S` and answers ``GET /api/v1/attribution``: the breakdown worst first, so
the service or route that drops the customer (an uninstrumented hop, a service that does not
pass baggage on) comes first. The route is the span's ``http.route``, else its ``rpc.method``,
else empty.

Bounded: at most `MAX_ATTRIBUTION_KEYS` (task, service, route) keys; later keys count under the
route `OTHER_ROUTE` of their service (and under `OTHER_SERVICE`'s when services are too many).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from otel_impact.processors.durations import MINUTE_NS
from otel_impact.processors.impact_queries import Attribution

from .minutes import forget_before

__all__ = [
    "ATTRIBUTION_HISTORY_S",
    "MAX_ATTRIBUTION_KEYS",
    "AttributionHistory",
    "AttributionRow",
    "Counts",
]

ATTRIBUTION_HISTORY_S: Final = 6 * 3600
"""How long per-minute counts are kept: the breakdown covers at most the last 6 hours of a window."""
MAX_ATTRIBUTION_KEYS: Final = 2048
OTHER_ROUTE: Final = "_other"
OTHER_SERVICE: Final = "_other"

Counts = tuple[int, int, int]
"""Events with a customer, events without one, bad events without one."""
AttributionKey = tuple[str, str, str]
"""(task, service, route)."""


@dataclass(frozen=True)
class AttributionRow:
    """One service and route of a task, with its attribution over a window."""

    service: str
    route: str
    attribution: Attribution


class AttributionHistory:
    """Attribution counts per (task, service, route) and minute of arrival (see the module docstring)."""

    def __init__(self) -> None:
        self._minutes: dict[AttributionKey, dict[int, list[int]]] = {}

    def add(self, key: AttributionKey, minute: int, counts: Counts) -> None:
        """Count ``counts`` for ``key``'s task events that arrived in ``minute``."""
        minutes = self._minutes.get(key)
        if minutes is None:
            key = self._room_for(key)
            minutes = self._minutes.setdefault(key, {})
        held = minutes.get(minute)
        if held is None:
            minutes[minute] = list(counts)
        else:
            for index, count in enumerate(counts):
                held[index] += count

    def _room_for(self, key: AttributionKey) -> AttributionKey:
        if len(self._minutes) < MAX_ATTRIBUTION_KEYS:
            return key
        task, service, _ = key
        folded = (task, service, OTHER_ROUTE)
        if folded in self._minutes:
            return folded
        return (task, OTHER_SERVICE, OTHER_ROUTE)

    def rows(self, task: str, start_ns: int, end_ns: int) -> list[AttributionRow]:
        """``task``'s services and routes with events that arrived in ``[start_ns, end_ns)``,
        worst coverage first (then most events without a customer)."""
        first, last = start_ns // MINUTE_NS, (end_ns - 1) // MINUTE_NS
        rows = []
        for (each, service, route), minutes in list(self._minutes.items()):  # a copy: see LagHistory
            if each != task:
                continue
            total = [0, 0, 0]
            for minute, counts in list(minutes.items()):
                if first <= minute <= last:
                    for index, count in enumerate(counts):
                        total[index] += count
            if total[0] or total[1]:
                rows.append(AttributionRow(service, route, Attribution(*total)))
        rows.sort(key=lambda row: (row.attribution.coverage or 0.0, -row.attribution.events_without_customer))
        return rows

    def prune(self, now_ns: int) -> None:
        """Forget minutes older than `ATTRIBUTION_HISTORY_S`, and keys left with none."""
        forget_before(self._minutes, now_ns, ATTRIBUTION_HISTORY_S)

    def __iter__(self) -> Iterator[AttributionKey]:
        return iter(list(self._minutes))
