"""Answers over windows of the SLI engine's state: the query contract the SLO engine builds on.

`SliQueries` implements `ImpactQueries`. Windows are ``[start_ns, end_ns)`` with both bounds
rounded up to the minute, so the newest, still-filling minute is included; any window from 5
minutes to 35 days is answered from the rolled-up buckets (exact to the minute while the start
lies in the first tier, else widened to the start's bucket edge; see `buckets`). Counts are
exact. Distinct users are HyperLogLog estimates with bounds at 2 standard deviations; latency
quantiles come from a KLL sketch whose normalized rank error is stated in every answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

import numpy as np

from otel_impact.processors.durations import (
    MAX_WINDOW_S,
    MINUTE_NS,
    SECOND_NS,
    ceil_minute,
    floor_minute,
    format_duration,
)
from otel_impact.processors.impact_queries import (
    Accuracy,
    Attribution,
    Completeness,
    CustomerBadEvents,
    EventCounts,
    EventTotals,
    ImpactQueries,
    ImpactReport,
    LatencyQuantiles,
    PipelineLag,
    SegmentImpact,
    Telemetry,
    TopCustomers,
)

from .aggregates import (
    COL_BAD,
    COL_BAD_NO_CUSTOMER,
    COL_NO_CUSTOMER,
    COL_REVENUE,
    COL_TOTAL,
    FIRST_THRESHOLD_COL,
    Series,
    row_width,
)
from .attribution import AttributionRow
from .config_entries import LossDetectionConfig
from .edges import Edge
from .engine import SliEngine
from .sketches import BOUND_STD_DEVS, SketchMerger
from .tasks import TaskState

__all__ = [
    "CustomerBadEvents",
    "EventCounts",
    "ImpactQueries",
    "SliQueries",
    "TopCustomers",
    "completeness_of",
    "event_counts",
    "query_window",
    "volume_check",
]

QUANTILES = (0.5, 0.95, 0.99)


class SliQueries:
    """Read-only answers over a `SliEngine` (same thread as the engine: the event loop)."""

    def __init__(self, engine: SliEngine) -> None:
        self.engine = engine

    # -- the contract ---------------------------------------------------------------------------

    def tasks(self) -> Sequence[str]:
        return sorted(self.engine.tasks)

    def dimensions(self, task: str) -> Sequence[str]:
        self._task(task)
        return self.engine.reader.names

    def latency_thresholds(self, task: str) -> Sequence[float]:
        return self._task(task).thresholds_s

    def counts(
        self, task: str, start_ns: int, end_ns: int, *, by: Sequence[str] = (), where: Mapping[str, str] | None = None
    ) -> Mapping[tuple[str, ...], EventCounts]:
        """Events with end time in ``[start_ns, end_ns)`` grouped by ``by``. Unknown task: KeyError."""
        state = self._task(task)
        start, end = query_window(start_ns, end_ns)
        groups = self._groups(state, by, where)
        rows: dict[tuple[str, ...], np.ndarray] = {}
        if not by:
            rows[()] = np.zeros(row_width(len(state.thresholds_s)))
        for key, members in groups.items():
            for series in members:
                row = series.counts.sum(start, end)
                if key in rows:
                    rows[key] += row
                else:
                    rows[key] = row
        return {key: event_counts(row, state.thresholds_s) for key, row in rows.items()}

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
        """The `ImpactReport` of ``[start_ns, end_ns)`` (the answer of ``GET /api/v1/impact``).

        Segments are grouped by ``by`` (default: every dimension) and sorted by bad events.
        """
        state = self._task(task)
        start, end = query_window(start_ns, end_ns)
        names = self.engine.reader.names
        group_by = tuple(self.resolve_dimension(name) for name in by) if by else names
        completeness = self.window_completeness(task, start, end)
        complete, reason = completeness.complete, completeness.reason
        lower_only = not complete
        everything = _Accumulator(self.engine, state)
        segments: list[SegmentImpact] = []
        for key, members in self._groups(state, group_by, where).items():
            group = _Accumulator(self.engine, state)
            for series in members:
                group.add(series, start, end)
                everything.add(series, start, end)
            if group.row[COL_TOTAL] or group.sketch_cells:
                segments.append(
                    SegmentImpact(**group.figures(lower_only), segment=dict(zip(group_by, key, strict=True)))
                )
        segments.sort(key=lambda s: (-s.events.bad, -s.events.total, sorted(s.segment.items())))
        params = self.engine.sketch_params
        return ImpactReport(
            **everything.figures(lower_only),
            task=task,
            window=window or format_duration((end - start) // SECOND_NS),
            start_ns=start,
            end_ns=end,
            telemetry=Telemetry(complete, reason, state.late_clamped, state.future_clamped, completeness.lag),
            estimates_are_lower_bounds=lower_only,
            overflow_events=state.overflow_events,
            accuracy=Accuracy(
                users_bounds=f"{BOUND_STD_DEVS} standard deviations (about 95%)",
                users_relative_error=round(params.hll_relative_error, 5),
                latency_rank_error=round(params.kll_rank_error, 5),
                sketch_window_start_ns=min(everything.sketch_start, start),
            ),
            dimensions=tuple(group_by),
            where=dict(where or {}),
            segments=tuple(segments),
        )

    def telemetry_complete(self, task: str, at_ns: int) -> tuple[bool, str | None]:
        """Whether the task's event volume looks whole at ``at_ns`` (see `volume_check`)."""
        state = self._task(task)
        loss = self.engine.config.loss_detection
        _, volume_loss = volume_check(task, state.volume, loss, at_ns)
        unanalysed = unanalysed_reason(self.engine.state.unanalysed_in(at_ns - loss.window_s * SECOND_NS, at_ns))
        reason = joined_reasons(volume_loss, unanalysed)
        return reason is None, reason

    def window_completeness(self, task: str, start_ns: int, end_ns: int) -> Completeness:
        """Whether ``[start_ns, end_ns)`` of ``task`` is complete: the one decision every reader
        uses (see `completeness_of`)."""
        state = self._task(task)
        start, end = query_window(start_ns, end_ns)
        _, volume_loss = volume_check(task, state.volume, self.engine.config.loss_detection, end)
        loss = joined_reasons(volume_loss, unanalysed_reason(self.engine.state.unanalysed_in(start, end)))
        completeness = completeness_of(start, end, self.engine.coverage_start_ns, self.engine.clock.now_ns(), loss)
        return replace(completeness, lag=self.pipeline_lag(task, start, end))

    def attribution_rows(self, task: str, start_ns: int, end_ns: int) -> list[AttributionRow]:
        """``task``'s services and routes over the spans that arrived in ``[start_ns, end_ns)``,
        worst attribution coverage first (see ``sli.attribution``)."""
        self._task(task)
        start, end = query_window(start_ns, end_ns)
        return self.engine.state.attribution.rows(task, start, end)

    def edges(self, task: str, start_ns: int, end_ns: int) -> list[Edge]:
        """``task``'s service edges over the calls that arrived in ``[start_ns, end_ns)``, worst
        coverage of the customer first (see ``sli.propagation``)."""
        self._task(task)
        start, end = query_window(start_ns, end_ns)
        return self.engine.state.edges.edges(task, start, end)

    def pipeline_lag(self, task: str, start_ns: int, end_ns: int) -> PipelineLag:
        """How late ``task``'s spans arrived in ``[start_ns, end_ns)``, and whether they arrive late now."""
        self._task(task)
        engine = self.engine
        lag = engine.state.lag
        window = lag.quantiles(task, start_ns, end_ns)
        now = engine.clock.now_ns()
        recent = lag.quantiles(task, now - DELAY_WINDOW_S * SECOND_NS, now + MINUTE_NS)
        threshold = engine.config.delay_threshold_s
        delayed = recent.p99_s is not None and recent.p99_s > threshold
        reason = (
            f"spans of task {task!r} arrive late: the p99 lag of the last {format_duration(DELAY_WINDOW_S)} is "
            f"{recent.p99_s:g}s (sli.delay_threshold {threshold:g}s), so the latest minutes are still filling in"
            if delayed
            else None
        )
        return PipelineLag(window.p50_s, window.p99_s, delayed, reason, recent.p99_s)

    # -- beyond the contract --------------------------------------------------------------------

    def top_customers(
        self, task: str, start_ns: int, end_ns: int, *, limit: int = 10, where: Mapping[str, str] | None = None
    ) -> TopCustomers:
        """The most impacted customers (pseudonyms) by bad events, from the heavy-hitters sketch."""
        state = self._task(task)
        start, end = query_window(start_ns, end_ns)
        merger = SketchMerger(self.engine.sketch_params)
        for members in self._groups(state, (), where).values():
            for series in members:
                for _, cell in series.sketches.overlapping(start, end):
                    merger.add(cell)
        return TopCustomers(
            task=task,
            start_ns=start,
            end_ns=end,
            customers=tuple(
                CustomerBadEvents(key, estimate, lower, upper) for key, estimate, lower, upper in merger.top(limit)
            ),
            max_error=merger.top_error_bound,
            impacted_users=merger.impacted().whole(),
        )

    def resolve_dimension(self, name: str) -> str:
        """A dimension's name from what a user typed (its name or ``flag:<key>``); ValueError if none."""
        resolved = self.engine.reader.aliases().get(name)
        if resolved is None:
            known = ", ".join(self.engine.reader.names) or "none"
            raise ValueError(f"unknown dimension {name!r}; configured dimensions: {known}")
        return resolved

    # -- helpers --------------------------------------------------------------------------------

    def _task(self, task: str) -> TaskState:
        state = self.engine.tasks.get(task)
        if state is None:
            raise KeyError(task)
        return state

    def _groups(
        self, state: TaskState, by: Sequence[str], where: Mapping[str, str] | None
    ) -> dict[tuple[str, ...], list[Series]]:
        names = self.engine.reader.names
        by_index = [names.index(self.resolve_dimension(name)) for name in by]
        filters = [(names.index(self.resolve_dimension(name)), value) for name, value in (where or {}).items()]
        groups: dict[tuple[str, ...], list[Series]] = {}
        for series in self.engine.all_series(state):
            if any(series.values[index] != value for index, value in filters):
                continue
            key = tuple(series.values[index] for index in by_index)
            groups.setdefault(key, []).append(series)
        return groups


class _Accumulator:
    """Counts and merged sketches of some series over one window."""

    def __init__(self, engine: SliEngine, state: TaskState) -> None:
        self.state = state
        self.row = np.zeros(row_width(len(state.thresholds_s)))
        self.merger = SketchMerger(engine.sketch_params)
        self.sketch_cells = 0
        self.sketch_start = 2**63

    def add(self, series: Series, start: int, end: int) -> None:
        self.row += series.counts.sum(start, end)
        for bucket_start, cell in series.sketches.overlapping(start, end):
            self.merger.add(cell)
            self.sketch_cells += 1
            self.sketch_start = min(self.sketch_start, bucket_start)

    def figures(self, lower_only: bool) -> dict[str, Any]:
        """The `ImpactFigures` fields of what was added (keyword arguments for a report or a segment)."""
        counts = event_counts(self.row, self.state.thresholds_s)
        p50, p95, p99 = self.merger.quantiles_ms(QUANTILES)
        attribution = attribution_of(self.row)
        return {
            "events": EventTotals(counts.total, counts.good, counts.bad),
            "success_ratio": None if not counts.total else round(counts.good / counts.total, 6),
            "users": self.merger.users().whole(lower_bound_only=lower_only),
            "impacted_users": self.merger.impacted().whole(
                lower_bound_only=lower_only or attribution.bad_events_without_customer > 0
            ),
            "revenue_at_risk": round(float(self.row[COL_REVENUE]), 2),
            "latency_ms": LatencyQuantiles(_ms(p50), _ms(p95), _ms(p99)),
            "latency_met": dict(counts.latency_met),
            "attribution": attribution,
        }


def volume_check(
    task: str, volume: Mapping[int, int], loss: LossDetectionConfig, at_ns: int
) -> tuple[bool, str | None]:
    """Whether a task's per-minute event ``volume`` looks whole at ``at_ns``: a sudden drop means
    telemetry was lost upstream.

    Compares the events of the last ``window`` (whole minutes before ``at_ns``) with their
    average per window over the trailing ``baseline``.
    """
    minute = at_ns // MINUTE_NS
    window = loss.window_s // 60
    baseline = loss.baseline_s // 60
    recent = sum(volume.get(m, 0) for m in range(minute - window, minute))
    history = sum(volume.get(m, 0) for m in range(minute - window - baseline, minute - window))
    expected = history * window / baseline
    if expected >= loss.min_baseline_events and recent < loss.drop_ratio * expected:
        percent = 100.0 * recent / expected
        return False, (
            f"span volume for task {task!r} fell to {percent:.0f}% of its trailing "
            f"{format_duration(loss.baseline_s)} baseline ({recent} events in the last "
            f"{format_duration(loss.window_s)}, {expected:.0f} expected): telemetry may be lost, "
            "so impact figures are lower bounds"
        )
    return True, None


DELAY_WINDOW_S: Final = 300
"""``telemetry.delayed`` looks at the p99 lag of the spans that arrived over this many seconds."""

UNANALYSED_CAUSES: Final = {
    "buffer_full": "analysis fell behind and its buffer was full",
    "worker_restart": "an analysis worker was restarting",
    "unparseable": "analysis could not parse them",
}


def unanalysed_reason(unanalysed: Mapping[str, int]) -> str | None:
    """The completeness reason for spans accepted but not analysed (``None`` when there are none)."""
    spans = sum(unanalysed.values())
    if not spans:
        return None
    causes = "; ".join(
        f"{count} because {UNANALYSED_CAUSES.get(reason, reason)}" for reason, count in sorted(unanalysed.items())
    )
    return (
        f"{spans} spans received in this window were forwarded but not analysed ({causes}), "
        "so impact figures are lower bounds"
    )


def joined_reasons(*reasons: str | None) -> str | None:
    """The reasons that are given, in order, as one (``None`` when none is)."""
    given = [reason for reason in reasons if reason]
    return "; ".join(given) if given else None


def completeness_of(start: int, end: int, covered_from: int, now: int, loss: str | None) -> Completeness:
    """The completeness of the (rounded) window ``[start, end)`` of a state that holds every
    event since ``covered_from``, given the volume check's ``loss`` (``None``: no loss).

    Incomplete when the window starts before the minute the state began (events before it were
    never counted) or when the span volume dropped at the window's end; the loss is named first
    when both hold. What the state has seen is measured up to ``now``, so the reason changes as
    the state grows.
    """
    observed_ns = max(0, min(end, now) - max(start, covered_from))
    covers = start >= floor_minute(covered_from)
    reason = loss
    if reason is None and not covers:
        if observed_ns == 0:
            reason = "the processor's state began after this window: it holds none of its events"
        else:
            covered = format_duration(observed_ns // SECOND_NS)
            reason = f"the processor's state covers only the last {covered} of this window"
    return Completeness(
        complete=loss is None and covers,
        reason=reason,
        start_ns=start,
        end_ns=end,
        covered_from_ns=covered_from,
        observed_seconds=observed_ns / SECOND_NS,
        state_covers_window=covers,
        telemetry_lost=loss is not None,
        loss=loss,
    )


def attribution_of(row: np.ndarray | Sequence[float]) -> Attribution:
    """The `Attribution` of a count row (its last two columns count events without a customer)."""
    total = int(row[COL_TOTAL])
    without = int(row[COL_NO_CUSTOMER])
    return Attribution(total - without, without, int(row[COL_BAD_NO_CUSTOMER]))


def event_counts(row: np.ndarray | Sequence[float], thresholds: Sequence[float]) -> EventCounts:
    """The `EventCounts` of a count row (total, bad, revenue, then each threshold's column)."""
    total = int(row[COL_TOTAL])
    bad = int(row[COL_BAD])
    met = {threshold: int(row[FIRST_THRESHOLD_COL + i]) for i, threshold in enumerate(thresholds)}
    return EventCounts(total=total, good=total - bad, bad=bad, latency_met=met)


def query_window(start_ns: int, end_ns: int) -> tuple[int, int]:
    """A query's window: both bounds rounded up to the minute; ValueError if empty or over 35 days."""
    # Rounding both bounds up keeps the window's length and always includes the minute still
    # filling up, so "the last 5 minutes" counts the freshest events.
    start, end = ceil_minute(start_ns), ceil_minute(end_ns)
    if end <= start:
        raise ValueError("the window is empty: end must be at least a minute after start")
    if end - start > MAX_WINDOW_S * SECOND_NS:
        raise ValueError("the window is longer than 35 days")
    return start, end


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
