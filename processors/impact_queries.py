"""The read side of the SLI engine, as its consumers see it: `ImpactQueries` and its answers.

The SLI engine (``processors.sli``) implements `ImpactQueries`; the SLO engine, the canary gate,
the postmortem and the dashboard depend on nothing else of it. Every assumption they make about
the answers is written here, so a second implementation (the in-memory one some tests use) can
be checked against the same text.

The answers are frozen dataclasses (`EventCounts`, `ImpactReport` with its `SegmentImpact` rows
and `Bounds`), never JSON documents: a reader in the same process gets typed values and need not
re-validate them. Only the HTTP layer (``processors.api``) turns them into JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "NO_ATTRIBUTION",
    "NO_LATENCY",
    "Accuracy",
    "AnswerUnavailable",
    "Attribution",
    "Bounds",
    "Completeness",
    "CustomerBadEvents",
    "EventCounts",
    "EventTotals",
    "ImpactFigures",
    "ImpactQueries",
    "ImpactReport",
    "LatencyQuantiles",
    "PipelineLag",
    "SegmentImpact",
    "Telemetry",
    "TopCustomers",
]


class AnswerUnavailable(Exception):
    """No source can answer now (e.g. the shared state is unreachable and nothing else can
    stand in); the message says why, for people, without credentials."""


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


@dataclass(frozen=True)
class Bounds:
    """An estimate with its lower and upper bounds; ``upper`` is ``None`` when unbounded.

    ``upper`` is ``None`` when telemetry is incomplete: the estimate and ``lower`` are then lower
    bounds, never a sign of health.
    """

    estimate: float
    lower: float
    upper: float | None

    def whole(self, *, lower_bound_only: bool = False) -> Bounds:
        """These bounds rounded to whole numbers (users are counted in whole people), with no
        upper bound when ``lower_bound_only``."""
        upper = None if lower_bound_only or self.upper is None else round(self.upper)
        return Bounds(round(self.estimate), round(self.lower), upper)

    def describe(self) -> str:
        """``12 (10-14)``, or ``at least 10 (estimate 12)`` without an upper bound."""
        if self.upper is None:
            return f"at least {self.lower:.0f} (estimate {self.estimate:.0f})"
        return f"{self.estimate:.0f} ({self.lower:.0f}-{self.upper:.0f})"


@dataclass(frozen=True)
class EventTotals:
    """All events, the good ones and the bad ones (``good + bad == total``)."""

    total: int
    good: int
    bad: int


@dataclass(frozen=True)
class LatencyQuantiles:
    """Latency quantiles in milliseconds; ``None`` when no duration was seen."""

    p50: float | None
    p95: float | None
    p99: float | None


NO_LATENCY = LatencyQuantiles(None, None, None)


@dataclass(frozen=True)
class Attribution:
    """How many task events carry the customer (``impact.customer.hash``), and how many bad ones
    do not: a bad event without a customer is an impacted user nobody can count, so the
    impacted-user figure is then a lower bound (its ``upper`` is ``None``)."""

    events_with_customer: int
    events_without_customer: int
    bad_events_without_customer: int

    @property
    def coverage(self) -> float | None:
        """The share of events whose customer is known, 0 to 1 (``None`` without events)."""
        total = self.events_with_customer + self.events_without_customer
        return None if not total else round(self.events_with_customer / total, 6)


NO_ATTRIBUTION = Attribution(0, 0, 0)


@dataclass(frozen=True)
class ImpactFigures:
    """What failed, for whom and at what cost, over one window (a whole task or one segment).

    ``success_ratio`` is ``good / total`` (``None`` without events); ``users`` are the distinct
    users seen and ``impacted_users`` those with at least one bad event; ``revenue_at_risk`` is
    the value at stake in the bad events; ``latency_met`` maps each counted latency threshold in
    seconds to the events at most that slow.
    """

    events: EventTotals
    success_ratio: float | None
    users: Bounds
    impacted_users: Bounds
    revenue_at_risk: float
    latency_ms: LatencyQuantiles
    latency_met: Mapping[float, int]
    attribution: Attribution


@dataclass(frozen=True)
class SegmentImpact(ImpactFigures):
    """The figures of one segment: ``segment`` maps each grouping dimension to its value."""

    segment: Mapping[str, str]


@dataclass(frozen=True)
class PipelineLag:
    """How late the task's spans reach the processor (arrival time minus span end).

    ``p50_s`` / ``p99_s`` are over the spans that arrived in the window (within the last 6 hours
    kept; ``None`` when none did). ``delayed`` is true while the p99 over the last 5 minutes of
    arrivals exceeds ``sli.delay_threshold``: the freshest minutes are still filling in, so
    recent figures will grow; ``reason`` then says by how much.
    """

    p50_s: float | None
    p99_s: float | None
    delayed: bool = False
    reason: str | None = None
    recent_p99_s: float | None = None


@dataclass(frozen=True)
class Telemetry:
    """Whether the task's span volume looked whole for the window, and if not, why.

    ``late_clamped_events`` / ``future_clamped_events`` count events whose end time lay outside
    the accepted lateness and was clamped to the edge.
    """

    complete: bool
    reason: str | None
    late_clamped_events: int = 0
    future_clamped_events: int = 0
    lag: PipelineLag | None = None
    """How late the spans arrive, when the source measures it."""


@dataclass(frozen=True)
class Completeness:
    """Whether the data of one task's window ``[start_ns, end_ns)`` is whole, and if not, why.

    This is the one answer to "is this window complete?": the impact report's ``telemetry``, the
    SLO snapshot, the canary gate, the dashboard and the postmortem all read it and none decides
    on its own. A window is incomplete when:

    * the processor's state is younger than the window (``state_covers_window`` is false): events
      before ``covered_from_ns`` were never counted;
    * or the task's span volume dropped at the window's end (``telemetry_lost``; ``loss`` says
      how): spans may be lost.

    ``reason`` is ``None`` when complete, else one sentence for people (the loss first when both
    hold). ``observed_seconds`` is how much of the window the state has seen up to now (from
    ``max(start, covered_from)`` to ``min(end, now)``): a budget over an incomplete window is
    over those seconds only. ``start_ns`` and ``end_ns`` are the window as answered (rounded up
    to the minute, like every query).
    """

    complete: bool
    reason: str | None
    start_ns: int
    end_ns: int
    covered_from_ns: int
    observed_seconds: float
    state_covers_window: bool = True
    telemetry_lost: bool = False
    loss: str | None = None
    lag: PipelineLag | None = None
    """How late the task's spans arrive (not part of ``complete``: late data is data still coming)."""


@dataclass(frozen=True)
class Accuracy:
    """How exact the estimates are: the bounds' confidence, the sketches' stated errors, and the
    start of the oldest sketch bucket merged (a window may be widened to its bucket edge)."""

    users_bounds: str
    users_relative_error: float
    latency_rank_error: float
    sketch_window_start_ns: int
    latency_relative_error: float | None = None
    """Set when quantiles come from log-spaced buckets (the shared state): their largest relative error."""
    source: str = "this processor"
    """Whose spans the answer covers: ``this processor`` or ``shared state`` (every replica)."""


@dataclass(frozen=True)
class ImpactReport(ImpactFigures):
    """The impact of one task over ``[start_ns, end_ns)``: the figures of the whole window, then
    of each segment (grouped by ``dimensions``, filtered by ``where``), worst first.

    ``window`` is the window's name as asked (``15m``) or derived from its length.
    ``estimates_are_lower_bounds`` is true when telemetry is incomplete (every ``upper`` is then
    ``None``); ``overflow_events`` counts events folded into the overflow series because a
    dimension had too many values.
    """

    task: str
    window: str
    start_ns: int
    end_ns: int
    telemetry: Telemetry
    estimates_are_lower_bounds: bool
    overflow_events: int
    accuracy: Accuracy
    dimensions: Sequence[str]
    where: Mapping[str, str]
    segments: Sequence[SegmentImpact]


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
    window up to an extra hour. An unknown task raises ``KeyError``; an unknown dimension or a
    bad window raises ``ValueError``.

    ``impact`` returns the `ImpactReport` of that window (the answer of ``GET /api/v1/impact``):
    segments are grouped by ``by`` (default: every dimension) and ``window`` names the window in
    the report (default: derived from its length). When telemetry is incomplete every ``upper``
    bound is ``None`` and the estimates are lower bounds.

    ``resolve_dimension`` maps what a user typed (a dimension's name, ``flag:<key>`` or the
    attribute it reads) to the dimension's name; ``ValueError`` naming the configured dimensions
    if none matches.

    ``telemetry_complete`` says whether the task's span volume looks complete at ``at_ns``, and
    if not, why: estimates are then lower bounds, never a sign of health.

    ``window_completeness`` is the one decision on whether the window ``[start_ns, end_ns)`` of a
    task is complete (the processor's state covers it and no telemetry loss is detected), as a
    `Completeness` with the reason. ``impact`` reports it as its ``telemetry``; every other reader
    (SLOs, the gate, the dashboard, the postmortem) asks it rather than deciding on its own.
    Windows are rounded as for ``counts``; an unknown task raises ``KeyError``.
    """

    def tasks(self) -> Sequence[str]: ...

    def dimensions(self, task: str) -> Sequence[str]: ...

    def latency_thresholds(self, task: str) -> Sequence[float]: ...

    def resolve_dimension(self, name: str) -> str: ...

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
        window: str | None = None,
    ) -> ImpactReport: ...

    def telemetry_complete(self, task: str, at_ns: int) -> tuple[bool, str | None]: ...

    def window_completeness(self, task: str, start_ns: int, end_ns: int) -> Completeness: ...


@dataclass(frozen=True)
class CustomerBadEvents:
    """One impacted customer (a pseudonym) with its bad events: an estimate and its bounds."""

    customer: str
    bad_events: int
    lower: int
    upper: int


@dataclass(frozen=True)
class TopCustomers:
    """The most impacted customers of a task over ``[start_ns, end_ns)``, heaviest first.

    ``max_error`` bounds the error of any count; ``impacted_users`` are all the distinct users
    with a bad event in the window (whole numbers).
    """

    task: str
    start_ns: int
    end_ns: int
    customers: tuple[CustomerBadEvents, ...]
    max_error: int
    impacted_users: Bounds
