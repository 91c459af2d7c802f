"""The dashboard's overview states each task's window completeness, as the queries decide it."""

from __future__ import annotations

from support.impact_store import MINUTE_NS, InMemoryImpactStore
from support.slo_harness import T0, make_engine

from otel_impact.processors.api.dashboard_config import DashboardConfig
from otel_impact.processors.api.dashboard_routes import DashboardRoutes
from otel_impact.processors.slo.config import SloConfig
from otel_impact.processors.slo.evaluate import budget_history

SLO = SloConfig(name="checkout", task="checkout", objective=99.9, by=("tier",))


def _store() -> InMemoryImpactStore:
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=("tier",))
    store.traffic("checkout", T0 - 20 * MINUTE_NS, 20, good=990, bad=10, segment={"tier": "pro"})
    return store


def test_a_window_older_than_the_state_is_incomplete_on_the_dashboard_too() -> None:
    store = _store()
    store.set_state_start(T0 - 20 * MINUTE_NS)
    engine, clock, _ = make_engine(store, [SLO])
    board = DashboardRoutes(DashboardConfig(), store, engine, clock)
    end = T0 + MINUTE_NS
    asked = store.window_completeness("checkout", end - 30 * MINUTE_NS, end)
    telemetry = board.overview_document("30m")["telemetry"]["checkout"]
    assert telemetry["complete"] is False and telemetry["reason"] == asked.reason
    assert telemetry["state_covers_window"] is False and telemetry["telemetry_lost"] is False
    assert telemetry["covered_from"] == (T0 - 20 * MINUTE_NS) / 1e9
    assert board.overview_document("5m")["telemetry"]["checkout"]["complete"] is True


def test_the_budget_history_starts_when_the_state_began() -> None:
    store = _store()
    store.set_state_start(T0 - 20 * MINUTE_NS)
    history = budget_history(SLO, store, T0)
    assert history.points[0].at_ns == T0 - 19 * MINUTE_NS  # a minute into the state, not into the 30d period
    assert history.points[-1].at_ns == T0
