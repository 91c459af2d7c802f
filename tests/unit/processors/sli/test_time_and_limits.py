"""Event time (lateness, skew), roll-ups across tiers, cardinality caps and telemetry loss."""

from __future__ import annotations

from typing import Any

import pytest
from support.otlp_traces import batch, request, span

from otel_impact.processors.api.documents import impact_document
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.queries import SliQueries

MINUTE = 60 * 10**9
HOUR = 60 * MINUTE
DAY = 24 * HOUR
T0 = 1_800_000_000 * 10**9 // DAY * DAY


def checkout(end_ns: int, *, bad: bool = False, tier: str = "pro", user: str | None = None, **extra: Any) -> Any:
    attributes = {"impact.task.name": "checkout", "impact.customer.tier": tier, "impact.customer.hash": user, **extra}
    return span(end_ns=end_ns, attributes=attributes, error=bad)


def setup(config: SliConfig | None = None) -> tuple[SliEngine, SliQueries, ManualClock]:
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(config or SliConfig(), clock=clock)
    return engine, SliQueries(engine), clock


def feed(engine: SliEngine, clock: ManualClock, spans: list[Any]) -> None:
    engine.analyze(batch(request(spans), clock.now_ns()))


def test_late_and_future_spans_are_clamped_and_counted() -> None:
    engine, queries, clock = setup()
    clock.advance(3600)
    now = clock.now_ns()
    feed(
        engine,
        clock,
        [
            checkout(now - 2 * MINUTE),  # late but within the 5 minute bound: its own minute
            checkout(now - 3 * HOUR),  # too late: clamped to now - 5 min
            checkout(0),  # no end time at all
            checkout(now + 30 * 10**9),  # within the future tolerance: kept
            checkout(now + 3 * HOUR),  # a skewed clock: clamped to now
        ],
    )
    task = engine.tasks["checkout"]
    assert (task.late_clamped, task.future_clamped) == (2, 1)
    minute = now - now % MINUTE
    per_minute = {
        offset: queries.counts("checkout", minute + offset * MINUTE, minute + (offset + 1) * MINUTE)[()].total
        for offset in (-5, -2, 0)
    }
    assert per_minute == {-5: 2, -2: 1, 0: 2}
    assert queries.counts("checkout", minute - HOUR, minute + 2 * MINUTE)[()].total == 5
    impact = impact_document(queries.impact("checkout", minute - 10 * MINUTE, minute + MINUTE))
    assert impact["telemetry"]["late_clamped_events"] == 2 and impact["telemetry"]["future_clamped_events"] == 1


def test_old_buckets_roll_up_and_long_windows_stay_exact() -> None:
    """Events spread over 20 days: every window from 5m to 30d counts them all, at its tier's resolution."""
    engine, queries, clock = setup()
    per_hour = 3
    for hour in range(20 * 24):
        clock.advance(3600)
        now = clock.now_ns()
        feed(engine, clock, [checkout(now - i * MINUTE, bad=i == 0, user=f"{hour:032x}") for i in range(per_hour)])
        engine.tick()
    end = clock.now_ns() - clock.now_ns() % MINUTE + MINUTE
    counts = {days: queries.counts("checkout", end - days * DAY, end)[()] for days in (1, 7, 30)}
    assert counts[30].total == 20 * 24 * per_hour and counts[30].bad == 20 * 24
    # These windows start a minute after an hour's bad event, inside a 10-minute (1d) or hour (7d)
    # bucket: the start is widened to the bucket's edge, which takes in that one event.
    assert (counts[7].total, counts[7].bad) == (7 * 24 * per_hour + 1, 7 * 24 + 1)
    assert (counts[1].total, counts[1].bad) == (24 * per_hour + 1, 24 + 1)
    aligned = clock.now_ns()  # on the hour: windows whose start falls on bucket edges are exact
    assert queries.counts("checkout", aligned - 7 * DAY, aligned)[()].total == 7 * 24 * per_hour
    assert queries.counts("checkout", aligned - DAY, aligned)[()].total == 24 * per_hour
    assert queries.counts("checkout", end - 5 * MINUTE, end)[()].total == per_hour
    series = engine.tasks["checkout"].series[("pro",)]
    assert series.counts.stamps[2] is not None and (series.counts.stamps[2] >= 0).sum() > 0  # rolled into hours
    assert series.counts.expired == 0
    impact = impact_document(queries.impact("checkout", end - 30 * DAY, end))
    assert impact["events"]["total"] == counts[30].total
    assert impact["users"]["estimate"] == pytest.approx(20 * 24, rel=0.05)
    assert impact["telemetry"]["complete"] is False  # the window starts before the processor's state does
    assert "covers only the last 20d" in impact["telemetry"]["reason"]
    assert impact["users"]["upper"] is None and impact["estimates_are_lower_bounds"] is True


def test_series_caps_send_new_segments_to_one_visible_overflow_segment() -> None:
    config = SliConfig(max_series_per_task=3, max_series_total=5)
    engine, queries, clock = setup(config)
    clock.advance(600)
    now = clock.now_ns()
    tiers = [f"tier-{i}" for i in range(10)]
    feed(engine, clock, [checkout(now, tier=tier, bad=True, user=f"{i:032x}") for i, tier in enumerate(tiers)])
    feed(
        engine,
        clock,
        [span(end_ns=now, attributes={"impact.task.name": "search", "impact.customer.tier": t}) for t in tiers],
    )
    checkout_state, search_state = engine.tasks["checkout"], engine.tasks["search"]
    assert len(checkout_state.series) == 3 and checkout_state.overflow_events == 7
    assert len(search_state.series) == 2 and search_state.overflow_events == 8  # the total cap binds first
    assert engine.series_count == 5
    end = now - now % MINUTE + MINUTE
    counts = queries.counts("checkout", end - 10 * MINUTE, end, by=["tier"])
    assert counts[("_overflow",)].total == 7 and sum(c.total for c in counts.values()) == 10
    impact = impact_document(queries.impact("checkout", end - 10 * MINUTE, end))
    assert impact["overflow_events"] == 7
    overflow = next(s for s in impact["segments"] if s["segment"] == {"tier": "_overflow"})
    assert overflow["impacted_users"]["estimate"] == 7
    # A known segment keeps its own series after the cap is reached.
    feed(engine, clock, [checkout(now, tier=tiers[0])])
    assert queries.counts("checkout", end - 10 * MINUTE, end, by=["tier"])[(tiers[0],)].total == 2


def test_task_cap_counts_untracked_tasks() -> None:
    engine, queries, clock = setup(SliConfig(max_tasks=2))
    clock.advance(60)
    names = ["a", "b", "c", "d"]
    feed(engine, clock, [span(end_ns=clock.now_ns(), attributes={"impact.task.name": n}) for n in names * 2])
    assert queries.tasks() == ["a", "b"] and engine.untracked_task_events == 4


def test_a_sharp_drop_in_volume_marks_telemetry_incomplete() -> None:
    engine, queries, clock = setup()
    for minute in range(90):
        clock.advance(60)
        rate = 100 if minute < 80 else 5  # the collector in front starts losing spans at minute 80
        now = clock.now_ns()
        feed(engine, clock, [checkout(now - i * 10**8, user=f"{i:032x}") for i in range(rate)])
        if minute == 79:
            assert queries.telemetry_complete("checkout", now) == (True, None)
    complete, reason = queries.telemetry_complete("checkout", clock.now_ns())
    assert complete is False and reason is not None and "fell to" in reason
    end = clock.now_ns() - clock.now_ns() % MINUTE + MINUTE
    impact = impact_document(queries.impact("checkout", end - 15 * MINUTE, end))
    assert impact["telemetry"]["complete"] is False
    assert impact["telemetry"]["reason"].startswith("span volume for task 'checkout' fell to 5%")
    assert impact["estimates_are_lower_bounds"] is True and impact["users"]["upper"] is None


def test_quiet_tasks_are_not_called_lossy() -> None:
    engine, queries, clock = setup()
    for _ in range(90):
        clock.advance(60)
        feed(engine, clock, [checkout(clock.now_ns())])  # one event a minute: below the baseline minimum
    clock.advance(20 * 60)
    assert queries.telemetry_complete("checkout", clock.now_ns()) == (True, None)
