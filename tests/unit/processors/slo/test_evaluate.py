"""`evaluate_slo` and `budget_history` as pure functions, and the alert state machine on its own."""

from __future__ import annotations

import pytest
from support.impact_store import MINUTE_NS, InMemoryImpactStore
from support.slo_harness import T0, steady_history

from otel_impact.processors.clock import ManualClock
from otel_impact.processors.slo.alert_state import AlertStates
from otel_impact.processors.slo.alerting_config import AlertingConfig
from otel_impact.processors.slo.alerts import Notification
from otel_impact.processors.slo.config import SloConfig
from otel_impact.processors.slo.evaluate import budget_history, evaluate_slo

BY_TIER = SloConfig(name="by-tier", task="checkout", objective=99.9, by=("tier",))


def _store(bad_per_minute: int = 20) -> InMemoryImpactStore:
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=("tier",))
    for tier in ("pro", "free"):
        steady_history(store, "checkout", segment={"tier": tier})
    store.traffic("checkout", T0, 60, good=1000 - bad_per_minute, bad=bad_per_minute, segment={"tier": "pro"})
    store.traffic("checkout", T0, 60, good=1000, segment={"tier": "free"})
    return store


def test_evaluation_is_a_value_and_keeps_no_state() -> None:
    store = _store()
    now = T0 + 60 * MINUTE_NS
    first = evaluate_slo(BY_TIER, AlertingConfig(), store, now)
    second = evaluate_slo(BY_TIER, AlertingConfig(), store, now)
    assert first == second
    assert first.status == "ok" and first.telemetry == (True, None)
    pro, free = sorted(first.segments, key=lambda s: s.where["tier"], reverse=True)
    assert pro.where == {"tier": "pro"} and pro.key == ("pro",)
    assert pro.level == "page" and free.level is None
    assert pro.burns[3600.0] == pytest.approx(20.0)
    assert pro.impact is not None and pro.impact.telemetry_complete


def test_segments_named_in_also_are_evaluated_without_events() -> None:
    store = _store()
    evaluation = evaluate_slo(BY_TIER, AlertingConfig(), store, T0 + 60 * MINUTE_NS, also=[("gone",)])
    (gone,) = [s for s in evaluation.segments if s.key == ("gone",)]
    assert gone.period.total == 0 and gone.level is None


def test_unknown_task_and_unanswerable_slo_are_statuses_not_exceptions() -> None:
    store = _store()
    missing = evaluate_slo(SloConfig(name="x", task="nope", objective=99.0), AlertingConfig(), store, T0)
    assert (missing.status, missing.reason) == ("no_data", "no events seen for task 'nope' yet")
    wrong = SloConfig(name="y", task="checkout", objective=99.0, by=("region",))
    error = evaluate_slo(wrong, AlertingConfig(), store, T0)
    assert error.status == "error" and error.reason is not None and "region" in error.reason


def test_budget_history_follows_the_segment_with_the_least_left() -> None:
    store = _store()
    now = T0 + 60 * MINUTE_NS
    history = budget_history(BY_TIER, store, now)
    assert history.slo == "by-tier" and history.segment == {"tier": "pro"}
    assert now - MINUTE_NS <= history.points[-1].at_ns <= now
    assert len(history.points) <= 24
    assert history.points[-1].remaining < history.points[0].remaining <= 1.0


def test_budget_history_is_empty_without_events() -> None:
    empty = InMemoryImpactStore()
    empty.declare("checkout", dimensions=("tier",))
    history = budget_history(BY_TIER, empty, T0)
    assert history.points == () and history.segment == {}


def test_alert_states_fire_resolve_and_keep_the_timeline() -> None:
    store = _store()
    clock = ManualClock(start_ns=T0)
    states = AlertStates(AlertingConfig(), clock)
    outgoing: list[Notification] = []
    now = T0 + 60 * MINUTE_NS
    firing = evaluate_slo(BY_TIER, AlertingConfig(), store, now)
    for segment in firing.segments:
        states.update(BY_TIER, segment, now, None, outgoing)
    (fired,) = outgoing
    assert fired.labels["tier"] == "pro" and not fired.resolved
    assert states.keys("by-tier") == [("pro",)]
    active = states.active("by-tier", ("pro",))
    assert active is not None and active.labels == fired.labels

    later = now + 4 * 24 * 60 * MINUTE_NS
    quiet = evaluate_slo(BY_TIER, AlertingConfig(), store, later, also=states.keys("by-tier"))
    outgoing.clear()
    (pro,) = [s for s in quiet.segments if s.key == ("pro",)]
    states.update(BY_TIER, pro, later, "spans dropped", outgoing)
    assert states.active("by-tier", ("pro",)) is not None  # held: incomplete telemetry is no recovery
    states.update(BY_TIER, pro, later, None, outgoing)
    assert states.active("by-tier", ("pro",)) is None
    assert outgoing[-1].resolved
    events = [(t.event, t.at_ns) for t in states.timeline(T0, later + 1, task="checkout")]
    assert events == [("fired", now), ("resolved", later)]
    assert states.timeline(T0, later + 1, task="other") == []
