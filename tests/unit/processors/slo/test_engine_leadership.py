"""The SLO engine with a `Leadership`: only the leader evaluates and delivers, a failover neither
pages twice nor forgets an alert, and a refused save delivers nothing. An in-memory leadership
stands in for Redis here (the Redis one is tested under ``tests/unit/processors/shared``)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from support.impact_store import MINUTE_NS, InMemoryImpactStore
from support.slo_harness import T0, RecordingDispatcher, at, steady_history

from otel_impact.processors.clock import ManualClock
from otel_impact.processors.slo.alert_state import TIMELINE_LENGTH, AlertStateRecord
from otel_impact.processors.slo.alerting_config import AlertingConfig, DeliveryConfig
from otel_impact.processors.slo.config import SloConfig
from otel_impact.processors.slo.engine import SloEngine
from otel_impact.processors.slo.leadership import AlertUpdate, SaveResult, SharedAlerts, SharedStateUnavailable

INTERVAL = AlertingConfig().evaluation_interval
SLO = SloConfig(name="checkout", task="checkout", objective=99.9)


class Board:
    """The shared store: who holds the lease, the fencing counter and the saved alert state."""

    def __init__(self) -> None:
        self.holder: tuple[str, int] | None = None
        self.fence = 0
        self.stored = SharedAlerts()
        self.reachable = True
        self.refuse_next_save = False
        self.break_next_save = False


class FakeLeadership:
    """One replica's `Leadership` over a `Board`, with the contract's semantics."""

    def __init__(self, board: Board, replica: str) -> None:
        self.board = board
        self.replica = replica
        self.released = 0

    def renew_or_acquire(self) -> int | None:
        board = self.board
        if not board.reachable:
            return None
        if board.holder is None:
            board.fence += 1
            board.holder = (self.replica, board.fence)
        return board.holder[1] if board.holder[0] == self.replica else None

    def load(self) -> SharedAlerts:
        if not self.board.reachable:
            raise SharedStateUnavailable("ConnectionError: refused")
        return self.board.stored

    def save(self, update: AlertUpdate, token: int) -> SaveResult:
        board = self.board
        if not board.reachable:
            return "unavailable"
        if board.break_next_save:
            board.break_next_save = False
            raise RuntimeError("a bug in the store")
        if board.refuse_next_save or board.holder != (self.replica, token):
            board.refuse_next_save = False
            return "lease lost"
        timeline = (*board.stored.alerts.timeline, *update.appended)[-TIMELINE_LENGTH:]
        board.stored = SharedAlerts(
            AlertStateRecord(update.active, timeline), update.snapshot, token, update.saved_at_ns
        )
        return "saved"

    def release(self) -> None:
        self.released += 1
        if self.board.holder is not None and self.board.holder[0] == self.replica:
            self.board.holder = None


class OffsetClock(ManualClock):
    """Another process's clock: the same wall time, a different monotonic origin."""

    def monotonic(self) -> float:
        return super().monotonic() + 12_345.0


def failing_store(bad_minutes: int = 65) -> InMemoryImpactStore:
    """2% errors (20x burn: a page from T0+60min) for ``bad_minutes`` from T0, then clean (with
    the default, resolved by T0+70min)."""
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=())
    steady_history(store, "checkout")
    store.traffic("checkout", T0, bad_minutes, good=980, bad=20)
    store.traffic("checkout", T0 + bad_minutes * MINUTE_NS, 60, good=1000)
    return store


class Replica:
    def __init__(self, board: Board, name: str, store: InMemoryImpactStore, clock: ManualClock, **alerting: float):
        self.clock = clock
        self.sent = RecordingDispatcher()
        self.leadership = FakeLeadership(board, name)
        config = AlertingConfig(delivery=DeliveryConfig(**alerting)) if alerting else AlertingConfig()
        self.engine = SloEngine([SLO], config, store, clock=clock, dispatcher=self.sent, leadership=self.leadership)

    def step(self) -> bool:
        return asyncio.run(self.engine.step())


def two_replicas(bad_minutes: int = 65, **alerting: float) -> tuple[Board, Replica, Replica]:
    board, store = Board(), failing_store(bad_minutes)
    return (
        board,
        Replica(board, "a", store, ManualClock(T0), **alerting),
        Replica(board, "b", store, OffsetClock(T0), **alerting),
    )


def move(minutes: float, *replicas: Replica) -> None:
    for replica in replicas:
        at(replica.clock, minutes)


def test_only_the_leader_evaluates_and_delivers_and_followers_serve_its_state() -> None:
    _, a, b = two_replicas(resend_interval=3600.0)
    nothing = b.engine.snapshot()
    assert [(s["name"], s["status"]) for s in nothing["slos"]] == [("checkout", "no_data")]
    assert nothing["shared_state"]["leader"] is False

    move(60, a, b)
    assert a.step() is True
    assert b.step() is False
    (page,) = a.sent.take()
    assert (page.labels["severity"], page.resolved) == ("page", False)
    assert b.sent.take() == []
    assert (a.engine.evaluations, b.engine.evaluations) == (1, 0)

    leader_doc, follower_doc = a.engine.snapshot(), b.engine.snapshot()
    assert leader_doc["shared_state"] == {"leader": True, "reachable": True, "reason": None}
    assert follower_doc["shared_state"] == {"leader": False, "reachable": True, "reason": None}
    assert {k: v for k, v in follower_doc.items() if k != "shared_state"} == {
        k: v for k, v in leader_doc.items() if k != "shared_state"
    }
    assert follower_doc["slos"][0]["alert_state"] == "page"
    span = (T0, T0 + 120 * MINUTE_NS)
    assert [t.event for t in b.engine.timeline(*span)] == ["fired"] == [t.event for t in a.engine.timeline(*span)]
    assert b.engine.timeline(*span, task="other") == []


def test_failover_keeps_the_alert_without_paging_twice_and_the_new_leader_resolves_it() -> None:
    board, a, b = two_replicas(resend_interval=3600.0)
    move(60, a, b)
    a.step(), b.step()
    assert len(a.sent.take()) == 1
    fired = a.engine.snapshot()["slos"][0]["segments"][0]["alert"]

    board.holder = None  # a stops renewing: its lease runs out
    move(61, a, b)
    assert b.step() is True
    assert b.sent.take() == []  # the page a sent is not sent again
    taken_over = b.engine.snapshot()["slos"][0]["segments"][0]["alert"]
    assert (taken_over["fingerprint"], taken_over["starts_at"]) == (fired["fingerprint"], fired["starts_at"])
    assert a.step() is False  # a is back: it follows, and delivers nothing
    assert a.sent.take() == []

    move(70, a, b)
    assert b.step() is True
    (resolved,) = b.sent.take()
    assert resolved.resolved and resolved.fingerprint == fired["fingerprint"]
    a.step()
    assert a.sent.take() == []
    assert [t.event for t in a.engine.timeline(T0, T0 + 120 * MINUTE_NS)] == ["fired", "resolved"]


def test_a_new_leader_re_sends_a_firing_alert_on_the_old_leaders_schedule() -> None:
    board, a, b = two_replicas(bad_minutes=120, resend_interval=600.0)
    move(60, a, b)
    a.step()
    (page,) = a.sent.take()
    board.holder = None
    move(65, a, b)  # b takes over 5 minutes after a sent the page: not due again
    assert b.step() is True
    assert b.sent.take() == []
    move(69.5, a, b)
    b.step()
    assert b.sent.take() == []
    move(70.5, a, b)  # 10 minutes after a sent it (on b's clock, whose monotonic origin differs)
    b.step()
    (again,) = b.sent.take()
    assert (again.fingerprint, again.resolved, again.starts_at_ns) == (page.fingerprint, False, page.starts_at_ns)


def test_a_refused_save_delivers_nothing_and_the_next_lead_sends_it() -> None:
    board, a, _ = two_replicas(resend_interval=3600.0)
    board.refuse_next_save = True
    move(60, a)
    assert a.step() is False
    assert a.sent.take() == []
    assert (a.engine.unsaved_evaluations, a.engine.leader_token) == (1, None)
    assert board.stored.snapshot is None

    assert a.step() is True  # still holds the lease: reloads what is stored and evaluates again
    (page,) = a.sent.take()
    assert not page.resolved
    assert len(board.stored.alerts.active) == 1


def test_a_step_that_fails_midway_reloads_before_leading_again() -> None:
    board, a, _ = two_replicas(resend_interval=3600.0)
    board.break_next_save = True
    move(60, a)
    with pytest.raises(RuntimeError, match="bug"):
        a.step()
    assert (a.sent.take(), a.engine.leader_token) == ([], None)
    move(61, a)
    assert a.step() is True
    (page,) = a.sent.take()  # the page of the failed step was never saved as sent: it goes out now
    assert not page.resolved


def test_an_unreachable_store_means_no_leader_and_a_stale_marked_snapshot() -> None:
    board, a, b = two_replicas(resend_interval=3600.0)
    move(60, a, b)
    a.step(), b.step()
    a.sent.take()
    board.reachable = False
    move(61, a, b)
    assert a.step() is False and b.step() is False
    assert a.sent.take() == [] == b.sent.take()
    for replica in (a, b):
        doc = replica.engine.snapshot()
        assert doc["shared_state"]["reachable"] is False
        assert doc["shared_state"]["reason"].startswith("shared state unreachable")
        assert doc["slos"][0]["alert_state"] == "page"  # the last state known is still served
    assert b.engine.shared_read_failures == 1


def test_evaluate_and_step_are_for_one_mode_each() -> None:
    _, a, _ = two_replicas()
    with pytest.raises(RuntimeError, match="step"):
        a.engine.evaluate()
    plain = SloEngine([SLO], AlertingConfig(), failing_store(), clock=ManualClock(T0))
    with pytest.raises(RuntimeError, match="evaluate"):
        asyncio.run(plain.step())


def test_the_loop_steps_three_times_per_interval_and_releases_the_lease_at_shutdown() -> None:
    board, a, _ = two_replicas()
    slept: list[float] = []

    async def scenario() -> None:
        async def sleep(seconds: float) -> None:
            slept.append(seconds)
            a.clock.advance(seconds)
            if len(slept) == 6:
                a.engine._stop.set()
            await asyncio.sleep(0)

        move(60, a)
        await a.engine.start(sleep=sleep)
        while len(slept) < 6:
            await asyncio.sleep(0.01)
        await a.engine.aclose()

    asyncio.run(scenario())
    assert slept == [INTERVAL / 3] * 6
    assert a.engine.evaluations == 2  # every third step: an interval has passed
    assert (a.leadership.released, board.holder) == (1, None)


def test_export_and_restore_round_trip() -> None:
    _, a, _ = two_replicas()
    move(60, a)
    a.step()
    record = a.engine.alerts.export(a.clock.now_ns())
    assert len(record.active) == 1 and len(record.timeline) == 1
    other = SloEngine([SLO], AlertingConfig(), failing_store(), clock=OffsetClock(T0 + 60 * MINUTE_NS))
    other.alerts.restore(record, other.clock.now_ns())
    assert other.alerts.export(other.clock.now_ns()) == record
    assert other.alerts.transitions_since(other.alerts.mark) == ((), other.alerts.mark)
    moved = replace(record.active[0], held="telemetry incomplete")
    other.alerts.restore(AlertStateRecord((moved,), ()), other.clock.now_ns())
    (active,) = other.alerts.export(other.clock.now_ns()).active
    assert active.held == "telemetry incomplete"
