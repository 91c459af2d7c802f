"""GET /api/v1/slos over real HTTP on loopback, and the engine's evaluation loop."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from support.impact_store import InMemoryImpactStore
from support.slo_harness import T0, make_engine, steady_history

from otel_impact.processors.api.slo_routes import add_routes
from otel_impact.processors.slo import ImpactQueries
from otel_impact.processors.slo.config import SloConfig

SLOS = [
    SloConfig(name="checkout-by-tier", task="checkout", objective=99.9, by=("tier",), team="payments"),
    SloConfig(name="search", task="search", objective=99.5),
]


def _store() -> InMemoryImpactStore:
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=("tier",))
    hour = 60 * 60 * 10**9
    steady_history(store, "checkout", until_ns=T0 - hour, segment={"tier": "pro"})
    store.traffic("checkout", T0 - hour, 60, good=980, bad=20, segment={"tier": "pro"})
    return store


def test_slos_route_serves_every_slo_with_budget_burn_alert_and_score() -> None:
    async def scenario() -> None:
        engine, _, _ = make_engine(_store(), SLOS)
        app = web.Application()
        add_routes(app, engine)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(server.make_url("/api/v1/slos")) as response:
                    assert response.status == 200
                    assert response.content_type == "application/json"
                    body = await response.json()
                async with session.get(server.make_url("/api/v1/slos?name=search")) as response:
                    one = await response.json()
                async with session.get(server.make_url("/api/v1/slos?name=nope")) as response:
                    assert response.status == 404
                    missing = await response.json()
        finally:
            await server.close()
        assert body["evaluated_at"] == "2023-11-14T22:13:00.000Z"
        checkout, search = body["slos"]
        assert (checkout["name"], checkout["status"], checkout["alert_state"]) == ("checkout-by-tier", "ok", "page")
        assert checkout["labels"] == {"team": "payments"}
        (pro,) = checkout["segments"]
        assert pro["segment"] == {"tier": "pro"}
        assert set(pro["burn_rates"]) == {"5m", "30m", "1h", "2h", "6h", "1d", "3d"}
        assert pro["burn_rates"]["1h"] == 20.0
        assert 0 < pro["budget"]["remaining"] < 1
        assert pro["alert"]["state"] == "page" and len(pro["alert"]["fingerprint"]) == 16
        assert pro["impact"]["severity"] == "SEV4" and checkout["score"] == 0.0
        assert (search["status"], search["reason"]) == ("no_data", "no events seen for task 'search' yet")
        assert [slo["name"] for slo in one["slos"]] == ["search"]
        assert "checkout-by-tier" in missing["error"]

    asyncio.run(scenario())


def test_evaluation_loop_runs_on_the_injected_sleep_and_stops() -> None:
    async def scenario() -> None:
        engine, clock, sent = make_engine(_store(), SLOS)
        waits: list[float] = []
        gate = asyncio.Event()

        async def sleep(seconds: float) -> None:
            waits.append(seconds)
            clock.advance(seconds)
            if len(waits) >= 3:
                await gate.wait()
            await asyncio.sleep(0)

        await engine.start(sleep=sleep)
        while len(waits) < 3:
            await asyncio.sleep(0)
        closing = asyncio.create_task(engine.aclose())
        await asyncio.sleep(0)  # aclose has asked the loop to stop
        gate.set()
        await closing
        await engine.aclose()  # idempotent
        # Evaluations at 0 s, 30 s and 60 s: the page fires at 0 s and is re-sent at 60 s (re-send interval).
        assert (engine.evaluations, waits) == (3, [30.0, 30.0, 30.0])
        first, again = sent.sent
        assert first.fingerprint == again.fingerprint and again.ends_at_ns > first.ends_at_ns

    asyncio.run(scenario())


def test_the_test_store_implements_the_contract_protocol() -> None:
    assert isinstance(_store(), ImpactQueries)
