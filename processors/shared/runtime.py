"""The shared state inside ``serve``: the buffer, the writer's thread, the queries and the status.

`SharedState.build` wires a replica to Redis: the SLI analyzer records every folded group in
a `DeltaBuffer`; every ``flush_interval`` the event loop takes the buffer (and the task
counters' increments) and hands it to the writer's single thread, never waiting for it (a
flush still running when the next is due simply lets the deltas accumulate). At shutdown the
last deltas are flushed and the replica leaves the replicas hash.

It also reports: ``/metrics`` (`SharedStateCollector`) and a ``/readyz`` line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from otel_impact.processors.clock import Clock
from otel_impact.processors.periodic import Periodic
from otel_impact.processors.sli.deltas import DeltaBuffer, TaskDelta
from otel_impact.processors.sli.engine import SliEngine
from otel_impact.processors.sli.queries import SliQueries

from .answers import SharedAnswers
from .connection import SharedConnection
from .encode import FlushEncoder, SharedLayout
from .flush import SharedWriter
from .keys import SharedKeys
from .leadership import SharedLeadership
from .reader import SharedQueries
from .settings import SharedStateConfig

__all__ = ["SharedState", "replica_id"]

logger = logging.getLogger("otel_impact.shared")

_COUNTERS = ("late_clamped", "future_clamped", "overflow_events")


def replica_id() -> str:
    """``<hostname>-<pid>-<4 random hex>``: unique per process, readable in ``redis-cli``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class SharedState:
    """One replica's link to the shared state; a service component (`start`, `stop`)."""

    name = "shared state"

    def __init__(
        self,
        config: SharedStateConfig,
        engine: SliEngine,
        local: SliQueries,
        clock: Clock,
        *,
        evaluation_interval_s: float,
    ) -> None:
        """``evaluation_interval_s`` is the SLO evaluation interval: the leader lease's TTL."""
        assert config.address is not None
        self.config = config
        self.engine = engine
        self.replica = replica_id()
        self.connection = SharedConnection(config.address, config.timeout_s)
        self.keys = SharedKeys(config.key_prefix)
        self.buffer = DeltaBuffer(config.buffer_max_bytes // 2)
        self.writer = SharedWriter(
            self.connection,
            self.keys,
            FlushEncoder(self.keys, SharedLayout.of(engine.config)),
            self.replica,
            max_bytes=config.buffer_max_bytes // 2,
            clock=clock,
            coverage_start_ns=engine.state.coverage_start_ns,
        )
        self.queries = SharedQueries(
            self.connection,
            self.keys,
            engine.config,
            self.writer,
            clock,
            config.flush_interval_s,
            local_lag=lambda task, start, end: local.pipeline_lag(task, start, end) if task in engine.tasks else None,
        )
        self.answers = SharedAnswers(self.queries, local)
        self.leadership = SharedLeadership(self.connection, self.keys.leader, self.replica, evaluation_interval_s)
        self._counted: dict[str, tuple[int, ...]] = {}
        self._dropped_reported = 0
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="otel-impact-shared-flush")
        self._running: Future[None] | None = None
        self._ticks = Periodic("shared-state flush", config.flush_interval_s, self._flush_due)
        engine.state.deltas = self.buffer

    # -- the component --------------------------------------------------------------------------

    async def start(self) -> None:
        logger.info("sharing impact state through %s as replica %s", self.config.address, self.replica)
        self._ticks.start()

    async def stop(self) -> None:
        await self._ticks.stop()
        if self._running is not None:
            await asyncio.wrap_future(self._running)
        deltas, dropped = self._take()
        await asyncio.get_running_loop().run_in_executor(self._executor, self._last_flush, deltas, dropped)
        self._executor.shutdown(wait=True)
        self.connection.close()

    def _last_flush(self, deltas: dict[str, TaskDelta], dropped: int) -> None:
        self.writer.flush(deltas, dropped)
        self.writer.leave()

    def _flush_due(self) -> None:
        """On the event loop: hand the buffered deltas to the writer's thread, if it is free."""
        if self._running is not None and not self._running.done():
            return
        deltas, dropped = self._take()
        self._running = self._executor.submit(self.writer.flush, deltas, dropped)

    def _take(self) -> tuple[dict[str, TaskDelta], int]:
        for name, task in self.engine.state.tasks.items():
            now = (task.late_clamped, task.future_clamped, task.overflow_events)
            before = self._counted.get(name, (0, 0, 0))
            for counter, new, old in zip(_COUNTERS, now, before, strict=True):
                self.buffer.count(name, counter, new - old)
            self._counted[name] = now
        dropped = self.buffer.dropped_events - self._dropped_reported
        self._dropped_reported = self.buffer.dropped_events
        return dict(self.buffer.take()), dropped

    # -- reporting ------------------------------------------------------------------------------

    def readiness_line(self) -> str:
        """``/readyz``'s line, as ``key=value`` pairs (logfmt): readable, and parseable by tools."""
        status = self.writer.status()
        age = "none" if status.last_flush_age_s is None else f"{status.last_flush_age_s:.1f}"
        fields = [
            f"reachable={'true' if status.reachable else 'false'}",
            f"url={self.connection.address.display().replace(' ', '')}",
            f"replica={self.replica}",
            f"leader={'true' if self.leadership.is_leader else 'false'}",
            f"last_flush_age_seconds={age}",
            f"buffered_bytes={status.backlog_bytes + self.buffer.bytes}",
            f"dropped_events={status.dropped_events}",
        ]
        if status.last_error is not None:
            fields.append('error="' + status.last_error.replace("\\", "\\\\").replace('"', '\\"') + '"')
        return "shared_state " + " ".join(fields)

    def collector(self) -> Collector:
        return SharedStateCollector(self)


class SharedStateCollector(Collector):
    """``impact_shared_state_*`` series of this replica."""

    def __init__(self, shared: SharedState) -> None:
        self.shared = shared

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        status = self.shared.writer.status()
        yield GaugeMetricFamily(
            "impact_shared_state_up", "1 while the shared state accepts this replica's flushes", value=status.reachable
        )
        flushes = CounterMetricFamily(
            "impact_shared_state_flushes", "Task flushes sent to the shared state, by result", labels=["result"]
        )
        flushes.add_metric(["applied"], status.flushes - status.duplicate_flushes)
        flushes.add_metric(["duplicate"], status.duplicate_flushes)
        flushes.add_metric(["failed"], status.failed_flushes)
        yield flushes
        yield GaugeMetricFamily(
            "impact_shared_state_buffered_bytes",
            "Deltas held for the shared state (buffer and unflushed backlog)",
            value=status.backlog_bytes + self.shared.buffer.bytes,
        )
        dropped = CounterMetricFamily(
            "impact_shared_state_dropped_events",
            "Task events left out of the shared state because the bounded buffer was full, by reason",
            labels=["reason"],
        )
        dropped.add_metric(["buffer_full"], status.dropped_events)
        yield dropped
        yield GaugeMetricFamily(
            "impact_shared_state_last_flush_age_seconds",
            "Seconds since the last successful flush (absent before the first)",
            value=status.last_flush_age_s if status.last_flush_age_s is not None else float("nan"),
        )
        fallbacks = CounterMetricFamily(
            "impact_shared_state_fallback_answers",
            "Answers given from this replica's own state because the shared state could not be read",
        )
        fallbacks.add_metric([], self.shared.answers.fallbacks)
        yield fallbacks
        leadership = self.shared.leadership
        yield GaugeMetricFamily(
            "impact_shared_state_leader",
            "1 while this replica holds the lease: it evaluates SLOs and delivers alerts",
            value=leadership.is_leader,
        )
        lease = CounterMetricFamily(
            "impact_shared_state_lease_changes", "Times this replica took or lost the leader lease", labels=["change"]
        )
        lease.add_metric(["acquired"], leadership.lease.acquisitions)
        lease.add_metric(["lost"], leadership.lease.losses)
        yield lease
        refused = CounterMetricFamily(
            "impact_shared_state_refused_alert_saves",
            "Alert-state writes refused because another replica held the lease (fencing)",
        )
        refused.add_metric([], leadership.refused_saves)
        yield refused
