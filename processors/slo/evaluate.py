"""Evaluating one SLO at one instant: budgets, burn rates, conditions and impact, as values.

`evaluate_slo` reads only the `ImpactQueries` contract and returns an `SloEvaluation`; it keeps
no state and sends nothing (the engine feeds the result to the alert state machine). Its
``also`` argument names segments that must be evaluated even without events (those with an
active alert, so that they can resolve). `budget_history` answers the dashboard's question: how
the error budget of an SLO's current period went down.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from otel_impact.processors.durations import MINUTE_NS
from otel_impact.processors.impact_queries import Completeness, EventCounts, ImpactQueries

from .alerting_config import AlertingConfig
from .burn import Budget, ConditionResult, MissingThreshold, Tally, alert_level, evaluate_conditions, tally
from .config import SloConfig
from .scoring import ImpactScore, ImpactUnavailable, score_impact, top_segments
from .windows import BURN_WINDOWS, period_bounds

__all__ = [
    "BudgetHistory",
    "BudgetPoint",
    "SegmentEvaluation",
    "SloEvaluation",
    "budget_history",
    "evaluate_slo",
    "runtime_problem",
]

_NS = 1_000_000_000
HISTORY_POINTS = 24
"""Points of a `budget_history` (evenly spread over the period so far)."""


@dataclass(frozen=True)
class SegmentEvaluation:
    """One SLO segment at one instant.

    ``key`` is the segment's values in the order of the SLO's ``by`` and ``where`` maps those
    dimensions to them. ``period`` is the events of the SLO's period so far, ``burns`` the burn
    rate over each of `BURN_WINDOWS` (``None`` without events), ``level`` the alert level the
    conditions call for. ``impact`` is ``None`` when it could not be scored; ``impact_error``
    then says why.
    """

    key: tuple[str, ...]
    where: dict[str, str]
    period: Tally
    budget: Budget
    burns: dict[float, float | None]
    conditions: list[ConditionResult]
    level: Literal["page", "ticket"] | None
    impact: ImpactScore | None
    impact_error: str | None


@dataclass(frozen=True)
class SloEvaluation:
    """One SLO at ``at_ns``: ``ok`` with its segments, or ``no_data`` / ``error`` with the reason.

    ``completeness`` is `ImpactQueries.window_completeness` of the SLO's period so far: what the
    snapshot reports as the SLO's ``telemetry``, and what its budgets cover (while the processor's
    state is younger than the period, only ``completeness.observed_seconds`` of it). ``telemetry``
    is ``(complete, reason)`` of its telemetry-loss part alone: a loss holds firing alerts (it
    would look like recovery), a young state does not (the burn windows are what it has seen).
    """

    slo: SloConfig
    at_ns: int
    status: Literal["ok", "no_data", "error"]
    reason: str | None = None
    segments: tuple[SegmentEvaluation, ...] = ()
    telemetry: tuple[bool, str | None] | None = None
    completeness: Completeness | None = None


def evaluate_slo(
    slo: SloConfig,
    alerting: AlertingConfig,
    queries: ImpactQueries,
    now: int,
    *,
    also: Iterable[tuple[str, ...]] = (),
) -> SloEvaluation:
    """Evaluate ``slo`` at ``now`` over every segment with events (and every segment in ``also``).

    A task without events yet is ``no_data``; an SLO the SLI engine cannot answer (a dimension
    or latency threshold it does not count) is ``error`` with the fix. Raises on a broken answer.
    """
    if slo.task not in queries.tasks():
        return SloEvaluation(slo, now, "no_data", f"no events seen for task {slo.task!r} yet")
    problem = runtime_problem(slo, queries)
    if problem is not None:
        return SloEvaluation(slo, now, "error", problem)
    start_ns, _, period_seconds = period_bounds(slo.window, now)
    period = queries.counts(slo.task, start_ns, now, by=slo.by)
    windows = {w: queries.counts(slo.task, now - int(w * _NS), now, by=slo.by) for w in BURN_WINDOWS}
    keys = set(period)
    for answer in windows.values():
        keys.update(answer)
    keys.update(also)
    completeness = queries.window_completeness(slo.task, start_ns, max(now, start_ns + MINUTE_NS))
    telemetry = (not completeness.telemetry_lost, completeness.loss)
    dimensions = tuple(queries.dimensions(slo.task))
    segments = tuple(
        _evaluate_segment(slo, alerting, queries, key, now, period_seconds, period, windows, dimensions)
        for key in sorted(keys)
    )
    return SloEvaluation(slo, now, "ok", None, segments, telemetry, completeness)


def runtime_problem(slo: SloConfig, queries: ImpactQueries) -> str | None:
    """Why the SLI engine cannot answer ``slo`` (with the fix), or ``None`` if it can."""
    dimensions = list(queries.dimensions(slo.task))
    missing = [name for name in slo.by if name not in dimensions]
    if missing:
        return (
            f"dimension(s) {', '.join(missing)} are not configured for task {slo.task!r} "
            f"(it has: {', '.join(dimensions) or 'none'}); add them to the SLI dimensions or change `by`"
        )
    if slo.sli.kind == "latency":
        assert slo.sli.threshold_seconds is not None
        thresholds = list(queries.latency_thresholds(slo.task))
        if not any(math.isclose(t, slo.sli.threshold_seconds, rel_tol=1e-9) for t in thresholds):
            shown = ", ".join(f"{t:g}s" for t in thresholds) or "none"
            return (
                f"latency threshold {slo.sli.threshold_seconds:g}s is not counted for task {slo.task!r} "
                f"(thresholds: {shown}); add it to the task's latency thresholds or use one of them"
            )
    return None


def _evaluate_segment(
    slo: SloConfig,
    alerting: AlertingConfig,
    queries: ImpactQueries,
    key: tuple[str, ...],
    now: int,
    period_seconds: float,
    period: Mapping[tuple[str, ...], EventCounts],
    windows: Mapping[float, Mapping[tuple[str, ...], EventCounts]],
    dimensions: Sequence[str],
) -> SegmentEvaluation:
    error_budget = slo.error_budget
    try:
        period_tally = tally(period.get(key), slo.sli)
        tallies = {w: tally(answer.get(key), slo.sli) for w, answer in windows.items()}
    except MissingThreshold as missing:
        raise RuntimeError(f"the counts lack latency threshold {missing.args[0]:g}s") from missing
    budget = Budget.of(period_tally, error_budget)
    conditions = evaluate_conditions(
        tallies,
        budget,
        error_budget=error_budget,
        period_seconds=period_seconds,
        guard=alerting.low_traffic_guard,
        low_budget=alerting.low_budget_page,
    )
    level = alert_level(conditions)
    where = dict(zip(slo.by, (str(value) for value in key), strict=True))
    score_window = alerting.scoring.window
    if level is not None:
        score_window = min(c.long for c in conditions if c.firing and c.severity == level)
    impact: ImpactScore | None = None
    impact_error = None
    start = now - int(score_window * _NS)
    try:
        impact = score_impact(
            queries,
            slo.task,
            start,
            now,
            where=where,
            task_dimensions=dimensions,
            scoring=alerting.scoring,
            severity=alerting.severity,
        )
        if level is not None:
            top_by = [d for d in dimensions if d not in where]
            limit = alerting.scoring.top_segments
            top = top_segments(queries, slo.task, start, now, where=where, by=top_by, limit=limit)
            impact = replace(impact, top_segments=top)
    except ImpactUnavailable as error:
        impact_error = str(error)
    burns = {w: t.burn_rate(error_budget) for w, t in tallies.items()}
    return SegmentEvaluation(key, where, period_tally, budget, burns, conditions, level, impact, impact_error)


@dataclass(frozen=True)
class BudgetPoint:
    """The error budget left at ``at_ns``: a fraction, negative once overspent."""

    at_ns: int
    remaining: float


@dataclass(frozen=True)
class BudgetHistory:
    """How the error budget of one SLO went down over its current period (from
    ``period_start_ns``), for the segment that has the least left now (``segment``; empty
    without ``by``). ``points`` is empty before the period's first minute or without events."""

    slo: str
    period_start_ns: int
    segment: Mapping[str, str]
    points: tuple[BudgetPoint, ...]


def budget_history(slo: SloConfig, queries: ImpactQueries, now: int, *, points: int = HISTORY_POINTS) -> BudgetHistory:
    """Up to ``points`` evenly spread samples of the budget left, from a minute into the SLO's
    period (or into the processor's state, when it is younger than the period: before it began
    nothing was counted) to ``now``. Raises ``KeyError`` for a task the SLI engine does not know."""
    start, _, _ = period_bounds(slo.window, now)
    empty = BudgetHistory(slo.name, start, {}, ())
    if now <= start + MINUTE_NS:
        return empty
    covered_from = queries.window_completeness(slo.task, start, now).covered_from_ns
    first = max(start, covered_from - covered_from % MINUTE_NS) + MINUTE_NS
    if now <= first:
        return empty
    step = max(MINUTE_NS, (now - first) // (points - 1))
    samples: list[tuple[int, dict[tuple[str, ...], float]]] = []
    for index in range(points):
        at = min(now, first + index * step)
        counts = queries.counts(slo.task, start, at, by=slo.by)
        remaining = {key: Budget.of(tally(c, slo.sli), slo.error_budget).remaining for key, c in counts.items()}
        samples.append((at, remaining))
        if at == now:
            break
    final = samples[-1][1]
    if not final:
        return empty
    worst = min(final, key=lambda key: final[key])
    return BudgetHistory(
        slo.name,
        start,
        dict(zip(slo.by, worst, strict=True)),
        tuple(BudgetPoint(at, left.get(worst, 1.0)) for at, left in samples),
    )
