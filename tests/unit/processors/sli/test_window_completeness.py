"""`SliQueries.window_completeness`: the one decision on whether a window's data is complete."""

from __future__ import annotations

from typing import Any

import pytest
from support.otlp_traces import batch, request, span

from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.queries import SliQueries

SECOND = 10**9
MINUTE = 60 * SECOND
T0 = 1_800_000_000 * SECOND // (60 * MINUTE) * (60 * MINUTE)  # on the hour


def setup() -> tuple[SliEngine, SliQueries, ManualClock]:
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(SliConfig(), clock=clock)
    return engine, SliQueries(engine), clock


def checkouts(engine: SliEngine, clock: ManualClock, count: int) -> None:
    now = clock.now_ns()
    spans: list[Any] = [
        span(end_ns=now - i * 10**8, attributes={"impact.task.name": "checkout", "impact.customer.hash": f"{i:032x}"})
        for i in range(count)
    ]
    engine.analyze(batch(request(spans), now))


def window(clock: ManualClock, minutes: int) -> tuple[int, int]:
    end = clock.now_ns() - clock.now_ns() % MINUTE + MINUTE
    return end - minutes * MINUTE, end


def test_a_window_older_than_the_state_is_incomplete_with_how_much_was_observed() -> None:
    engine, queries, clock = setup()
    clock.advance(3 * 60 + 25)
    checkouts(engine, clock, 10)
    answer = queries.window_completeness("checkout", *window(clock, 30))
    assert answer.complete is False and answer.state_covers_window is False
    assert answer.telemetry_lost is False and answer.loss is None
    assert answer.reason == "the processor's state covers only the last 3m25s of this window"
    assert answer.covered_from_ns == T0 and answer.observed_seconds == 205
    # the impact report states the same decision as its telemetry
    report = queries.impact("checkout", *window(clock, 30))
    assert (report.telemetry.complete, report.telemetry.reason) == (answer.complete, answer.reason)
    assert report.estimates_are_lower_bounds is True


def test_the_reason_grows_with_the_clock_not_with_the_minute() -> None:
    engine, queries, clock = setup()
    clock.advance(66)
    checkouts(engine, clock, 1)
    start, end = window(clock, 30)
    first = queries.window_completeness("checkout", start, end).reason
    clock.advance(14)  # the same minute: the window's rounded end has not moved
    second = queries.window_completeness("checkout", start, end).reason
    assert first == "the processor's state covers only the last 1m6s of this window"
    assert second == "the processor's state covers only the last 1m20s of this window"


def test_a_window_the_state_covers_is_complete() -> None:
    engine, queries, clock = setup()
    clock.advance(40 * 60)
    checkouts(engine, clock, 10)
    answer = queries.window_completeness("checkout", *window(clock, 30))
    assert (answer.complete, answer.reason, answer.state_covers_window) == (True, None, True)
    assert answer.observed_seconds == 29 * 60  # up to now, the window's last minute is still to come


def test_telemetry_loss_makes_a_covered_window_incomplete() -> None:
    engine, queries, clock = setup()
    for minute in range(90):
        clock.advance(60)
        checkouts(engine, clock, 100 if minute < 80 else 5)
    answer = queries.window_completeness("checkout", *window(clock, 15))
    assert answer.complete is False and answer.state_covers_window is True and answer.telemetry_lost is True
    assert answer.reason is not None and answer.reason == answer.loss and "fell to 5%" in answer.reason


def test_loss_is_named_first_when_the_state_is_young_too() -> None:
    engine, queries, clock = setup()
    for minute in range(90):
        clock.advance(60)
        checkouts(engine, clock, 100 if minute < 80 else 5)
    answer = queries.window_completeness("checkout", *window(clock, 180))
    assert answer.state_covers_window is False and answer.telemetry_lost is True
    assert answer.reason == answer.loss


def test_an_unknown_task_is_a_key_error() -> None:
    _, queries, clock = setup()
    with pytest.raises(KeyError):
        queries.window_completeness("nope", *window(clock, 30))
