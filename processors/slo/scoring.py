"""Impact score and severity from the SLI engine's impact reports.

score = sum over tiers of weight(tier) x impacted users of that tier
        + revenue_weight x revenue at risk

Impacted users are distinct customers with at least one bad event in the window (HyperLogLog
estimates with bounds); the score is computed from the estimate, and from the lower and upper
bounds for its range. Severity is SEV1..SEV3 by configured minimum scores, SEV4 below.

When telemetry is incomplete the SLI engine gives lower bounds only (``upper`` is ``None``): the
score's range then has no upper end, and the severity is a floor: the incident is at least
that bad.

The reports come from `ImpactQueries.impact` as typed `ImpactReport` values, read as they are.
When the query fails (an unknown task, a dimension the SLI engine does not have, an
implementation that answers something else than an `ImpactReport`) `ImpactUnavailable` says
why, and the caller reports the score as unknown rather than as zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from otel_impact.processors.impact_queries import Bounds, ImpactQueries, ImpactReport

from .alerting_config import ScoringConfig, SeverityThresholds

__all__ = ["ImpactScore", "ImpactUnavailable", "TopSegment", "score_impact", "top_segments"]


class ImpactUnavailable(Exception):
    """The impact report could not be had; the message says why."""


@dataclass(frozen=True)
class TopSegment:
    """One of the most impacted segments within an SLO segment."""

    segment: Mapping[str, str]
    impacted_users: Bounds
    bad_events: int
    revenue_at_risk: float


@dataclass(frozen=True)
class ImpactScore:
    """What an incident costs one SLO segment over ``window_seconds``."""

    score: float
    score_range: tuple[float, float | None]
    severity: str
    impacted_users: Bounds
    weighted_users: float
    revenue_at_risk: float
    telemetry_complete: bool
    window_seconds: float
    delay_reason: str | None = None
    """Set while the task's spans arrive late (``telemetry.delayed``): recent figures will grow."""
    top_segments: tuple[TopSegment, ...] = field(default=())


def score_impact(
    queries: ImpactQueries,
    task: str,
    start_ns: int,
    end_ns: int,
    *,
    where: Mapping[str, str],
    task_dimensions: Sequence[str],
    scoring: ScoringConfig,
    severity: SeverityThresholds,
) -> ImpactScore:
    """Score one segment (``where``) of a task over ``[start_ns, end_ns)``.

    When the segment does not fix the tier but the task has the tier dimension, the users are
    weighted tier by tier (one query grouped by tier); a user belongs to one tier, so the tiers'
    distinct counts add up. Raises `ImpactUnavailable`.
    """
    tier_dim = scoring.tier_dimension
    by_tier = tier_dim not in where and tier_dim in task_dimensions
    report = _query(queries, task, start_ns, end_ns, by=(tier_dim,) if by_tier else (), where=where)
    try:
        users = _floats(report.impacted_users)
        revenue = float(report.revenue_at_risk)
        complete = report.telemetry.complete
        lag = report.telemetry.lag
        delay_reason = lag.reason if lag is not None and lag.delayed else None
        if by_tier:
            weighted: list[float | None] = [0.0, 0.0, 0.0]
            for segment in report.segments:
                weight = scoring.weight(str(segment.segment.get(tier_dim)))
                weighted = _add(weighted, weight, _floats(segment.impacted_users))
        else:
            weighted = _add([0.0, 0.0, 0.0], scoring.weight(where.get(tier_dim)), users)
    except (AttributeError, TypeError) as error:  # an implementation that breaks the contract
        raise ImpactUnavailable(f"the impact answer is not an ImpactReport: {error}") from error
    money = scoring.revenue_weight * revenue
    estimate, lower, upper = weighted
    assert estimate is not None and lower is not None
    score = estimate + money
    return ImpactScore(
        score=score,
        score_range=(lower + money, None if upper is None else upper + money),
        severity=severity.classify(score),
        impacted_users=users,
        weighted_users=estimate,
        revenue_at_risk=revenue,
        telemetry_complete=complete,
        window_seconds=(end_ns - start_ns) / 1e9,
        delay_reason=delay_reason,
    )


def top_segments(
    queries: ImpactQueries,
    task: str,
    start_ns: int,
    end_ns: int,
    *,
    where: Mapping[str, str],
    by: Sequence[str],
    limit: int,
) -> tuple[TopSegment, ...]:
    """The ``limit`` segments (grouped by ``by``, within ``where``) with the most impacted
    users, then the most bad events. Raises `ImpactUnavailable`."""
    if not by or limit <= 0:
        return ()
    report = _query(queries, task, start_ns, end_ns, by=by, where=where)
    try:
        rows = [
            TopSegment(
                segment=dict(segment.segment),
                impacted_users=_floats(segment.impacted_users),
                bad_events=segment.events.bad,
                revenue_at_risk=float(segment.revenue_at_risk),
            )
            for segment in report.segments
        ]
    except (AttributeError, TypeError) as error:  # an implementation that breaks the contract
        raise ImpactUnavailable(f"the impact answer is not an ImpactReport: {error}") from error
    rows.sort(key=lambda row: (-row.impacted_users.estimate, -row.bad_events))
    return tuple(row for row in rows[:limit] if row.impacted_users.estimate > 0 or row.bad_events > 0)


def _query(
    queries: ImpactQueries, task: str, start_ns: int, end_ns: int, *, by: Sequence[str], where: Mapping[str, str]
) -> ImpactReport:
    try:
        return queries.impact(task, start_ns, end_ns, by=tuple(by), where=dict(where) or None)
    except KeyError as error:
        raise ImpactUnavailable(f"task {task!r} is unknown to the SLI engine") from error
    except (ValueError, TypeError) as error:
        raise ImpactUnavailable(f"the impact query failed: {error}") from error


def _floats(bounds: Bounds) -> Bounds:
    """The bounds as floats: the SLI engine states users in whole numbers; scores are real."""
    upper = None if bounds.upper is None else float(bounds.upper)
    return Bounds(float(bounds.estimate), float(bounds.lower), upper)


def _add(totals: list[float | None], weight: float, users: Bounds) -> list[float | None]:
    """``totals`` (estimate, lower, upper) plus ``weight`` times ``users``; an unbounded upper stays so."""
    estimate, lower, upper = totals
    assert estimate is not None and lower is not None
    return [
        estimate + weight * users.estimate,
        lower + weight * users.lower,
        None if upper is None or users.upper is None else upper + weight * users.upper,
    ]
