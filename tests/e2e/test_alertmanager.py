"""Delivery to a real Alertmanager: the engine's page appears in its /api/v2/alerts, with our
fingerprint, labels and annotations, and leaves it when the engine resolves it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from support.alertmanager import alertmanager
from support.impact_store import MINUTE_NS, InMemoryImpactStore

from otel_impact.processors.clock import ManualClock
from otel_impact.processors.slo import AlertDispatcher, SloEngine, receivers_from_config
from otel_impact.processors.slo.alerting_config import AlertingConfig, DeliveryConfig
from otel_impact.processors.slo.config import SloConfig

pytestmark = pytest.mark.slow


async def _alerts(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with session.get(f"{url}/api/v2/alerts") as response:
        assert response.status == 200
        return list(await response.json())


def test_page_appears_in_alertmanager_and_resolves() -> None:
    with alertmanager() as am:
        # Alertmanager judges startsAt/endsAt by its own clock, so the scenario sits just before now.
        now = time.time_ns() // MINUTE_NS * MINUTE_NS
        store = InMemoryImpactStore()
        store.declare("checkout", dimensions=("tier",))
        pro = {"tier": "pro"}
        store.traffic("checkout", now - 3 * 1440 * MINUTE_NS, 3 * 1440 - 64, good=1000, segment=pro)
        store.traffic("checkout", now - 64 * MINUTE_NS, 60, good=980, bad=20, segment=pro)  # 20x for an hour
        store.traffic("checkout", now - 4 * MINUTE_NS, 4, good=1000, segment=pro)
        store.add("checkout", now - 30 * MINUTE_NS, segment=pro, impacted=[f"u{i}" for i in range(50)], revenue=300)
        slo = SloConfig(
            name="checkout-by-tier",
            task="checkout",
            objective=99.9,
            by=("tier",),
            owner="payments-oncall",
            team="payments",
            route="payments-pager",
            runbook="https://runbooks.example.com/checkout",
        )
        alerting = AlertingConfig(alertmanager_urls=(am.url,), delivery=DeliveryConfig(resend_interval=600.0))
        clock = ManualClock(start_ns=now - 4 * MINUTE_NS)

        async def scenario() -> None:
            dispatcher = AlertDispatcher(receivers_from_config(alerting), alerting.delivery, clock)
            engine = SloEngine([slo], alerting, store, clock=clock, dispatcher=dispatcher)
            await dispatcher.start()
            try:
                engine.evaluate()
                await dispatcher.wait_idle()
                async with aiohttp.ClientSession() as session:
                    (alert,) = await _alerts(session, am.url)
                    doc = engine.snapshot()["slos"][0]["segments"][0]
                    assert alert["fingerprint"] == doc["alert"]["fingerprint"]
                    assert alert["status"]["state"] == "active"
                    assert alert["labels"] == {
                        "alertname": "ImpactSLOBurnRate",
                        "slo": "checkout-by-tier",
                        "task": "checkout",
                        "tier": "pro",
                        "severity": "page",
                        "impact_severity": "SEV2",  # 50 pro users x 3 + 300 x 0.1 = 180
                        "owner": "payments-oncall",
                        "team": "payments",
                        "route": "payments-pager",
                    }
                    assert alert["annotations"]["impact_score"] == "180.0"
                    assert alert["annotations"]["impacted_users"] == "50 (50-50)"
                    assert alert["annotations"]["runbook_url"] == "https://runbooks.example.com/checkout"

                    # Two minutes on, the 5m window holds 3 bad minutes of 5 (12x < 14.4): resolved.
                    clock.advance(120)
                    engine.evaluate()
                    await dispatcher.wait_idle()
                    remaining = [a for a in await _alerts(session, am.url) if a["labels"]["slo"] == "checkout-by-tier"]
                    assert remaining == [], remaining
                assert dispatcher.stats()[f"alertmanager {am.url}"]["sent"] == 2
            finally:
                await dispatcher.aclose()

        asyncio.run(scenario())
