"""The decode pool: small bodies on the loop, large ones in a thread (compiled) or a worker, bounded,
errors passed back."""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_impact.processors.intake.decode_pool import Busy, DecodePool
from otel_impact.processors.intake.otlp_json import NATIVE_JSON, InvalidJson


def body(spans: int, last_code: object = 0) -> bytes:
    span = {"name": "GET /checkout", "kind": 2, "status": {"code": 0}}
    listed = [span] * (spans - 1) + [{**span, "status": {"code": last_code}}]
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": listed}]}]}).encode()


def span_count(data: bytes) -> int:
    return len(ExportTraceServiceRequest.FromString(data).resource_spans[0].scope_spans[0].spans)


def test_small_bodies_are_decoded_on_the_loop_and_large_ones_by_a_worker() -> None:
    async def scenario() -> None:
        pool = DecodePool(inline_bytes=1000)
        try:
            assert span_count(await pool.decode(body(2))) == 2 and (pool.offloaded, pool.threaded) == (0, 0)
            assert span_count(await pool.decode(body(200))) == 200
            # the compiled transcoder, where it is in use, takes it in a thread; else a worker does
            assert (pool.offloaded, pool.threaded) == ((0, 1) if NATIVE_JSON else (1, 0))
            with pytest.raises(InvalidJson, match=r"spans\[199\]\.status\.code: 'STATUS_CODE_EROR' is not"):
                await pool.decode(body(200, "STATUS_CODE_EROR"))
            assert pool.threaded == (1 if NATIVE_JSON else 0)  # the compiled side declined: the walk's error
        finally:
            pool.close()

    asyncio.run(scenario())


def test_a_body_beyond_the_workers_and_the_waiting_room_is_refused() -> None:
    async def scenario() -> None:
        pool = DecodePool(workers=1, waiting=1, inline_bytes=0)
        try:
            first = asyncio.ensure_future(pool.decode(body(50)))
            second = asyncio.ensure_future(pool.decode(body(50)))
            await asyncio.sleep(0)  # both are now handed over (one running, one waiting)
            assert pool.pending == 2
            with pytest.raises(Busy):
                await pool.decode(body(50))
            assert [span_count(data) for data in await asyncio.gather(first, second)] == [50, 50]
            assert pool.pending == 0
            assert span_count(await pool.decode(body(3))) == 3  # room again
        finally:
            pool.close()
        pool.close()  # harmless twice

    asyncio.run(scenario())
