"""The API serializer: typed answers in, the JSON shape of the impact API out (keys in order)."""

from __future__ import annotations

import json

from otel_impact.processors.api.documents import impact_document
from otel_impact.processors.impact_queries import (
    Accuracy,
    Attribution,
    Bounds,
    EventTotals,
    ImpactReport,
    LatencyQuantiles,
    SegmentImpact,
    Telemetry,
)

MINUTE = 60 * 10**9
T0 = 1_800_000_000 * 10**9 // MINUTE * MINUTE


def _figures(bad: int, lower_only: bool) -> dict[str, object]:
    return {
        "events": EventTotals(10, 10 - bad, bad),
        "success_ratio": (10 - bad) / 10,
        "users": Bounds(5.4, 4.6, 6.2).whole(lower_bound_only=lower_only),
        "impacted_users": Bounds(float(bad), float(bad), float(bad)).whole(lower_bound_only=lower_only),
        "revenue_at_risk": 12.5,
        "latency_ms": LatencyQuantiles(1.5, None, 3.25),
        "latency_met": {0.3: 9, 1.0: 10},
        "attribution": Attribution(8, 2, 1),
    }


def _report(lower_only: bool) -> ImpactReport:
    return ImpactReport(
        **_figures(2, lower_only),  # type: ignore[arg-type]
        task="checkout",
        window="15m",
        start_ns=T0,
        end_ns=T0 + 15 * MINUTE,
        telemetry=Telemetry(not lower_only, "spans dropped" if lower_only else None, 1, 0),
        estimates_are_lower_bounds=lower_only,
        overflow_events=0,
        accuracy=Accuracy("2 standard deviations (about 95%)", 0.01625, 0.01329, T0 - MINUTE),
        dimensions=["tier"],
        where={},
        segments=[SegmentImpact(**_figures(2, lower_only), segment={"tier": "pro"})],  # type: ignore[arg-type]
    )


def test_impact_document_has_the_wire_shape() -> None:
    document = impact_document(_report(lower_only=False))
    assert list(document) == [
        "task",
        "window",
        "start",
        "end",
        "events",
        "success_ratio",
        "users",
        "impacted_users",
        "revenue_at_risk",
        "latency_ms",
        "latency_met",
        "attribution",
        "telemetry",
        "estimates_are_lower_bounds",
        "overflow_events",
        "accuracy",
        "dimensions",
        "where",
        "segments",
    ]
    assert document["start"] == "2027-01-15T08:00:00Z"
    assert document["users"] == {"estimate": 5, "lower": 5, "upper": 6}
    assert json.dumps(document["users"]) == '{"estimate": 5, "lower": 5, "upper": 6}'  # whole users, not 5.0
    assert document["latency_met"] == {"0.3": 9, "1": 10}
    assert document["attribution"] == {
        "events_with_customer": 8,
        "events_without_customer": 2,
        "coverage": 0.8,
        "bad_events_without_customer": 1,
    }
    assert document["accuracy"]["sketch_window_start"] == "2027-01-15T07:59:00Z"
    assert list(document["segments"][0])[:2] == ["segment", "events"]
    assert document["telemetry"] == {
        "complete": True,
        "reason": None,
        "late_clamped_events": 1,
        "future_clamped_events": 0,
        "lag_seconds": {"p50": None, "p99": None},  # a source that does not measure lag
        "delayed": False,
        "behind_seconds": None,
        "delay_reason": None,
    }


def test_lower_bounds_only_have_no_upper_end() -> None:
    document = impact_document(_report(lower_only=True))
    assert document["users"]["upper"] is None and document["impacted_users"]["upper"] is None
    assert document["segments"][0]["users"]["upper"] is None
    assert document["estimates_are_lower_bounds"] is True


def test_bounds_describe_says_at_least_without_an_upper_end() -> None:
    assert Bounds(12.0, 10.0, 14.0).describe() == "12 (10-14)"
    assert Bounds(12.0, 10.0, None).describe() == "at least 10 (estimate 12)"
