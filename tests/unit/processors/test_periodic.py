"""`Periodic`: repeated work on the event loop that survives its own failures and stops cleanly."""

from __future__ import annotations

import asyncio
import logging

import pytest

from otel_impact.processors.periodic import Periodic


def test_runs_plain_and_async_work_and_keeps_going_after_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def flaky() -> None:
        calls.append("plain")
        if len(calls) == 1:
            raise RuntimeError("checkpoint failed")

    async def awaited() -> None:
        calls.append("async")

    async def scenario() -> None:
        loops = [Periodic("flaky work", 0.01, flaky), Periodic("async work", 0.01, awaited)]
        for loop in loops:
            loop.start()
            loop.start()  # a second start does not start a second loop
        await asyncio.sleep(0.2)
        for loop in loops:
            await loop.stop()
            await loop.stop()
        stopped_at = len(calls)
        await asyncio.sleep(0.05)
        assert len(calls) == stopped_at, "no round runs after stop"

    with caplog.at_level(logging.ERROR, logger="otel_impact.processor"):
        asyncio.run(scenario())
    assert calls.count("plain") >= 3 and calls.count("async") >= 3
    assert [r.getMessage() for r in caplog.records] == ["otel-impact: flaky work failed; trying again in 0.01s"]


def test_stop_before_start_and_a_bad_interval() -> None:
    asyncio.run(Periodic("idle", 1.0, lambda: None).stop())
    with pytest.raises(ValueError, match="interval must be positive"):
        Periodic("never", 0, lambda: None)
