"""Analysis in worker processes (issue 14): the known truth holds with workers on, nothing is
lost uncounted when a ring is full or a worker dies, and the answers say when spans went
unanalysed. The workers are real processes fed through real shared memory."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
from support import sli_workload
from support.known_truth import CONFIG, START, check_answers
from support.otlp_traces import batch, request, span

from otel_impact.processors.analysis.pool import AnalysisPool
from otel_impact.processors.analysis.settings import AnalysisConfig
from otel_impact.processors.api.documents import impact_document
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.queries import SliQueries
from otel_impact.proto.view import count_spans

MINUTE = sli_workload.MINUTE
END = START + 31 * MINUTE


@pytest.fixture(scope="module")
def workload() -> tuple[list[tuple[int, bytes]], sli_workload.Truth]:
    return sli_workload.build(START)


def task_events_of(requests: list[tuple[int, bytes]]) -> int:
    """The task events in ``requests``, as the engine counts them in process."""
    engine = SliEngine(SliConfig.from_mapping(CONFIG), clock=ManualClock(start_ns=START))
    for received_ns, data in requests:
        engine.analyze(batch(data, received_ns))
    return engine.task_events


class Pooled:
    """An SLI engine fed through an `AnalysisPool` of real worker processes."""

    def __init__(self, workers: int, buffer_bytes: int = 64 << 20) -> None:
        self.clock = ManualClock(start_ns=START)
        self.engine = SliEngine(SliConfig.from_mapping(CONFIG), clock=self.clock)
        config = AnalysisConfig(workers=workers, buffer_bytes=buffer_bytes, catch_up_timeout_s=60.0)
        self.pool = AnalysisPool(self.engine, config)
        self.queries = SliQueries(self.engine)

    async def feed(self, requests: list[tuple[int, bytes]], *, pace: bool = True) -> None:
        """Hand every request to the pool; with ``pace``, wait whenever much is in flight (the
        way a sender is slowed by its own round trips), so no ring ever fills."""
        for received_ns, data in requests:
            self.clock.advance(max(0.0, (received_ns - self.clock.now_ns()) / 1e9))
            if pace:
                while self.pool.buffered_spans > 20_000:
                    await asyncio.sleep(0.002)
            self.pool.analyze(batch(data, received_ns))
            await asyncio.sleep(0)

    def impact(self) -> dict[str, Any]:
        return impact_document(self.queries.impact("checkout", START, END))

    def worker_pids(self) -> list[int]:
        return [worker.process.pid for worker in self.pool._workers if worker.process is not None]


def test_known_truth_holds_with_two_workers(workload: Any) -> None:
    requests, truth = workload

    async def body() -> None:
        pooled = Pooled(workers=2)
        await pooled.pool.start()
        try:
            await pooled.feed(requests)
            assert await pooled.pool.caught_up()
            check_answers(pooled.queries, truth, START)
            in_process = SliEngine(SliConfig.from_mapping(CONFIG), clock=pooled.clock)
            for received_ns, data in requests:
                in_process.analyze(batch(data, received_ns))
            lag = pooled.queries.pipeline_lag("checkout", START, END)
            assert lag == SliQueries(in_process).pipeline_lag("checkout", START, END)  # lags crossed intact
            assert lag.p50_s is not None
            assert pooled.pool.unanalysed == {"buffer_full": 0, "worker_restart": 0, "unparseable": 0}
            assert pooled.engine.batches == len(requests)
            assert pooled.engine.errors == 0
        finally:
            await pooled.pool.stop()

    asyncio.run(body())


def test_stopping_folds_in_everything_handed_off(workload: Any) -> None:
    async def body() -> None:
        requests, _ = workload
        pooled = Pooled(workers=1)
        await pooled.pool.start()
        await pooled.feed(requests[:40])
        await pooled.pool.stop()  # no waiting for results first: stop must fold them in
        expected = task_events_of(requests[:40])
        assert (pooled.engine.task_events, pooled.pool.unanalysed) == (
            expected,
            {"buffer_full": 0, "worker_restart": 0, "unparseable": 0},
        )

    asyncio.run(body())


def test_a_full_ring_is_counted_and_flagged_and_nothing_else_is_lost(workload: Any) -> None:
    async def body() -> None:
        requests, _ = workload
        pooled = Pooled(workers=1, buffer_bytes=1 << 20)
        await pooled.pool.start()
        try:
            assert await pooled.pool.caught_up()
            (pid,) = pooled.worker_pids()
            os.kill(pid, signal.SIGSTOP)  # analysis falls behind: nothing is taken off the ring
            try:
                await pooled.feed(requests[:60], pace=False)
            finally:
                os.kill(pid, signal.SIGCONT)
            assert await pooled.pool.caught_up()
            full = pooled.pool.unanalysed["buffer_full"]
            assert full > 0
            sent = sum(count_spans(data) for _, data in requests[:60])
            assert pooled.pool.analysed_spans + full == sent  # every span analysed or counted
            assert 0 < pooled.engine.task_events < task_events_of(requests[:60])
            document = pooled.impact()
            assert document["telemetry"]["complete"] is False
            assert "buffer was full" in document["telemetry"]["reason"]
            assert document["estimates_are_lower_bounds"] is True
        finally:
            await pooled.pool.stop()

    asyncio.run(body())


def test_a_killed_worker_is_restarted_and_what_it_held_is_counted(
    workload: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        requests, _ = workload
        pooled = Pooled(workers=1)
        await pooled.pool.start()
        try:
            assert await pooled.pool.caught_up()
            (pid,) = pooled.worker_pids()
            os.kill(pid, signal.SIGSTOP)
            await pooled.feed(requests[:20], pace=False)
            held = pooled.pool.buffered_spans
            assert held > 0
            os.kill(pid, signal.SIGKILL)
            for _ in range(500):
                if pooled.pool.restarts and pooled.worker_pids() != [pid] and pooled.pool._workers[0].alive:
                    break
                await asyncio.sleep(0.02)
            assert pooled.pool.restarts == 1
            assert pooled.pool.unanalysed["worker_restart"] == held
            assert pooled.pool.analysed_spans + held == sum(count_spans(data) for _, data in requests[:20])
            assert "analysis worker 0 exited" in caplog.text
            # The restarted worker analyses what comes next.
            before = pooled.engine.task_events
            await pooled.feed(requests[20:30])
            assert await pooled.pool.caught_up()
            expected = task_events_of(requests[20:30])
            assert pooled.engine.task_events - before == expected
            assert "worker was restarting" in pooled.impact()["telemetry"]["reason"]
        finally:
            await pooled.pool.stop()

    asyncio.run(body())


def test_unparseable_bytes_are_counted_not_fatal() -> None:
    async def body() -> None:
        pooled = Pooled(workers=1)
        await pooled.pool.start()
        try:
            good = request([span(end_ns=START, attributes={"impact.task.name": "checkout"})])
            pooled.pool.analyze(batch(good, START))
            broken = batch(good, START)
            object.__setattr__(broken, "data", b"\x0a\xff\xff\xff")  # a length past the end
            object.__setattr__(broken, "span_count", 3)
            pooled.pool.analyze(broken)
            pooled.pool.analyze(batch(good, START))
            assert await pooled.pool.caught_up()
            assert pooled.pool.unanalysed["unparseable"] == 3
            assert pooled.engine.task_events == 2
            assert pooled.pool.restarts == 0
        finally:
            await pooled.pool.stop()

    asyncio.run(body())
