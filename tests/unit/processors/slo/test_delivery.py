"""Alert delivery over real HTTP on loopback: retries with backoff, Retry-After, rejection,
giving up, coalescing by fingerprint, bounded queues, and a failing receiver that blocks nothing.

Time is the injected clock; the dispatcher's waits go through a fake sleep that advances it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from otel_impact.processors import retry
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.export import retry as export_retry
from otel_impact.processors.slo import delivery
from otel_impact.processors.slo.alerting_config import DeliveryConfig
from otel_impact.processors.slo.alerts import Notification, fingerprint
from otel_impact.processors.slo.delivery import AlertDispatcher, AlertmanagerReceiver, WebhookReceiver

T = 1_700_000_000 * 10**9


def note(name: str = "a", *, resolved: bool = False, score: str = "1") -> Notification:
    labels = {"alertname": "ImpactSLOBurnRate", "slo": name, "severity": "page"}
    return Notification(labels, {"impact_score": score}, T, T + 60 * 10**9, resolved, {"impact": {"score": score}})


class Receiver:
    """A scripted HTTP receiver: answers each request with the next (status, headers), then 200."""

    def __init__(self, script: list[tuple[int, dict[str, str]]] | None = None, *, hang: bool = False) -> None:
        self.script = list(script or [])
        self.hang = hang
        self.release = asyncio.Event()
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.arrived = asyncio.Event()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.json()))
        self.arrived.set()
        if self.hang:
            await self.release.wait()
        status, headers = self.script.pop(0) if self.script else (200, {})
        return web.Response(status=status, headers=headers, text="" if status < 300 else f"refused with {status}")

    async def start(self) -> None:
        await self.server.start_server()
        self.url = str(self.server.make_url("")).rstrip("/")


class FakeSleep:
    """Records each wait and moves the clock instead of sleeping; ``during`` runs inside the wait."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.waits: list[float] = []
        self.during: Callable[[], None] | None = None

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)
        if self.during is not None:
            self.during()
            self.during = None
        await asyncio.sleep(0)


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


def _dispatcher(receivers: list[Any], clock: ManualClock, sleep: FakeSleep, **config: Any) -> AlertDispatcher:
    return AlertDispatcher(receivers, DeliveryConfig(**config), clock, sleep=sleep, rng=random.Random(7))


@dataclass
class Delivered:
    """What one notification's delivery did: the dispatcher's sleeps, its stats and the requests seen."""

    waits: list[float]
    stats: dict[str, int]
    requests: list[Any]


def _deliver_one(answers: list[tuple[int, dict[str, str]]]) -> Delivered:
    """Deliver one notification to an Alertmanager that gives ``answers`` first, then accepts."""
    delivered = Delivered([], {}, [])

    async def scenario() -> None:
        receiver = Receiver(answers)
        await receiver.start()
        clock = ManualClock()
        sleep = FakeSleep(clock)
        dispatcher = _dispatcher([AlertmanagerReceiver(receiver.url)], clock, sleep)
        await dispatcher.start()
        dispatcher.submit([note()])
        await dispatcher.wait_idle()
        await dispatcher.aclose()
        await receiver.server.close()
        delivered.waits.extend(sleep.waits)
        delivered.stats.update(dispatcher.stats()[f"alertmanager {receiver.url}"])
        delivered.requests.extend(receiver.requests)

    run(scenario)
    return delivered


def test_retries_with_exponential_backoff_until_accepted() -> None:
    delivered = _deliver_one([(503, {}), (502, {}), (200, {})])
    assert len(delivered.requests) == 3
    first, second = delivered.waits
    assert 0.8 <= first <= 1.2 and 1.6 <= second <= 2.4  # 1s then 2s, with ±20% jitter
    stats = delivered.stats
    assert (stats["sent"], stats["retries"], stats["failed"], stats["queued"]) == (1, 2, 0, 0)
    assert delivered.requests[-1][1] == [note().alertmanager_json()]


def _deliver_once_after(status: int, headers: dict[str, str]) -> list[float]:
    """The waits before a receiver that first answers ``status`` with ``headers`` accepts."""
    delivered = _deliver_one([(status, headers)])
    assert len(delivered.requests) == 2
    return delivered.waits


def test_retry_after_is_honoured() -> None:
    waits = _deliver_once_after(429, {"Retry-After": "7"})
    assert waits == [7.0]


def test_retry_after_as_an_http_date_is_honoured() -> None:
    waits = _deliver_once_after(503, {"Retry-After": email.utils.formatdate(time.time() + 30, usegmt=True)})
    [wait] = waits
    assert 25.0 <= wait <= 30.0  # the date is whole seconds; the request took a moment


def test_an_invalid_retry_after_falls_back_to_backoff() -> None:
    waits = _deliver_once_after(429, {"Retry-After": "-5"})
    [wait] = waits
    assert 0.8 <= wait <= 1.2  # the first backoff step, as if no header had come


def test_delivery_and_span_export_share_one_retry_policy() -> None:
    assert delivery.parse_retry_after is retry.parse_retry_after is export_retry.parse_retry_after
    assert delivery.Backoff is retry.Backoff is export_retry.Backoff


def test_a_client_error_is_rejected_at_once_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        receiver = Receiver([(400, {})])
        await receiver.start()
        clock = ManualClock()
        sleep = FakeSleep(clock)
        dispatcher = _dispatcher([AlertmanagerReceiver(receiver.url)], clock, sleep)
        await dispatcher.start()
        with caplog.at_level(logging.ERROR, logger="otel_impact.slo.delivery"):
            dispatcher.submit([note()])
            await dispatcher.wait_idle()
        await dispatcher.aclose()
        await receiver.server.close()
        assert sleep.waits == []
        stats = dispatcher.stats()[f"alertmanager {receiver.url}"]
        assert (stats["rejected"], stats["sent"]) == (1, 0)
        assert "HTTP 400: refused with 400" in caplog.text

    run(scenario)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("down", ["503", "refused"])
def test_gives_up_after_max_elapsed_and_counts_it(down: str, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        receiver = Receiver([(503, {})] * 10)
        await receiver.start()
        url = receiver.url if down == "503" else f"http://127.0.0.1:{_closed_port()}"
        clock = ManualClock()
        sleep = FakeSleep(clock)
        dispatcher = _dispatcher([AlertmanagerReceiver(url)], clock, sleep, max_elapsed=10.0)
        await dispatcher.start()
        with caplog.at_level(logging.WARNING, logger="otel_impact.slo.delivery"):
            dispatcher.submit([note()])
            await dispatcher.wait_idle()
        await dispatcher.aclose()
        await receiver.server.close()
        # Waits of about 1, 2 and 4 seconds; the next (about 8) would pass 10 s in all, so it gives up.
        assert len(sleep.waits) == 3
        stats = dispatcher.stats()[f"alertmanager {url}"]
        assert (stats["failed"], stats["retries"], stats["sent"]) == (1, 3, 0)
        assert "giving up on 1 alert(s)" in caplog.text

    run(scenario)


def test_a_newer_state_of_the_same_alert_replaces_the_one_being_retried() -> None:
    async def scenario() -> None:
        receiver = Receiver([(503, {})])
        await receiver.start()
        clock = ManualClock()
        sleep = FakeSleep(clock)
        dispatcher = _dispatcher([AlertmanagerReceiver(receiver.url)], clock, sleep)
        await dispatcher.start()
        sleep.during = lambda: dispatcher.submit([note(resolved=True)])
        dispatcher.submit([note()])
        await dispatcher.wait_idle()
        await dispatcher.aclose()
        await receiver.server.close()
        (failed, delivered) = [body for _, body in receiver.requests]
        assert failed == [note().alertmanager_json()]
        assert delivered == [note(resolved=True).alertmanager_json()]  # the firing state was not re-sent
        stats = dispatcher.stats()[f"alertmanager {receiver.url}"]
        assert (stats["superseded"], stats["sent"], stats["submitted"]) == (1, 1, 2)

    run(scenario)


def test_a_full_queue_drops_counts_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        receiver = Receiver()
        await receiver.start()
        clock = ManualClock()
        dispatcher = _dispatcher([AlertmanagerReceiver(receiver.url)], clock, FakeSleep(clock), queue_size=2)
        await dispatcher.start()
        with caplog.at_level(logging.WARNING, logger="otel_impact.slo.delivery"):
            dispatcher.submit([note(name) for name in "abcde"])  # the worker has not run yet
            dispatcher.submit([note("a", score="2")])  # same alert as one queued: replaces it, no drop
        await dispatcher.wait_idle()
        await dispatcher.aclose()
        await receiver.server.close()
        stats = dispatcher.stats()[f"alertmanager {receiver.url}"]
        assert (stats["dropped_overflow"], stats["superseded"], stats["sent"]) == (3, 1, 2)
        (body,) = [body for _, body in receiver.requests]
        assert [alert["labels"]["slo"] for alert in body] == ["b", "a"]
        assert body[1]["annotations"]["impact_score"] == "2"
        assert "queue of alertmanager" in caplog.text and "is full" in caplog.text

    run(scenario)


def test_a_hanging_receiver_delays_nobody_else() -> None:
    async def scenario() -> None:
        stuck = Receiver(hang=True)
        healthy = Receiver()
        for receiver in (stuck, healthy):
            await receiver.start()
        clock = ManualClock()
        dispatcher = _dispatcher(
            [AlertmanagerReceiver(stuck.url), WebhookReceiver(healthy.url)], clock, FakeSleep(clock)
        )
        await dispatcher.start()
        dispatcher.submit([note()])  # returns at once: it only queues
        await asyncio.wait_for(stuck.arrived.wait(), 10)
        await asyncio.wait_for(healthy.arrived.wait(), 10)
        dispatcher.submit([note("b")])  # still accepted while the first receiver hangs
        stats = dispatcher.stats()
        assert stats[f"alertmanager {stuck.url}"]["sent"] == 0
        assert stats[f"alertmanager {stuck.url}"]["queued"] == 1
        await dispatcher.aclose(timeout=0)  # shutdown does not wait for the stuck receiver either
        stuck.release.set()
        for receiver in (stuck, healthy):
            await receiver.server.close()
        assert dispatcher.stats()[f"webhook {healthy.url}"]["sent"] >= 1

    run(scenario)


def test_webhook_body_and_headers() -> None:
    async def scenario() -> None:
        receiver = Receiver()
        await receiver.start()
        clock = ManualClock()
        hook = WebhookReceiver(f"{receiver.url}/hook?team=payments", headers={"Authorization": "Bearer t0ken"})
        dispatcher = _dispatcher([hook], clock, FakeSleep(clock))
        await dispatcher.start()
        dispatcher.submit([note(), note("b", resolved=True)])
        await dispatcher.wait_idle()
        await dispatcher.aclose()
        await receiver.server.close()
        ((headers, body),) = receiver.requests
        assert headers["Authorization"] == "Bearer t0ken"
        assert body["version"] == "1" and body["source"] == "otel-impact"
        firing, resolved = body["alerts"]
        assert firing["status"] == "firing" and resolved["status"] == "resolved"
        assert firing["fingerprint"] == fingerprint(note().labels)
        assert firing["impact"] == {"score": "1"}
        assert firing["startsAt"] == "2023-11-14T22:13:20.000Z"
        assert hook.name == f"webhook {receiver.url}/hook"  # the query string may hold a token: not logged
        json.dumps(body)

    run(scenario)


def test_receiver_names_never_show_credentials() -> None:
    assert AlertmanagerReceiver("http://user:s3cret@am.example:9093/").name == "alertmanager http://am.example:9093"
    hook = WebhookReceiver("https://hooks.example/x?token=s3cret#frag")
    assert hook.name == "webhook https://hooks.example/x"
