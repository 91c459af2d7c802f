"""Impact score and severity from the SLI engine's impact documents.

score = sum over tiers of weight(tier) x impacted users of that tier
        + revenue_weight x revenue at risk

Impacted users are distinct customers with at least one bad event in the window (HyperLogLog
estimates with bounds); the score is computed from the estimate, and from the lower and upper
bounds for its range. Severity is SEV1..SEV3 by configured minimum scores, SEV4 below.

When telemetry is incomplete the SLI engine gives lower bounds only (``upper`` is null): the
score's range then has no upper end, and the severity is a floor: the incident is at least
that bad.

The documents come from `ImpactQueries.impact`; anything missing or malformed in them raises
`ImpactUnavailable` with the reason, and the caller reports the score as unknown rather than
as zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from otel_impact.processors.impact_queries import ImpactQueries

from .alerting_config import ScoringConfig, SeverityThresholds

__all__ = ["Bounds", "ImpactScore", "ImpactUnavailable", "score_impact", "top_segments"]


class ImpactUnavailable(Exception):
    """The impact document could not be read; the message says why."""


@dataclass(frozen=True)
class Bounds:
    """An estimate with its lower and upper bounds; ``upper`` is ``None`` when unbounded."""

    estimate: float
    lower: float
    upper: float | None

    def to_json(self) -> dict[str, float | None]:
        return {"estimate": self.estimate, "lower": self.lower, "upper": self.upper}

    def describe(self) -> str:
        if self.upper is None:
            return f"at least {self.lower:.0f} (estimate {self.estimate:.0f})"
        return f"{self.estimate:.0f} ({self.lower:.0f}-{self.upper:.0f})"


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
    top_segments: tuple[dict[str, Any], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 3),
            "score_range": [round(self.score_range[0], 3), _round(self.score_range[1])],
            "severity": self.severity,
            "impacted_users": self.impacted_users.to_json(),
            "weighted_users": round(self.weighted_users, 3),
            "revenue_at_risk": self.revenue_at_risk,
            "telemetry_complete": self.telemetry_complete,
            "window_seconds": self.window_seconds,
            "top_segments": list(self.top_segments),
        }


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
    doc = _query(queries, task, start_ns, end_ns, by=(tier_dim,) if by_tier else (), where=where)
    users = _bounds(doc, "impacted_users")
    revenue = _number(doc, "revenue_at_risk")
    if by_tier:
        weighted: list[float | None] = [0.0, 0.0, 0.0]
        for segment in _segments(doc):
            weight = scoring.weight(str(segment["segment"].get(tier_dim)))
            weighted = _add(weighted, weight, _bounds(segment, "impacted_users"))
    else:
        weighted = _add([0.0, 0.0, 0.0], scoring.weight(where.get(tier_dim)), users)
    money = scoring.revenue_weight * revenue
    estimate, lower, upper = weighted
    assert estimate is not None and lower is not None
    score = estimate + money
    telemetry = doc.get("telemetry")
    complete = not (isinstance(telemetry, Mapping) and telemetry.get("complete") is False)
    return ImpactScore(
        score=score,
        score_range=(lower + money, None if upper is None else upper + money),
        severity=severity.classify(score),
        impacted_users=users,
        weighted_users=estimate,
        revenue_at_risk=revenue,
        telemetry_complete=complete,
        window_seconds=(end_ns - start_ns) / 1e9,
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
) -> tuple[dict[str, Any], ...]:
    """The ``limit`` segments (grouped by ``by``, within ``where``) with the most impacted
    users, then the most bad events. Raises `ImpactUnavailable`."""
    if not by or limit <= 0:
        return ()
    doc = _query(queries, task, start_ns, end_ns, by=by, where=where)
    rows: list[dict[str, Any]] = []
    for segment in _segments(doc):
        users = _bounds(segment, "impacted_users")
        events = segment.get("events")
        bad = events.get("bad", 0) if isinstance(events, Mapping) else 0
        rows.append(
            {
                "segment": dict(segment["segment"]),
                "impacted_users": users.to_json(),
                "bad_events": bad if isinstance(bad, int) else 0,
                "revenue_at_risk": _number(segment, "revenue_at_risk"),
            }
        )
    rows.sort(key=lambda row: (-row["impacted_users"]["estimate"], -row["bad_events"]))
    return tuple(row for row in rows[:limit] if row["impacted_users"]["estimate"] > 0 or row["bad_events"] > 0)


def _query(
    queries: ImpactQueries, task: str, start_ns: int, end_ns: int, *, by: Sequence[str], where: Mapping[str, str]
) -> Mapping[str, Any]:
    try:
        doc = queries.impact(task, start_ns, end_ns, by=tuple(by), where=dict(where) or None)
    except KeyError as error:
        raise ImpactUnavailable(f"task {task!r} is unknown to the SLI engine") from error
    except (ValueError, TypeError) as error:
        raise ImpactUnavailable(f"the impact query failed: {error}") from error
    if not isinstance(doc, Mapping):
        raise ImpactUnavailable("the impact answer is not a JSON object")
    return doc


def _segments(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    segments = doc.get("segments", [])
    if not isinstance(segments, list) or not all(
        isinstance(item, Mapping) and isinstance(item.get("segment"), Mapping) for item in segments
    ):
        raise ImpactUnavailable("the impact answer has malformed `segments`")
    return segments


def _number(doc: Mapping[str, Any], key: str) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ImpactUnavailable(f"the impact answer has no number `{key}`")
    return float(value)


def _bounds(doc: Mapping[str, Any], key: str) -> Bounds:
    value = doc.get(key)
    if not isinstance(value, Mapping):
        raise ImpactUnavailable(f"the impact answer has no `{key}` object")
    estimate = _number(value, "estimate")
    lower = _number(value, "lower") if "lower" in value else estimate
    if "upper" not in value:
        upper: float | None = estimate
    elif value["upper"] is None:  # lower bounds only: telemetry is incomplete
        upper = None
    else:
        upper = _number(value, "upper")
    return Bounds(estimate, lower, upper)


def _add(totals: list[float | None], weight: float, users: Bounds) -> list[float | None]:
    """``totals`` (estimate, lower, upper) plus ``weight`` times ``users``; an unbounded upper stays so."""
    estimate, lower, upper = totals
    assert estimate is not None and lower is not None
    return [
        estimate + weight * users.estimate,
        lower + weight * users.lower,
        None if upper is None or users.upper is None else upper + weight * users.upper,
    ]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
