"""The intake side of analysis workers: hand batches off, fold results in, restart the fallen.

`AnalysisPool` is the `BatchAnalyzer` the pipeline calls for every accepted batch when
``analysis.workers`` is 1 or more, and a service component that starts and stops the workers.
Everything here runs on the intake process's event loop and never waits on a worker:

* `analyze` copies the batch into the next worker's ring (round robin, trying the others when
  one is full) and writes its notice; with no room anywhere the batch's spans are counted as
  unanalysed (``buffer_full``) and the state notes them for the answers of that minute;
* each worker's reports are read as they arrive (the event loop watches the pipe) and folded in
  with `SliState.apply`, the one merge path; the ring's bytes are then released;
* a worker that exits is restarted after a short backoff; what its ring held is counted as
  unanalysed (``worker_restart``), and so is what arrives while it is down.

`caught_up` waits (bounded) until every batch handed off before the call has been folded in:
the admin server awaits it before answering, so an answer includes everything accepted before it.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Final

from google.protobuf.message import DecodeError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from otel_impact.processors.batch import TraceBatch
from otel_impact.processors.child_processes import close_pipe, start_child
from otel_impact.processors.sli.engine import SliEngine

from .messages import WorkerReport
from .ring import RingWriter
from .settings import AnalysisConfig
from .sink import AnalyzerCounts, EngineSink, ResultSink
from .worker import WORKER_ENTRY, WorkerSpec

__all__ = ["UNANALYSED_REASONS", "AnalysisPool"]

logger = logging.getLogger("otel_impact.processor")

UNANALYSED_REASONS: Final = ("buffer_full", "worker_restart", "unparseable")
"""Why spans were not analysed: every ring was full; their worker died or was restarting; the
worker could not parse them."""
RESTART_BACKOFF_S: Final = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds before restarting a worker, by how many times it died in a row without reporting."""
_STOP_TIMEOUT_S: Final = 10.0


@dataclass
class _Worker:
    """One worker process and the intake side of its ring and pipes."""

    index: int
    ring: RingWriter
    process: subprocess.Popen[bytes] | None = None
    notices: Connection | None = None
    reports: Connection | None = None
    applied_through: int = 0
    """The last sequence number whose result was folded in."""
    generation: int = 0
    """Incremented at each start: a restart makes older waits moot."""
    failures: int = 0
    """Deaths in a row without a report in between (picks the restart backoff)."""
    errors: int = 0
    bad_spans: int = 0
    value_tally: dict[str, int] | None = None

    @property
    def alive(self) -> bool:
        return self.notices is not None


class AnalysisPool:
    """Analysis in ``config.workers`` worker processes, folded into ``engine``'s state, or handed
    to ``sink`` when one is given (an extra intake process relays them to the main one)."""

    name = "sli"
    needs_view = False
    """The pipeline need not parse batches for this analyzer: the workers do."""

    def __init__(
        self,
        engine: SliEngine,
        config: AnalysisConfig,
        *,
        log_level: int = logging.INFO,
        sink: ResultSink | None = None,
    ) -> None:
        if config.workers < 1:
            raise ValueError("an analysis pool needs at least one worker")
        self.engine = engine
        self.sink = sink if sink is not None else EngineSink(engine)
        self.config = config
        self.log_level = log_level
        self.unanalysed: dict[str, int] = dict.fromkeys(UNANALYSED_REASONS, 0)
        """Spans not analysed, by reason (cumulative)."""
        self.analysed_spans = 0
        """Spans handed to a worker and analysed (cumulative)."""
        self.restarts = 0
        self._workers = [_Worker(index, RingWriter(config.buffer_bytes)) for index in range(config.workers)]
        self._next = 0
        self._progress = asyncio.Event()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._restart_handles: dict[int, asyncio.TimerHandle] = {}

    # -- the analyzer ---------------------------------------------------------------------------

    def analyze(self, batch: TraceBatch) -> None:
        """Hand ``batch`` to a worker, or count its spans as unanalysed. Never waits, never raises."""
        try:
            data = self.engine.analyzer.select(batch.data)  # only the spans that can be task events
        except DecodeError:
            self._not_analysed(batch.span_count, batch.received_ns, "unparseable")
            return
        if not data:  # no task event in it: nothing to hand over
            self.analysed_spans += batch.span_count
            return
        workers = self._workers
        count = len(workers)
        start = self._next
        self._next = (start + 1) % count
        reason = "buffer_full"
        for step in range(count):
            worker = workers[(start + step) % count]
            if worker.notices is None:
                reason = "worker_restart"
                continue
            notice = worker.ring.write(data, batch.span_count, batch.received_ns)
            if notice is None:
                continue
            try:
                worker.notices.send_bytes(notice.pack())
            except OSError:  # the worker is gone: its reports pipe is about to say so
                worker.ring.release(notice.sequence)
                reason = "worker_restart"
                continue
            return
        self._not_analysed(batch.span_count, batch.received_ns, reason)

    def _not_analysed(self, spans: int, received_ns: int, reason: str) -> None:
        if spans:
            self.unanalysed[reason] += spans
            self.sink.note_unanalysed(received_ns, spans, reason)

    def value_tally(self) -> dict[str, int]:
        """Values the workers' analysis could not use as they were (see `SliAnalyzer.value_tally`)."""
        return self.engine.value_tally()

    # -- the component ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for worker in self._workers:
            self._start(worker)
        logger.debug(
            "SLI analysis runs in %d worker process(es), %d MiB of batches buffered each",
            len(self._workers),
            self.config.buffer_bytes >> 20,
        )

    async def stop(self) -> None:
        """Let every worker finish what it was handed, fold its last results in, and free the rings."""
        self._stopping = True
        for handle in self._restart_handles.values():
            handle.cancel()
        self._restart_handles.clear()
        for worker in self._workers:
            if worker.notices is not None:
                worker.notices.close()  # the worker reports what it has, then exits
                worker.notices = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _STOP_TIMEOUT_S
        for worker in self._workers:
            process = worker.process
            while worker.reports is not None and loop.time() < deadline:
                await asyncio.sleep(0.01)  # its reports are read, and its exit seen, on the loop
            if worker.reports is not None:
                logger.warning("analysis worker %d did not stop in time; killing it", worker.index)
                self._retire(worker)
            if process is not None:
                if process.poll() is None:
                    process.kill()
                process.wait()
        for worker in self._workers:
            worker.ring.close()

    def _start(self, worker: _Worker) -> None:
        """Start ``worker``'s process: a fresh interpreter (nothing of this process is re-imported)."""
        assert self._loop is not None
        child = start_child(
            WORKER_ENTRY, WorkerSpec(worker.index, self.engine.config, worker.ring.name, self.log_level)
        )
        process = child.process
        worker.process = process
        worker.notices, worker.reports = child.to_child, child.from_child
        worker.generation += 1
        worker.errors, worker.bad_spans, worker.value_tally = 0, 0, None  # a new process counts from zero
        worker.applied_through = worker.ring.last_sequence
        # The reports pipe ends (EOF) when the worker exits, whatever the way: that is how its death is seen.
        self._loop.add_reader(child.from_child.fileno(), self._read_reports, worker)

    # -- results ---------------------------------------------------------------------------------

    def _read_reports(self, worker: _Worker) -> None:
        reports = worker.reports
        if reports is None:
            return
        try:
            while reports.poll():
                self._fold(worker, pickle.loads(reports.recv_bytes()))
        except (EOFError, OSError):
            self._on_exit(worker)
        except Exception as error:  # a bad report must not stop intake
            logger.error("could not read a report of analysis worker %d: %s", worker.index, error)

    def _fold(self, worker: _Worker, report: WorkerReport) -> None:
        self.sink.apply(report.result)
        self.sink.absorb(
            AnalyzerCounts(
                errors=report.errors - worker.errors,
                bad_spans=report.bad_spans - worker.bad_spans,
                batches=report.batches,
                value_tally=report.value_tally,
                previous_tally=worker.value_tally,
            )
        )
        worker.errors, worker.bad_spans, worker.value_tally = report.errors, report.bad_spans, report.value_tally
        released = worker.ring.release(report.through)
        self.analysed_spans += sum(notice.spans for notice in released) - report.unparseable_spans
        if report.unparseable_spans and released:
            self._not_analysed(report.unparseable_spans, released[-1].received_ns, "unparseable")
        worker.applied_through = report.through
        worker.failures = 0
        self._progress.set()

    # -- failures -------------------------------------------------------------------------------

    def _on_exit(self, worker: _Worker) -> None:
        """``worker``'s reports pipe ended: it exited. Count what it held, restart it after a backoff."""
        process = worker.process
        self._retire(worker)
        if process is None or self._stopping:
            return
        try:
            code: int | None = process.wait(1.0)
        except subprocess.TimeoutExpired:
            process.kill()
            code = None
        self.restarts += 1
        worker.failures += 1
        delay = RESTART_BACKOFF_S[min(worker.failures, len(RESTART_BACKOFF_S)) - 1]
        logger.error("analysis worker %d exited (exit code %s); restarting it in %gs", worker.index, code, delay)
        assert self._loop is not None
        self._restart_handles[worker.index] = self._loop.call_later(delay, self._restart, worker)

    def _retire(self, worker: _Worker) -> None:
        """Stop watching ``worker``'s pipes; count what its ring still held as unanalysed."""
        close_pipe(worker.reports, self._loop)
        close_pipe(worker.notices)
        worker.reports = worker.notices = None
        lost = worker.ring.release_all()
        for notice in lost:
            self._not_analysed(notice.spans, notice.received_ns, "worker_restart")
        if lost and not self._stopping:
            logger.error(
                "analysis worker %d held %d spans that were not analysed (still forwarded)",
                worker.index,
                sum(notice.spans for notice in lost),
            )
        worker.applied_through = worker.ring.last_sequence
        self._progress.set()

    def _restart(self, worker: _Worker) -> None:
        self._restart_handles.pop(worker.index, None)
        if self._stopping:
            return
        try:
            self._start(worker)
        except OSError as error:
            logger.error("could not restart analysis worker %d: %s; retrying", worker.index, error)
            assert self._loop is not None
            self._restart_handles[worker.index] = self._loop.call_later(RESTART_BACKOFF_S[-1], self._restart, worker)

    # -- catching up ----------------------------------------------------------------------------

    async def caught_up(self) -> bool:
        """Wait until every batch handed off so far is folded in (or its worker is gone), at most
        ``analysis.catch_up_timeout``. Returns whether it caught up."""
        targets = [(worker, worker.generation, worker.ring.last_sequence) for worker in self._workers]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.catch_up_timeout_s
        while True:
            if all(
                worker.applied_through >= target or worker.generation != generation or not worker.alive
                for worker, generation, target in targets
            ):
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), remaining)
            except asyncio.TimeoutError:
                return False

    # -- metrics --------------------------------------------------------------------------------

    def collector(self) -> Collector:
        return _PoolCollector(self)

    @property
    def buffered_bytes(self) -> int:
        return sum(worker.ring.used_bytes for worker in self._workers)

    @property
    def buffered_spans(self) -> int:
        return sum(worker.ring.in_flight_spans for worker in self._workers)


class _PoolCollector(Collector):
    def __init__(self, pool: AnalysisPool) -> None:
        self.pool = pool

    def collect(self) -> Iterator[Metric]:
        pool = self.pool
        unanalysed = CounterMetricFamily(
            "impact_sli_unanalysed_spans",
            "Accepted spans not analysed (still forwarded), by reason: buffer_full, worker_restart, unparseable.",
            labels=["reason"],
        )
        for reason, spans in pool.unanalysed.items():
            unanalysed.add_metric([reason], float(spans))
        restarts = CounterMetricFamily("impact_sli_analysis_worker_restarts", "Analysis worker processes restarted.")
        restarts.add_metric([], float(pool.restarts))
        backlog = GaugeMetricFamily(
            "impact_sli_analysis_backlog_spans", "Spans handed to analysis workers and not yet folded in."
        )
        backlog.add_metric([], float(pool.buffered_spans))
        buffered = GaugeMetricFamily(
            "impact_sli_analysis_buffer_bytes", "Bytes of batches waiting in the analysis workers' rings."
        )
        buffered.add_metric([], float(pool.buffered_bytes))
        yield from (unanalysed, restarts, backlog, buffered)
