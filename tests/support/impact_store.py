"""An in-memory, deterministic implementation of the SLO engine's `ImpactQueries` contract.

A unit-level stand-in for the SLI engine: tests feed it synthetic events per minute and
segment, and it answers `counts`, `impact` (a typed `ImpactReport`), `telemetry_complete`
and `window_completeness` exactly as the contract describes (bounds floored to the minute,
grouping by dimension names, ``unknown`` for a missing value, KeyError for an unknown task).
Distinct users are counted exactly; the optional ``user_error`` widens
the reported bounds around the exact count, as a sketch would.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_impact.processors.impact_queries import (
    NO_LATENCY,
    Accuracy,
    Attribution,
    Bounds,
    Completeness,
    EventCounts,
    EventTotals,
    ImpactReport,
    PipelineLag,
    SegmentImpact,
    Telemetry,
)

MINUTE_NS = 60 * 1_000_000_000


def _ceil_minute(ns: int) -> int:
    return -(-ns // MINUTE_NS) * MINUTE_NS


@dataclass
class _Bucket:
    total: int = 0
    bad: int = 0
    slow: dict[float, int] = field(default_factory=dict)  # events slower than each threshold
    users: set[str] = field(default_factory=set)
    impacted: set[str] = field(default_factory=set)
    revenue: float = 0.0


@dataclass
class _Task:
    dimensions: tuple[str, ...]
    thresholds: tuple[float, ...]
    segments: dict[tuple[str, ...], dict[int, _Bucket]] = field(default_factory=dict)
    minutes: dict[tuple[str, ...], list[int]] = field(default_factory=dict)
    complete: tuple[bool, str | None] = (True, None)
    lag: PipelineLag | None = None


class InMemoryImpactStore:
    """Synthetic events in, contract answers out. Not thread-safe; tests only."""

    def __init__(self, *, user_error: float = 0.0) -> None:
        self._tasks: dict[str, _Task] = {}
        self.user_error = user_error
        self.impact_calls: list[tuple[str, tuple[str, ...], dict[str, str] | None]] = []
        self.state_start_ns = 0
        """Since when the store holds every event (`set_state_start`); 0 covers every window."""

    # -- feeding ---------------------------------------------------------------------------------

    def declare(self, task: str, *, dimensions: Sequence[str] = ("tier",), thresholds: Sequence[float] = ()) -> None:
        self._tasks[task] = _Task(tuple(dimensions), tuple(sorted(thresholds)))

    def add(
        self,
        task: str,
        at_ns: int,
        *,
        good: int = 0,
        bad: int = 0,
        slow: int = 0,
        segment: Mapping[str, str] | None = None,
        users: Sequence[str] = (),
        impacted: Sequence[str] = (),
        revenue: float = 0.0,
    ) -> None:
        """Add ``good`` + ``bad`` events ending in the minute of ``at_ns``; ``slow`` of them are
        slower than every latency threshold. ``users`` were seen, ``impacted`` had a bad event,
        ``revenue`` was at stake in the failures."""
        state = self._tasks[task]
        key = tuple((segment or {}).get(name, "unknown") for name in state.dimensions)
        minute = at_ns // MINUTE_NS
        buckets = state.segments.setdefault(key, {})
        if minute not in buckets:
            buckets[minute] = _Bucket()
            bisect.insort(state.minutes.setdefault(key, []), minute)
        bucket = buckets[minute]
        bucket.total += good + bad
        bucket.bad += bad
        for threshold in state.thresholds:
            bucket.slow[threshold] = bucket.slow.get(threshold, 0) + slow
        bucket.users.update(users)
        bucket.users.update(impacted)
        bucket.impacted.update(impacted)
        bucket.revenue += revenue

    def traffic(
        self,
        task: str,
        start_ns: int,
        minutes: int,
        *,
        good: int,
        bad: int = 0,
        slow: int = 0,
        segment: Mapping[str, str] | None = None,
    ) -> None:
        """``good`` and ``bad`` events in each of ``minutes`` minutes from ``start_ns``."""
        for index in range(minutes):
            self.add(task, start_ns + index * MINUTE_NS, good=good, bad=bad, slow=slow, segment=segment)

    def set_telemetry(self, task: str, complete: bool, reason: str | None = None) -> None:
        self._tasks[task].complete = (complete, reason)

    def set_lag(self, task: str, lag: PipelineLag | None) -> None:
        """What the task's answers say of its pipeline lag (``telemetry.delayed`` and the rest)."""
        self._tasks[task].lag = lag

    def set_state_start(self, at_ns: int) -> None:
        """Make the store's state begin at ``at_ns``: a window starting before it is incomplete."""
        self.state_start_ns = at_ns

    # -- the contract ----------------------------------------------------------------------------

    def tasks(self) -> Sequence[str]:
        return sorted(self._tasks)

    def dimensions(self, task: str) -> Sequence[str]:
        return self._tasks[task].dimensions

    def latency_thresholds(self, task: str) -> Sequence[float]:
        return self._tasks[task].thresholds

    def _select(
        self, task: str, start_ns: int, end_ns: int, by: Sequence[str], where: Mapping[str, str] | None
    ) -> dict[tuple[str, ...], list[_Bucket]]:
        state = self._tasks[task]  # KeyError for an unknown task, as the contract says
        for name in [*by, *(where or {})]:
            if name not in state.dimensions:
                raise ValueError(f"unknown dimension {name!r}")
        first, last = start_ns // MINUTE_NS, end_ns // MINUTE_NS
        groups: dict[tuple[str, ...], list[_Bucket]] = {}
        for key, minutes in state.minutes.items():
            values = dict(zip(state.dimensions, key, strict=True))
            if any(values[name] != value for name, value in (where or {}).items()):
                continue
            low, high = bisect.bisect_left(minutes, first), bisect.bisect_left(minutes, last)
            if low == high:
                continue
            buckets = state.segments[key]
            group = groups.setdefault(tuple(values[name] for name in by), [])
            group.extend(buckets[minute] for minute in minutes[low:high])
        return groups

    def counts(
        self,
        task: str,
        start_ns: int,
        end_ns: int,
        *,
        by: Sequence[str] = (),
        where: Mapping[str, str] | None = None,
    ) -> Mapping[tuple[str, ...], EventCounts]:
        thresholds = self._tasks[task].thresholds
        answer = {}
        for key, buckets in self._select(task, start_ns, end_ns, by, where).items():
            total = sum(b.total for b in buckets)
            bad = sum(b.bad for b in buckets)
            met = {t: total - sum(b.slow.get(t, 0) for b in buckets) for t in thresholds}
            answer[key] = EventCounts(total=total, good=total - bad, bad=bad, latency_met=met)
        return answer

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
        self.impact_calls.append((task, tuple(by), dict(where) if where else None))
        groups = self._select(task, start_ns, end_ns, by, where)
        everything = [bucket for buckets in groups.values() for bucket in buckets]
        completeness = self.window_completeness(task, start_ns, end_ns)
        complete, reason = completeness.complete, completeness.reason
        return ImpactReport(
            **self._summary(everything),
            task=task,
            window=window or f"{(end_ns - start_ns) // MINUTE_NS}m",
            start_ns=start_ns,
            end_ns=end_ns,
            telemetry=Telemetry(complete, reason, lag=completeness.lag),
            estimates_are_lower_bounds=not complete,
            overflow_events=0,
            accuracy=Accuracy("exact", 0.0, 0.0, start_ns),
            dimensions=tuple(by),
            where=dict(where or {}),
            segments=tuple(
                SegmentImpact(**self._summary(buckets), segment=dict(zip(by, key, strict=True)))
                for key, buckets in sorted(groups.items())
            ),
        )

    def resolve_dimension(self, name: str) -> str:
        for task in self._tasks.values():
            if name in task.dimensions:
                return name
        raise ValueError(f"unknown dimension {name!r}")

    def telemetry_complete(self, task: str, at_ns: int) -> tuple[bool, str | None]:
        return self._tasks[task].complete

    def window_completeness(self, task: str, start_ns: int, end_ns: int) -> Completeness:
        """The telemetry set by `set_telemetry`, and whether the window starts before `set_state_start`."""
        volume_ok, loss = self._tasks[task].complete
        start, end = _ceil_minute(start_ns), _ceil_minute(end_ns)
        covered_from = self.state_start_ns
        covers = start >= covered_from - covered_from % MINUTE_NS
        observed = max(0, end - max(start, covered_from)) / 1e9
        reason = loss
        if reason is None and not covers:
            reason = f"the processor's state covers only the last {observed:g}s of this window"
        return Completeness(
            volume_ok and covers,
            reason,
            start,
            end,
            covered_from,
            observed,
            covers,
            not volume_ok,
            loss,
            self._tasks[task].lag,
        )

    def _summary(self, buckets: Sequence[_Bucket]) -> dict[str, Any]:
        total = sum(b.total for b in buckets)
        bad = sum(b.bad for b in buckets)
        users: set[str] = set().union(*(b.users for b in buckets)) if buckets else set()
        impacted: set[str] = set().union(*(b.impacted for b in buckets)) if buckets else set()
        return {
            "events": EventTotals(total, total - bad, bad),
            "success_ratio": (total - bad) / total if total else None,
            "users": self._bounds(len(users)),
            "impacted_users": self._bounds(len(impacted)),
            "revenue_at_risk": sum(b.revenue for b in buckets),
            "latency_ms": NO_LATENCY,
            "latency_met": {},
            "attribution": Attribution(total, 0, 0),
        }

    def _bounds(self, exact: int) -> Bounds:
        return Bounds(
            float(exact),
            float(math.floor(exact * (1 - self.user_error))),
            float(math.ceil(exact * (1 + self.user_error))),
        )
