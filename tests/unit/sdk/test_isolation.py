"""Context never leaks across requests on a reused thread or asyncio task."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_impact
from otel_impact import ImpactSpanProcessor


@pytest.fixture
def tracer(provider: TracerProvider, hash_key: str) -> trace.Tracer:
    provider.add_span_processor(ImpactSpanProcessor())
    return provider.get_tracer("test")


def handle_request(tracer: trace.Tracer, customer: str | None, tier: str | None) -> None:
    """What a server instrumentation does: a server span made current for the request."""
    with tracer.start_as_current_span(f"request {customer}", kind=trace.SpanKind.SERVER):
        if customer is not None:
            otel_impact.set_customer(customer, tier=tier)
            otel_impact.set_feature_flag("exp", customer)
        with tracer.start_as_current_span(f"work {customer}"):
            pass


def test_reused_thread_does_not_leak(tracer: trace.Tracer, exporter: InMemorySpanExporter) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(handle_request, tracer, "alice", "pro").result()
        pool.submit(handle_request, tracer, None, None).result()  # same thread, anonymous request
        leftover = pool.submit(lambda: dict(baggage.get_all())).result()
    anonymous = [s for s in exporter.get_finished_spans() if s.name.endswith("None")]
    assert len(anonymous) == 2
    for span in anonymous:
        assert not any(key.startswith("impact.") for key in (span.attributes or {}))
    assert leftover == {}


def test_concurrent_threads_keep_their_own_customer(tracer: trace.Tracer, exporter: InMemorySpanExporter) -> None:
    barrier = threading.Barrier(8)

    def run(i: int) -> None:
        with tracer.start_as_current_span(f"request c{i}"):
            otel_impact.set_customer(f"c{i}", tier=f"t{i}")
            barrier.wait()
            with tracer.start_as_current_span(f"work c{i}"):
                pass

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for span in exporter.get_finished_spans():
        assert span.attributes["impact.customer.tier"] == "t" + span.name.split(" c")[1]  # type: ignore[index]


def test_asyncio_tasks_are_isolated(tracer: trace.Tracer, exporter: InMemorySpanExporter) -> None:
    async def request(i: int) -> None:
        with tracer.start_as_current_span(f"request c{i}"):
            otel_impact.set_customer(f"c{i}", tier=f"t{i}")
            await asyncio.sleep(0.001 * (5 - i))
            with tracer.start_as_current_span(f"work c{i}"):
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(request(i) for i in range(5)))

    asyncio.run(main())
    spans = exporter.get_finished_spans()
    assert len(spans) == 10
    for span in spans:
        assert span.attributes["impact.customer.tier"] == "t" + span.name.split(" c")[1]  # type: ignore[index]


def test_reused_asyncio_task_does_not_leak(tracer: trace.Tracer, exporter: InMemorySpanExporter) -> None:
    """One long-lived task serving requests one after another, like a keep-alive connection."""

    async def connection() -> None:
        for customer in ("alice", None, "bob", None):
            with tracer.start_as_current_span(f"request {customer}"):
                if customer is not None:
                    otel_impact.set_customer(customer, tier="pro")
                await asyncio.sleep(0)
                with tracer.start_as_current_span(f"work {customer}"):
                    pass

    asyncio.run(connection())
    for span in exporter.get_finished_spans():
        has_customer = "impact.customer.hash" in (span.attributes or {})
        assert has_customer == (not span.name.endswith("None")), span.name
