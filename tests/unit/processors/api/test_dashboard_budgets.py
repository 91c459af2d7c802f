"""The dashboard's overview reads the budgets from the SLO engine, not from its own arithmetic."""

from __future__ import annotations

from collections.abc import Sequence

from support.impact_store import MINUTE_NS, InMemoryImpactStore
from support.slo_harness import T0, make_engine, steady_history

from otel_impact.processors.api.dashboard_config import DashboardConfig
from otel_impact.processors.api.dashboard_routes import DashboardRoutes
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.slo.config import SloConfig
from otel_impact.processors.slo.evaluate import BudgetHistory, BudgetPoint

SLOS = (
    SloConfig(name="checkout", task="checkout", objective=99.9, by=("tier",), runbook="https://runbooks/checkout"),
    SloConfig(name="search", task="search", objective=99.5),
)


class _Budgets:
    """A stand-in SLO engine answering fixed budget histories."""

    slos: Sequence[SloConfig] = SLOS

    def __init__(self) -> None:
        self.asked: list[int | None] = []

    def budget_histories(self, now_ns: int | None = None, queries: object = None) -> Sequence[BudgetHistory]:
        self.asked.append(now_ns)
        points = (BudgetPoint(T0, 1.0), BudgetPoint(T0 + MINUTE_NS, 0.75))
        return [BudgetHistory("checkout", T0 - MINUTE_NS, {"tier": "pro"}, points)]


def _store() -> InMemoryImpactStore:
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=("tier",))
    return store


def test_overview_serializes_what_the_slo_engine_answers() -> None:
    budgets = _Budgets()
    board = DashboardRoutes(DashboardConfig(), _store(), budgets, ManualClock(start_ns=T0))
    document = board.overview_document("1h")
    assert budgets.asked == [T0]
    assert document["budget_history"] == {
        "checkout": [{"t": T0 // 10**9, "budget_remaining": 1.0}, {"t": T0 // 10**9 + 60, "budget_remaining": 0.75}]
    }
    (task,) = document["tasks"]
    assert task == {
        "name": "checkout",
        "dimensions": ["tier"],
        "runbooks": [{"title": "checkout runbook", "url": "https://runbooks/checkout"}],
    }
    assert document["slos_enabled"] is True


def test_overview_over_the_real_engine_covers_only_known_tasks() -> None:
    store = _store()
    steady_history(store, "checkout", segment={"tier": "pro"})
    store.traffic("checkout", T0, 60, good=980, bad=20, segment={"tier": "pro"})
    engine, clock, _ = make_engine(store, SLOS)
    clock.advance(3600)
    board = DashboardRoutes(DashboardConfig(), store, engine, clock)
    history = board.overview_document("1h")["budget_history"]
    assert list(history) == ["checkout"]  # no events for "search" yet
    points = history["checkout"]
    assert 1 < len(points) <= 24
    assert clock.now_ns() // 10**9 - 60 <= points[-1]["t"] <= clock.now_ns() // 10**9
    assert points[-1]["budget_remaining"] < points[0]["budget_remaining"]
