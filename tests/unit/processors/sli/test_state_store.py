"""The SLI state as plain snapshots, and the store's round trip of them (no engine involved)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from support.otlp_traces import batch, request, span

from otel_impact.processors.sli import SliConfig
from otel_impact.processors.sli.aggregates import Series
from otel_impact.processors.sli.analyzer import SliAnalyzer
from otel_impact.processors.sli.state import SliState, StateError, StateSnapshot
from otel_impact.processors.sli.store import RESTORE_ERRORS, STATE_FILE, StateStore

MINUTE = 60 * 10**9
T0 = 1_800_000_000 * 10**9 // MINUTE * MINUTE
CONFIG = SliConfig.from_mapping({"tasks": [{"name": "checkout"}, {"name": "search"}]})


def filled_state(minutes: int = 3) -> SliState:
    state = SliState(CONFIG, now_ns=T0)
    analyzer = SliAnalyzer(state)
    for minute in range(minutes):
        now = T0 + (minute + 1) * MINUTE
        spans = [
            span(
                end_ns=now - 1,
                duration_ms=5.0 * (i + 1),
                error=i % 4 == 0,
                attributes={
                    "impact.task.name": "checkout" if i % 2 else "search",
                    "impact.customer.tier": "pro" if i % 3 else "free",
                    "impact.customer.hash": f"{i:032x}",
                },
            )
            for i in range(24)
        ]
        analyzer.analyze(batch(request(spans), now))
    assert analyzer.errors == 0
    return state


def series_by_key(state: SliState) -> dict[tuple[str, tuple[str, ...]], Series]:
    return {(s.task, s.values): s for task in state.tasks.values() for s in state.all_series(task)}


def test_a_saved_state_loads_back_equal(tmp_path: Path) -> None:
    state = filled_state()
    store = StateStore.open(tmp_path, fingerprint=state.fingerprint())
    store.save(state.take_changes())
    snapshot = store.load()
    assert snapshot is not None
    assert (snapshot.task_events, snapshot.untracked_task_events) == (state.task_events, 0)
    assert {t.name for t in snapshot.tasks} == {"checkout", "search"}

    restored = SliState(CONFIG, now_ns=T0 + 99 * MINUTE)
    restored.restore(snapshot)  # reads the buckets from the file as it goes
    store.close()
    assert restored.coverage_start_ns == state.coverage_start_ns == T0
    assert restored.task_events == state.task_events == 72
    assert restored.series_count == state.series_count
    assert {name: task.volume for name, task in restored.tasks.items()} == {
        name: task.volume for name, task in state.tasks.items()
    }
    before, after = series_by_key(state), series_by_key(restored)
    assert before.keys() == after.keys() and before
    for key, original in before.items():
        copy = after[key]
        assert copy.id == original.id
        assert np.array_equal(copy.cumulative, original.cumulative)
        assert np.array_equal(copy.hist_counts, original.hist_counts)
        assert np.array_equal(copy.expo.counts, original.expo.counts)
        assert copy.counts.nbytes() == original.counts.nbytes()
    # New series after a restore get fresh ids.
    task = restored.tasks["checkout"]
    fresh = restored.new_series(task, ("enterprise",), T0)
    assert fresh.id > max(s.id for s in after.values())


def test_take_changes_returns_only_what_changed() -> None:
    state = filled_state()
    first = state.take_changes()
    assert first.series and first.counts and first.sketches
    assert {row[0] for row in first.counts} == {record.id for record in first.series}
    again = state.take_changes()
    assert (again.series, again.counts, again.sketches) == ([], [], [])
    assert again.task_events == first.task_events
    assert {t.name for t in again.tasks} == {"checkout", "search"}  # every task's counters, always


def test_an_empty_file_loads_nothing(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path, fingerprint="x")
    assert store.load() is None
    store.close()


def test_a_bucket_of_an_unsaved_series_does_not_load(tmp_path: Path) -> None:
    state = filled_state(1)
    store = StateStore.open(tmp_path, fingerprint=state.fingerprint())
    store.save(state.take_changes())
    store.close()
    with sqlite3.connect(tmp_path / STATE_FILE) as db:
        db.execute("DELETE FROM series WHERE id = (SELECT MIN(id) FROM series)")
    db.close()
    store = StateStore.open(tmp_path, fingerprint=state.fingerprint())
    snapshot = store.load()
    assert snapshot is not None
    with pytest.raises(StateError, match="not saved"):
        SliState(CONFIG, now_ns=T0).restore(snapshot)
    store.discard(StateError("test"))
    assert store.load() is None
    assert len(list(tmp_path.glob(f"{STATE_FILE}.corrupt-*"))) == 1
    store.close()


def test_a_snapshot_that_does_not_fit_the_dimensions_does_not_restore() -> None:
    snapshot = filled_state(1).take_changes()
    record = snapshot.series[0]
    bad = StateSnapshot(
        snapshot.coverage_start_ns,
        snapshot.untracked_task_events,
        snapshot.task_events,
        snapshot.tasks,
        [type(record)(**{**record.__dict__, "values": (*record.values, "extra")})],
        [],
        [],
    )
    with pytest.raises(RESTORE_ERRORS):
        SliState(CONFIG, now_ns=T0).restore(bad)


def test_reset_keeps_the_configured_tasks_only() -> None:
    state = SliState(CONFIG.with_changes(auto_tasks=True), now_ns=T0)
    SliAnalyzer(state).analyze(batch(request([span(end_ns=T0, attributes={"impact.task.name": "other"})]), T0))
    assert set(state.tasks) == {"checkout", "search", "other"}
    state.reset(T0 + MINUTE)
    assert set(state.tasks) == {"checkout", "search"}
    assert (state.series_count, state.task_events, state.coverage_start_ns) == (0, 0, T0 + MINUTE)
