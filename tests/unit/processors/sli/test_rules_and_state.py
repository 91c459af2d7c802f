"""Configured tasks (match rules, success rules) and the state file (restart, corruption, layout change)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from support.otlp_traces import SERVER, batch, request, span

from otel_impact.processors.api.documents import impact_document
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.queries import SliQueries
from otel_impact.processors.sli.store import STATE_FILE

MINUTE = 60 * 10**9
T0 = 1_800_000_000 * 10**9 // MINUTE * MINUTE
CLIENT = 3

CONFIG = SliConfig.from_mapping(
    {
        "tasks": [
            {
                "name": "checkout",
                "value": 25.0,
                "success": {
                    "http_bad": ["5xx", "429"],
                    "error_types_good": ["card_declined"],
                    "latency_threshold": "2s",
                },
            },
            {"name": "search", "match": {"service": ["search-api"], "http_route": ["/api/search"], "kind": ["server"]}},
            {
                "name": "login",
                "match": {"span_name": ["POST /login"]},
                "success": {"status_error": False, "error_types_bad": ["*"]},
            },
        ]
    }
)


def counts(queries: SliQueries, task: str, now: int) -> tuple[int, int]:
    end = now - now % MINUTE + MINUTE
    result = queries.counts(task, end - 10 * MINUTE, end)[()]
    return result.total, result.bad


def test_success_rules_per_task() -> None:
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(CONFIG, clock=clock)
    queries = SliQueries(engine)
    now = clock.now_ns()

    def checkout(**attributes: Any) -> Any:
        duration = attributes.pop("duration_ms", 100)
        error = attributes.pop("error", False)
        return span(
            end_ns=now, duration_ms=duration, error=error, attributes={"impact.task.name": "checkout", **attributes}
        )

    spans = [
        checkout(**{"http.response.status_code": 429}),  # bad: 429 is listed
        checkout(**{"http.response.status_code": 404}),  # good
        checkout(duration_ms=2500),  # bad: slower than 2s
        checkout(error=True, **{"error.type": "card_declined"}),  # good: the customer's outcome
        checkout(error=True),  # bad
        checkout(error=True, **{"impact.task.outcome": "success"}),  # good: explicit outcome wins
        checkout(**{"impact.task.value": 99.5, "http.response.status_code": 503}),  # bad, with its own value
    ]
    engine.analyze(batch(request(spans), now))
    assert counts(queries, "checkout", now) == (7, 4)
    end = now - now % MINUTE + MINUTE
    assert impact_document(queries.impact("checkout", end - 10 * MINUTE, end))["revenue_at_risk"] == 25.0 * 3 + 99.5


def test_match_rules_define_tasks_without_the_sdk() -> None:
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(CONFIG, clock=clock)
    queries = SliQueries(engine)
    now = clock.now_ns()
    search = [
        span(end_ns=now, name="GET /api/search", attributes={"http.route": "/api/search"}),
        span(end_ns=now, name="GET /api/search", attributes={"http.route": "/api/search"}, error=True),
        span(end_ns=now, name="GET /api/search", attributes={"http.route": "/api/search"}, kind=CLIENT),  # not server
        span(end_ns=now, name="GET /", attributes={"http.route": "/"}),  # another route
    ]
    login = [
        span(end_ns=now, name="POST /login", error=True),  # status ignored for login
        span(end_ns=now, name="POST /login", attributes={"error.type": "timeout"}),  # any error.type is bad
        span(end_ns=now, name="POST /login", attributes={"impact.task.name": "signin"}),  # a task name wins
    ]
    engine.analyze(batch(request(search, {"service.name": "search-api"}), now))
    engine.analyze(batch(request(search, {"service.name": "other-api"}), now))  # wrong service: no match
    engine.analyze(batch(request(login, {"service.name": "auth"}), now))
    assert counts(queries, "search", now) == (2, 1)
    assert counts(queries, "login", now) == (2, 1)
    assert counts(queries, "signin", now) == (1, 0)
    assert set(queries.tasks()) == {"checkout", "search", "login", "signin"}
    assert SERVER == 2


def fill(engine: SliEngine, clock: ManualClock) -> None:
    for _ in range(5):
        clock.advance(60)
        now = clock.now_ns()
        spans = [
            span(end_ns=now, attributes={"impact.task.name": "checkout", "impact.customer.hash": f"{i:032x}"})
            for i in range(20)
        ]
        engine.analyze(batch(request(spans), now))
        engine.tick()


def test_checkpoints_are_periodic_driven_by_the_clock(tmp_path: Path) -> None:
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(CONFIG, clock=clock, state_dir=tmp_path)
    assert engine.store is not None
    fill(engine, clock)  # five minutes of ticks with a 5 s interval: one checkpoint per tick
    assert engine.store.checkpoints == 5
    engine.tick()
    assert engine.store.checkpoints == 5  # the clock did not move
    # A crash now (no close) loses nothing written before the last checkpoint.
    restarted = SliEngine(CONFIG, clock=clock, state_dir=tmp_path)
    assert counts(SliQueries(restarted), "checkout", clock.now_ns()) == (100, 0)
    restarted.close()
    restarted.close()  # twice is fine
    engine.close()


def test_a_corrupt_state_file_is_moved_aside_and_the_engine_starts_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / STATE_FILE).write_bytes(b"this is not a database" * 100)
    clock = ManualClock(start_ns=T0)
    with caplog.at_level(logging.ERROR, logger="otel_impact.sli"):
        engine = SliEngine(CONFIG, clock=clock, state_dir=tmp_path)
    assert any("corrupt" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert len(list(tmp_path.glob(f"{STATE_FILE}.corrupt-*"))) == 1
    fill(engine, clock)
    engine.close()
    assert counts(SliQueries(SliEngine(CONFIG, clock=clock, state_dir=tmp_path)), "checkout", clock.now_ns()) == (
        100,
        0,
    )


def test_content_that_does_not_restore_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(CONFIG, clock=clock, state_dir=tmp_path)
    fill(engine, clock)
    engine.close()
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        db.execute("UPDATE sketches SET cell = x'00010203'")
    db.close()
    with caplog.at_level(logging.ERROR, logger="otel_impact.sli"):
        restarted = SliEngine(CONFIG, clock=clock, state_dir=tmp_path)
    assert "does not restore" in caplog.text
    assert counts(SliQueries(restarted), "checkout", clock.now_ns()) == (0, 0)
    assert list(SliQueries(restarted).tasks()) == ["checkout", "login", "search"]  # configured tasks stay
    fill(restarted, clock)
    assert counts(SliQueries(restarted), "checkout", clock.now_ns()) == (100, 0)
    restarted.close()


def test_a_changed_layout_does_not_load_old_state(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(CONFIG, clock=clock, state_dir=tmp_path)
    fill(engine, clock)
    engine.close()
    changed = CONFIG.with_changes(latency_thresholds_s=(0.1,))
    with caplog.at_level(logging.WARNING, logger="otel_impact.sli"):
        restarted = SliEngine(changed, clock=clock, state_dir=tmp_path)
    assert "incompatible" in caplog.text
    assert len(list(tmp_path.glob(f"{STATE_FILE}.incompatible-*"))) == 1
    assert counts(SliQueries(restarted), "checkout", clock.now_ns()) == (0, 0)
    restarted.close()
