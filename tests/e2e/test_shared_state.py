"""End to end: replicas of ``otel-impact serve`` sharing their state through a real Redis.

A known workload (30,000 customers, 3 tiers, one failing tier x flag-variant segment) is split
across three replicas, each customer's checkouts landing on different replicas. Every replica
must then give the one global answer: the events exactly as sent, distinct and impacted users
within the bounds the document states, the same answer from all three. When Redis goes away
intake and forwarding go on, answers say they are incomplete, and once Redis is back the
buffered deltas make the counts exact again; a buffer too small for the outage counts what it
drops. A single replica without shared state is the control: the same workload, the same truth.

Each replica starts from a state that has been watching for two hours, so a window of the last
hour is covered: healthy answers are complete, with upper bounds on users to check.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from support.otlp_sink import OtlpSink
from support.processor import get_status, serve
from support.redis_servers import redis_cluster, redis_server
from support.shared_answers import events_total
from support.shared_replicas import (
    Sender,
    assert_one_true_answer,
    impact,
    impact_status,
    poll,
    ready_status,
    replicas,
    send_workload,
    settled,
    shared_status,
    wait_until,
)
from support.shared_workload import FAILING, SLI_CONFIG, TASK, Truth, build

UNREACHABLE = "shared state unreachable"
DROPPED = "impact_shared_state_dropped_events_total"
UP = "impact_shared_state_up"
FLUSHES = "impact_shared_state_flushes_total"
BUFFERED = "impact_shared_state_buffered_bytes"
ROUNDS, ROUND_CUSTOMERS = 40, 500
"""The overflow test sends up to 40 rounds of 500 new customers (1,200 events) while Redis is down..."""
FLUSH_INTERVAL_S = 0.5
"""...one round per flush interval."""


@contextmanager
def shared_redis(kind: str) -> Iterator[str]:
    """A fresh Redis of ``kind`` (standalone, or a Cluster of 3 masters); its URL."""
    if kind == "cluster":
        with redis_cluster() as cluster:
            yield cluster.url
    else:
        with redis_server() as server:
            yield server.url


def test_one_replica_without_shared_state_matches_the_truth() -> None:
    """The control: the whole workload to one embedded-state replica."""
    workload = build(time.time_ns())
    with replicas(1, config=SLI_CONFIG) as processors:
        send_workload(processors, workload)
        poll(processors, lambda p: impact_status(p, workload.end_s), settled(workload.truth), what="the events")
        assert_one_true_answer(processors, workload)


@pytest.mark.parametrize("kind", ["standalone", "cluster"])
def test_three_replicas_give_one_true_answer(kind: str) -> None:
    workload = build(time.time_ns())
    with shared_redis(kind) as url, replicas(3, "--shared-state", url, config=SLI_CONFIG) as processors:
        send_workload(processors, workload)
        poll(
            processors,
            lambda p: impact_status(p, workload.end_s),
            settled(workload.truth),
            what="every replica to answer with every replica's events",
        )
        assert_one_true_answer(processors, workload)
        for processor in processors:
            assert ready_status(processor) == 200
            assert processor.metric_sum(UP) == 1 and processor.metric_sum(DROPPED) == 0

        # Grouped by one dimension (the flag, by its alias), the shared answer is still exact.
        truth = workload.truth
        for processor in processors:
            by_variant = impact(processor, workload.end_s, by="flag:new_checkout")
            events = {s["segment"]["new_checkout"]: s["events"]["bad"] for s in by_variant["segments"]}
            assert events == {"on": truth.bad[FAILING], "off": 0}

        # /metrics stays per replica: each counts what it analyzed, and the replicas add up.
        bad = [p.metric_sum("impact_task_events_total", task=TASK, outcome="bad") for p in processors]
        assert sum(bad) == truth.bad[FAILING] and max(bad) < truth.bad[FAILING], bad


def test_redis_outage_loses_no_span_and_no_count(sink: OtlpSink) -> None:
    """Redis is killed while the workload is being sent, then started again.

    Redis keeps an append-only file synced on every write, so what was flushed before the kill
    survives it (as with a persistent production Redis): the exact counts afterwards prove the
    buffered deltas were applied once each, neither lost nor applied twice.
    """
    workload = build(time.time_ns())
    requests = workload.requests()
    forward = f"grpc://127.0.0.1:{sink.grpc_port}"
    with (
        redis_server("--appendonly", "yes", "--appendfsync", "always") as redis,
        replicas(3, "--shared-state", redis.url, "--forward", forward, config=SLI_CONFIG) as processors,
        Sender(processors) as sender,
    ):
        # Before the outage: a third of the workload, flushed and seen by every replica.
        third = len(requests) // 3
        sender.send_all(requests[:third])
        before = workload.events_in_first(third)
        poll(
            processors,
            lambda p: impact_status(p, workload.end_s),
            lambda answers: all(status == 200 and events_total(body) == before for status, body in answers),
            what=f"the first {before} events in the shared state",
        )

        # Redis dies while the rest is being sent: deltas are pending, a flush may be in flight.
        failures: list[BaseException] = []

        def send_the_rest() -> None:
            try:
                sender.send_all(requests[third:], pause=0.03)
            except BaseException as error:  # re-raised below, in the test's thread
                failures.append(error)

        sending = threading.Thread(target=send_the_rest)
        sending.start()
        try:
            wait_until(lambda: sender.sent >= third + 6, what="the rest of the workload being sent")
            redis.stop()
        finally:
            sending.join()
        assert not failures, f"intake refused spans while Redis was down: {failures[0]!r}"

        # Forwarding went on: the downstream has every span, once or more (at least once).
        wait_until(lambda: set(sink.span_ids()) >= set(workload.span_ids), what="every span at the downstream")
        assert set(sink.span_ids()) == set(workload.span_ids)

        # Answers come from each replica's own state, and say so.
        answers = poll(
            processors,
            lambda p: impact_status(p, workload.end_s),
            lambda answers: all(
                status == 200 and str(body["telemetry"]["reason"]).startswith(UNREACHABLE) for status, body in answers
            ),
            what=f"every answer to say {UNREACHABLE!r}",
        )
        for _, body in answers:
            assert body["telemetry"]["complete"] is False
            assert body["estimates_are_lower_bounds"] is True
            assert body["users"]["upper"] is None
        for processor in processors:
            assert ready_status(processor) == 200, "intake works without Redis: the replica stays ready"
            wait_until(lambda p=processor: p.metric_sum(UP) == 0, what="impact_shared_state_up 0 (its next flush)")

        redis.start()
        poll(
            processors,
            lambda p: impact_status(p, workload.end_s),
            lambda answers: (
                settled(workload.truth)(answers)
                and not any(str(body["telemetry"]["reason"]).startswith(UNREACHABLE) for _, body in answers)
            ),
            what="the buffered deltas flushed after Redis came back",
        )
        assert_one_true_answer(processors, workload)
        for processor in processors:
            assert processor.metric_sum(UP) == 1 and processor.metric_sum(DROPPED) == 0
            assert processor.metric_sum(FLUSHES, result="failed") > 0, "the outage was seen by the flusher"


def test_a_buffer_too_small_for_the_outage_counts_what_it_drops() -> None:
    """With ``buffer_max_bytes: 1MiB`` and Redis down, a few hundred new customers per flush
    interval keep coming until the buffer overflows: the buffer stays bounded, the overflow is
    counted (in events), answers say incomplete; once Redis is back what was kept is flushed, so
    the shared events plus the counted drops are exactly the events sent."""
    with redis_server() as redis:
        config = (
            f"shared_state:\n  url: {redis.url}\n  buffer_max_bytes: 1MiB\n  flush_interval: {FLUSH_INTERVAL_S}s\n"
            + SLI_CONFIG
        )
        with serve(config=config) as processor, Sender([processor]) as sender:
            redis.stop()
            sent = Truth()
            end_s = 0
            buffered: list[float] = []
            for round_number in range(ROUNDS):
                workload = build(
                    time.time_ns(),
                    replicas=1,
                    customers=ROUND_CUSTOMERS,
                    first_customer=round_number * ROUND_CUSTOMERS,
                )
                sender.send_all(workload.requests())
                sent.add(workload.truth)
                end_s = workload.end_s
                # Steady traffic: about one round per flush interval (pacing, not an assertion).
                time.sleep(FLUSH_INTERVAL_S)
                buffered.append(processor.metric_sum(BUFFERED))
                if processor.metric_sum(DROPPED) > 0:
                    break
            assert processor.metric_sum(DROPPED) > 0, f"a 1MiB buffer held the deltas of {len(sent.all_users())} users"
            assert max(buffered) <= 1 << 20, f"buffered bytes beyond buffer_max_bytes (1MiB): {buffered}"
            assert ready_status(processor) == 200
            wait_until(lambda: processor.metric_sum(UP) == 0, what="impact_shared_state_up 0")
            answer = impact(processor, end_s)
            assert answer["telemetry"]["complete"] is False
            assert str(answer["telemetry"]["reason"]).startswith(UNREACHABLE)
            # The replica's own state still saw everything it was sent.
            assert events_total(answer) == sent.events

            # Back online, what was kept is flushed: nothing is lost without being counted.
            redis.start()
            (answer,) = poll(
                [processor],
                lambda p: impact(p, end_s),
                lambda answers: (
                    not str(answers[0]["telemetry"]["reason"]).startswith(UNREACHABLE)
                    and events_total(answers[0]) + processor.metric_sum(DROPPED) == sent.events
                ),
                what="the kept deltas flushed: shared events + dropped events == events sent",
            )
            assert events_total(answer) > 0, "the deltas buffered before the overflow were applied"
            assert answer["telemetry"]["complete"] is False, "an answer over the overflow says it is incomplete"


def test_readyz_describes_the_shared_state() -> None:
    with redis_server() as redis, serve("--shared-state", redis.url, config=SLI_CONFIG) as processor:
        status, shared = shared_status(processor)
        assert status == 200 and shared is not None, "/readyz has a shared_state line"
        assert shared["url"] == redis.url and shared["reachable"] == "true", shared
        assert shared["dropped_events"] == "0" and int(shared["buffered_bytes"]) >= 0, shared
        assert shared["leader"] in ("true", "false"), shared
        age = shared["last_flush_age_seconds"]
        assert age == "none" or float(age) >= 0, shared
        redis.stop()
        processor.wait_for(
            lambda: (shared_status(processor)[1] or {}).get("reachable") == "false", what="/readyz says unreachable"
        )
        status, shared = shared_status(processor)
        assert status == 200 and shared is not None and "error" in shared, shared


def test_a_redis_down_from_the_start_leaves_every_answer_standing() -> None:
    """Redis unreachable when serve starts: intake works, every answer comes from this replica's
    own state, marked incomplete, and nothing answers 5xx."""
    with serve("--shared-state", "redis://127.0.0.1:1", config=SLI_CONFIG) as processor:
        processor.wait_for(
            lambda: (shared_status(processor)[1] or {}).get("reachable") == "false", what="/readyz says unreachable"
        )
        for path in ("/api/v1/tasks", "/api/v1/dashboard", "/api/v1/slos"):
            status, body = get_status(processor, path)
            assert status == 200, (path, body)
        status, board = get_status(processor, "/api/v1/dashboard")
        assert board["telemetry"], "the configured task is on the dashboard"
        for telemetry in board["telemetry"].values():
            assert telemetry["complete"] is False
            assert telemetry["reason"].startswith("shared state unreachable"), telemetry
