"""Two replicas share one real Redis: the shared answers match the known truth of the whole
workload, although each replica analysed only half of it, and a retried flush counts once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from support import sli_workload
from support.known_truth import CONFIG, START, check_answers
from support.otlp_traces import batch
from support.redis_servers import RedisServer, redis_cluster, redis_server

from otel_impact.processors.api.documents import impact_document
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.shared.connection import SharedConnection
from otel_impact.processors.shared.encode import FlushEncoder, SharedLayout
from otel_impact.processors.shared.flush import SharedWriter
from otel_impact.processors.shared.keys import SharedKeys
from otel_impact.processors.shared.reader import SharedQueries
from otel_impact.processors.shared.settings import parse_redis_url
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.deltas import DeltaBuffer

MINUTE = sli_workload.MINUTE


class Replica:
    """An SLI engine whose folded groups go to the shared state through its own writer."""

    def __init__(self, url: str, name: str, clock: ManualClock, prefix: str) -> None:
        config = SliConfig.from_mapping(CONFIG)
        self.engine = SliEngine(config, clock=clock)
        self.buffer = DeltaBuffer(64 << 20)
        self.engine.state.deltas = self.buffer
        self.connection = SharedConnection(parse_redis_url(url), 5.0)
        keys = SharedKeys(prefix)
        self.writer = SharedWriter(
            self.connection,
            keys,
            FlushEncoder(keys, SharedLayout.of(config)),
            name,
            max_bytes=64 << 20,
            clock=clock,
            coverage_start_ns=START,
        )
        self.queries = SharedQueries(self.connection, keys, config, self.writer, clock, 2.0)

    def flush(self) -> None:
        self.writer.flush(self.buffer.take())


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def workload() -> tuple[list[tuple[int, bytes]], sli_workload.Truth]:
    return sli_workload.build(START)


def run(redis: RedisServer, workload: Any, prefix: str) -> tuple[list[Replica], ManualClock]:
    return run_on(redis.url, workload, prefix)


def run_on(url: str, workload: Any, prefix: str) -> tuple[list[Replica], ManualClock]:
    requests, _ = workload
    clock = ManualClock(start_ns=START)
    replicas = [Replica(url, f"replica-{n}", clock, prefix) for n in range(2)]
    for index, (received_ns, data) in enumerate(requests):
        clock.advance((received_ns - clock.now_ns()) / 1e9)
        replica = replicas[index % 2]
        replica.engine.analyze(batch(data, received_ns))
        if index % 7 == 0:
            replica.flush()
    for replica in replicas:
        replica.flush()
    return replicas, clock


def test_every_replica_answers_for_the_whole_workload(redis: RedisServer, workload: Any) -> None:
    replicas, _ = run(redis, workload, "truth")
    for replica in replicas:
        assert replica.writer.status().flushes > 0 and replica.writer.status().backlog_flushes == 0
        check_answers(replica.queries, workload[1], START)
    end = START + 31 * MINUTE
    first, second = (impact_document(r.queries.impact("checkout", START, end)) for r in replicas)
    assert first == second
    assert first["accuracy"]["source"] == "shared state"
    # Each replica alone saw about half of the events.
    local = replicas[0].engine.state.task_events
    assert 0 < local < first["events"]["total"]


def test_a_retried_flush_is_applied_once(redis: RedisServer, workload: Any) -> None:
    replicas, _ = run(redis, workload, "retried")
    end = START + 31 * MINUTE
    before = replicas[0].queries.counts("checkout", START, end)
    writer = replicas[0].writer
    # The reply of an applied flush was lost: the same flush (same sequence) is sent again.
    (applied,) = writer.encoder.encode("checkout", _one_event_delta())
    writer._backlog.append(applied)
    writer._backlog_bytes += applied.bytes
    writer.flush({})
    once = replicas[0].queries.counts("checkout", START, end)
    assert once[()].total == before[()].total + 1
    writer._backlog.append(applied)
    writer._backlog_bytes += applied.bytes
    writer.flush({})
    assert replicas[0].queries.counts("checkout", START, end) == once
    assert writer.status().duplicate_flushes == 1


def _one_event_delta() -> Any:
    buffer = DeltaBuffer(1 << 20)
    row = np.array([1.0, 0.0, 0.0, 1.0, 1.0])
    buffer.record("checkout", ("free", "off"), START // MINUTE + 3, row, (0, None, 1), ["u"], [], {})
    return buffer.take()["checkout"]


def test_answers_from_a_redis_cluster(workload: Any) -> None:
    with redis_cluster() as cluster:
        replicas, _ = run_on(cluster.url, workload, "cluster")
        for replica in replicas:
            check_answers(replica.queries, workload[1], START)


def test_a_wiped_redis_restarts_coverage(redis: RedisServer) -> None:
    clock = ManualClock(start_ns=START)
    replica = Replica(redis.url, "wiped", clock, "wiped")
    replica.writer.flush({"checkout": _one_event_delta()})
    assert replica.writer.coverage_start_ns == START
    redis.cli("flushall")
    clock.advance(90)
    replica.writer.flush({"checkout": _one_event_delta()})
    assert replica.writer.coverage_start_ns == START + 90 * 10**9
    completeness = replica.queries.window_completeness("checkout", START, START + 5 * MINUTE)
    assert not completeness.complete and not completeness.state_covers_window
    assert completeness.covered_from_ns == START + 90 * 10**9


def test_a_large_delta_goes_in_several_short_flushes_and_counts_once(redis: RedisServer) -> None:
    clock = ManualClock(start_ns=START)
    replica = Replica(redis.url, "large", clock, "large")
    buffer = DeltaBuffer(1 << 30)
    minute = START // MINUTE + 2
    users = [f"{n:032x}" for n in range(45_000)]
    for index in range(60):  # 60 series, 750 users each
        row = np.array([750.0, 75.0, 10.0, 700.0, 750.0])
        mine = users[index * 750 : (index + 1) * 750]
        top = {user: 1 for user in mine[:75]}
        buffer.record("checkout", (f"tier-{index}", "on"), minute, row, (40, np.array([750]), 0), mine, mine[:75], top)
    flushes = replica.writer.encoder.encode("checkout", buffer.take()["checkout"])
    assert len(flushes) > 1 and all(len(f.document) < 2 << 20 for f in flushes)
    assert sum(f.events for f in flushes) == 60 * 750
    replica.writer._backlog.extend(flushes)
    replica.writer._backlog_bytes += sum(f.bytes for f in flushes)
    replica.writer.flush({})
    report = replica.queries.impact("checkout", START, START + 10 * MINUTE)
    assert report.events.total == 60 * 750 and report.events.bad == 60 * 75
    # The window starts before this replica's coverage, so only lower bounds are stated; the
    # estimates are within the HyperLogLog's 2 standard deviations of the truth.
    assert report.users.lower <= 45_000 and abs(report.users.estimate - 45_000) <= 2 * 0.0081 * 45_000
    assert abs(report.impacted_users.estimate - 4_500) <= 2 * 0.0081 * 4_500
    assert len(report.segments) == 60
