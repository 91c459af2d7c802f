"""Exactly one replica alerts: two `serve` replicas share a real Redis; the leader pages once,
is killed (SIGKILL) while the page is active, and the other takes over without paging again.

That the alert later resolves normally after a failover is tested in-process with a fake clock
(``tests/unit/processors/shared/test_leadership.py``): real burn-rate windows take minutes to
clear, too long for this suite.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from support.processor import Processor, get_json, serve
from support.redis_servers import RedisServer, redis_server
from support.webhook import WebhookSink

import otel_impact

INTERVAL_S = 2
CONFIG = """
sli:
  dimensions:
    - {{name: tier, attribute: impact.customer.tier}}
slos:
  - name: checkout-availability
    task: checkout
    by: [tier]
    objective: 99
    window: 30d
alerting:
  evaluation_interval: {interval}s
  delivery: {{resend_interval: 1h}}
  webhooks:
    - url: {webhook}
"""


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def send_failing_checkouts(processor: Processor) -> None:
    provider = TracerProvider(resource=Resource({"service.name": "checkout"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=processor.grpc_endpoint, insecure=True)))
    otel_impact.configure(provider)
    tracer = provider.get_tracer("test")
    for i in range(300):  # 150 pro events: past the low-traffic guard
        tier = ("free", "pro")[i % 2]
        with tracer.start_as_current_span("POST /checkout"):
            otel_impact.set_customer(f"{tier}-customer-{i}", tier=tier)
            with otel_impact.user_task("checkout", tracer_provider=provider) as task:
                if tier == "pro":
                    task.fail("payment_declined")
    assert provider.force_flush()
    provider.shutdown()


def pages(bodies: list[Any]) -> list[dict[str, Any]]:
    """Every firing notification of the pro segment's alert."""
    return [
        alert
        for body in bodies
        for alert in body["alerts"]
        if alert["status"] == "firing" and alert["labels"].get("tier") == "pro"
    ]


def leads(processor: Processor) -> bool:
    return processor.metric_sum("impact_shared_state_leader") == 1


def test_the_survivor_takes_over_without_paging_twice(redis: RedisServer, hash_key: str) -> None:
    with WebhookSink() as webhook:
        config = CONFIG.format(interval=INTERVAL_S, webhook=webhook.url)
        with (
            serve("--shared-state", redis.url, config=config) as first,
            serve("--shared-state", redis.url, config=config) as second,
        ):
            replicas = [first, second]
            first.wait_for(lambda: sum(leads(r) for r in replicas) == 1, what="one leader")
            send_failing_checkouts(second)
            webhook.wait_for(lambda bodies: len(pages(bodies)) >= 1)
            (leader,) = [r for r in replicas if leads(r)]
            (survivor,) = [r for r in replicas if r is not leader]
            assert leader.metric_sum("otel_impact_alert_notifications_total", outcome="sent") >= 1
            assert survivor.metric_sum("otel_impact_alert_notifications_total", outcome="sent") == 0

            leader.kill()  # during the page: no release of the lease, no goodbye
            killed_at = time.monotonic()
            survivor.wait_for(lambda: leads(survivor), timeout=2 * INTERVAL_S + 5, what="the survivor leads")
            takeover_s = time.monotonic() - killed_at
            # Several evaluations as leader: the active alert is known, so nothing is paged again.
            survivor.wait_for(lambda: survivor.metric_sum("otel_impact_slo_evaluations_total") >= 3, what="evaluations")
            time.sleep(2 * INTERVAL_S)
            assert len(pages(webhook.received())) == 1, webhook.received()
            slo = get_json(survivor, "/api/v1/slos")["slos"][0]
            states = {s["segment"]["tier"]: s["alert"]["state"] for s in slo["segments"]}
            assert states["pro"] == "page" and states["free"] == "ok"
            print(f"takeover after the leader's SIGKILL: {takeover_s:.1f}s (lease TTL {INTERVAL_S}s)")
