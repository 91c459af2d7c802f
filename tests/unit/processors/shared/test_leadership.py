"""Two SLO engines sharing one Redis: exactly one replica alerts, and a failover neither pages
twice nor forgets the active alert.

The engines' clocks are manual (the SLO data and evaluation times are synthetic); the lease's TTL
is real, kept by Redis, so the takeover waits for it to run out.
"""

from __future__ import annotations

import asyncio

from support.impact_store import MINUTE_NS, InMemoryImpactStore
from support.redis_servers import redis_server
from support.slo_harness import T0, RecordingDispatcher, at, steady_history

from otel_impact.processors.clock import ManualClock
from otel_impact.processors.shared.connection import SharedConnection
from otel_impact.processors.shared.keys import SharedKeys
from otel_impact.processors.shared.leadership import SharedLeadership
from otel_impact.processors.shared.settings import RedisAddress, parse_redis_url
from otel_impact.processors.slo.alerting_config import AlertingConfig, DeliveryConfig
from otel_impact.processors.slo.config import SloConfig
from otel_impact.processors.slo.engine import SloEngine

TTL_S = 1.0
"""The lease's real TTL (in production: the evaluation interval)."""
ALERTING = AlertingConfig(delivery=DeliveryConfig(resend_interval=3600.0))
INTERVAL = ALERTING.evaluation_interval
SLO = SloConfig(name="checkout", task="checkout", objective=99.9)


class OffsetClock(ManualClock):
    """Another process's clock: the same wall time, a different monotonic origin."""

    def monotonic(self) -> float:
        return super().monotonic() + 5_000.0


class Replica:
    def __init__(self, name: str, address: RedisAddress, store: InMemoryImpactStore, clock: ManualClock) -> None:
        self.clock = clock
        self.sent = RecordingDispatcher()
        keys = SharedKeys("two-replicas").leader
        self.leadership = SharedLeadership(SharedConnection(address, timeout_s=1.0), keys, name, TTL_S)
        self.engine = SloEngine([SLO], ALERTING, store, clock=clock, dispatcher=self.sent, leadership=self.leadership)


def failing_store() -> InMemoryImpactStore:
    """2% errors (a page from T0+60min) until T0+65min, then clean (resolved by T0+70min)."""
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=())
    steady_history(store, "checkout")
    store.traffic("checkout", T0, 65, good=980, bad=20)
    store.traffic("checkout", T0 + 65 * MINUTE_NS, 60, good=1000)
    return store


def move(minutes: float, *replicas: Replica) -> None:
    for replica in replicas:
        at(replica.clock, minutes)


def test_exactly_one_replica_alerts_and_the_survivor_takes_over_without_paging_twice() -> None:
    with redis_server() as server:
        address, store = parse_redis_url(server.url), failing_store()
        a = Replica("a", address, store, ManualClock(T0))
        b = Replica("b", address, store, OffsetClock(T0))

        async def scenario() -> None:
            move(60, a, b)
            assert await a.engine.step() is True
            assert await b.engine.step() is False
            (page,) = a.sent.take()
            assert (page.labels["severity"], page.resolved) == ("page", False)
            assert b.sent.take() == []
            follower = b.engine.snapshot()
            assert follower["evaluated_at"] == a.engine.snapshot()["evaluated_at"]
            assert follower["slos"][0]["alert_state"] == "page"
            assert follower["shared_state"]["leader"] is False
            assert [t.event for t in b.engine.timeline(T0, T0 + 120 * MINUTE_NS)] == ["fired"]

            # a dies: nobody calls it any more. b steps every third of an interval, as its loop does.
            steps = 0
            while not await b.engine.step():
                steps += 1
                assert steps < 20, "b never took over"
                await asyncio.sleep(TTL_S / 3)
                move(60 + steps * INTERVAL / 3 / 60, b)
            assert steps * INTERVAL / 3 <= 2 * INTERVAL  # within two evaluation intervals
            assert (b.leadership.lease.acquisitions, b.engine.takeovers) == (1, 1)
            assert b.sent.take() == []  # it sees the active alert: no second page
            taken_over = b.engine.snapshot()["slos"][0]["segments"][0]["alert"]
            assert (taken_over["fingerprint"], taken_over["state"]) == (page.fingerprint, "page")

            move(70, a, b)
            assert await b.engine.step() is True
            (resolved,) = b.sent.take()
            assert resolved.resolved and resolved.fingerprint == page.fingerprint

            # a comes back: its lease is gone, so it follows, delivers nothing, and serves b's state.
            assert await a.engine.step() is False
            assert a.sent.take() == []
            assert a.leadership.lease.losses == 1
            assert [t.event for t in a.engine.timeline(T0, T0 + 120 * MINUTE_NS)] == ["fired", "resolved"]
            assert a.engine.snapshot()["slos"][0]["alert_state"] == "ok"

            await b.engine.aclose()  # releases the lease: a takes over at once
            assert await a.engine.step() is True
            assert a.sent.take() == []

        asyncio.run(scenario())
