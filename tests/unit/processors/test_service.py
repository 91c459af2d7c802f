"""The service in-process: the hooks other components use (analyzers, admin routes, config), lifecycle."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web
from grpc import aio
from prometheus_client import CollectorRegistry
from support.otlp_requests import make_request

from otel_impact.processors.batch import TraceBatch
from otel_impact.processors.intake.grpc_receiver import SERVICE
from otel_impact.processors.serve_config import Overrides, load_config
from otel_impact.processors.service import ProcessorService

LOOPBACK = Overrides(otlp_grpc="127.0.0.1:0", otlp_http="127.0.0.1:0", admin="127.0.0.1:0")


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.batches: list[TraceBatch] = []

    def analyze(self, batch: TraceBatch) -> None:
        self.batches.append(batch)


def test_analyzers_and_admin_routes_plug_in_and_shutdown_is_idempotent() -> None:
    recorder = Recorder()

    async def impact(request: web.Request) -> web.Response:
        return web.json_response({"batches": len(recorder.batches)})

    async def scenario() -> tuple[int, dict[str, int], int]:
        service = ProcessorService(load_config(LOOPBACK, environ={}), registry=CollectorRegistry())
        service.add_analyzer(recorder)
        service.admin.add_routes(lambda app: app.router.add_get("/api/v1/impact", impact))
        await service.start()
        try:
            async with aio.insecure_channel(f"127.0.0.1:{service.ports['otlp_grpc']}") as channel:
                await channel.unary_unary(f"/{SERVICE}/Export")(make_request(4))
            async with aiohttp.ClientSession() as session:
                base = f"http://127.0.0.1:{service.ports['admin']}"
                async with session.get(base + "/api/v1/impact") as response:
                    answer = await response.json()
                async with session.get(base + "/readyz") as response:
                    ready = response.status
            with pytest.raises(RuntimeError, match="before the admin server starts"):
                service.admin.add_routes(lambda app: None)
        finally:
            await service.shutdown()
            await service.shutdown()  # a second call is harmless
        return ready, answer, len(recorder.batches)

    ready, answer, batches = asyncio.run(scenario())
    assert ready == 200 and answer == {"batches": 1} and batches == 1
    batch = recorder.batches[0]
    assert batch.transport == "grpc" and batch.span_count == 4 and batch.received_ns > 0


def test_shutdown_without_start_is_harmless() -> None:
    async def scenario() -> None:
        service = ProcessorService(load_config(LOOPBACK, environ={}), registry=CollectorRegistry())
        await service.shutdown()

    asyncio.run(scenario())


def test_a_second_process_cannot_share_the_state_directory(tmp_path: object) -> None:
    async def scenario() -> str:
        overrides = Overrides(
            otlp_grpc="127.0.0.1:0",
            otlp_http="none",
            admin="none",
            forward=("grpc://127.0.0.1:1",),
            state_dir=str(tmp_path),
        )
        first = ProcessorService(load_config(overrides, environ={}), registry=CollectorRegistry())
        second = ProcessorService(load_config(overrides, environ={}), registry=CollectorRegistry())
        await first.start()
        try:
            with pytest.raises(OSError) as raised:
                await second.start()
            return str(raised.value)
        finally:
            await first.shutdown()
            await second.shutdown()

    assert "another otel-impact serve is using --state" in asyncio.run(scenario())
