"""What downstream answers mean (OTLP spec) and how long to wait."""

from __future__ import annotations

import random

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_impact.processors.config import RetryConfig
from otel_impact.processors.export.retry import (
    MAX_SERVER_DELAY,
    Backoff,
    classify_grpc,
    classify_http,
    parse_retry_after,
    success_from_response,
)
from otel_impact.processors.retry import BackoffPolicy


def status_with_retry_info(seconds: int) -> bytes:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds)))
    status = status_pb2.Status(code=8, message="slow down", details=[detail])
    return status.SerializeToString()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        (grpc.StatusCode.UNAVAILABLE, True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, True),
        (grpc.StatusCode.CANCELLED, True),
        (grpc.StatusCode.ABORTED, True),
        (grpc.StatusCode.OUT_OF_RANGE, True),
        (grpc.StatusCode.DATA_LOSS, True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, False),
        (grpc.StatusCode.INVALID_ARGUMENT, False),
        (grpc.StatusCode.UNAUTHENTICATED, False),
        (grpc.StatusCode.INTERNAL, False),
    ],
)
def test_grpc_codes(code: grpc.StatusCode, retryable: bool) -> None:
    outcome = classify_grpc(code, "details", ())
    assert not outcome.ok and outcome.retryable is retryable and outcome.reason == code.name


def test_resource_exhausted_is_retryable_only_with_retry_info() -> None:
    trailers = (("grpc-status-details-bin", status_with_retry_info(7)),)
    outcome = classify_grpc(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", trailers)
    assert outcome.retryable and outcome.retry_after == 7


HTTP_CASES = [
    (429, True),
    (502, True),
    (503, True),
    (504, True),
    (400, False),
    (401, False),
    (413, False),
    (500, False),
]


@pytest.mark.parametrize(("status", "retryable"), HTTP_CASES)
def test_http_statuses(status: int, retryable: bool) -> None:
    assert classify_http(status, None).retryable is retryable


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("12") == 12
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert classify_http(503, "3").retry_after == 3


def test_partial_success_is_a_success_with_its_count() -> None:
    response = ExportTraceServiceResponse()
    response.partial_success.rejected_spans = 4
    response.partial_success.error_message = "bad spans"
    outcome = success_from_response(response.SerializeToString())
    assert outcome.ok and outcome.partial and outcome.rejected_spans == 4
    assert success_from_response(b"").ok and not success_from_response(b"").partial


def test_backoff_grows_is_capped_and_jittered() -> None:
    config = RetryConfig(initial_interval=1, max_interval=8, multiplier=2, randomization_factor=0.5)
    backoff = Backoff(config, random.Random(7))
    delays = [backoff.delay(attempt) for attempt in range(8)]
    for attempt, delay in enumerate(delays):
        base = min(2.0**attempt, 8.0)
        assert 0.5 * base <= delay <= 1.5 * base
    assert len(set(delays)) == len(delays)  # jittered
    assert backoff.delay(10_000) <= 12  # no overflow, still capped
    assert backoff.delay(0, server_delay=3.5) == 3.5  # RetryInfo / Retry-After win


def test_retry_after_is_bounded_and_invalid_values_are_ignored() -> None:
    now = 1445412480.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=now + 60) == 0.0  # in the past
    assert parse_retry_after("86400") == MAX_SERVER_DELAY
    assert parse_retry_after("Wed, 21 Oct 2035 07:28:10 GMT", now=now) == MAX_SERVER_DELAY
    for invalid in ("", "  ", "-3", "1.5", "+4", "١٢", "Wed, 21 Oct 2015 07:28:10", "Wed, 99 Foo 2015"):
        assert parse_retry_after(invalid, now=now) is None, invalid


def test_backoff_gives_up_when_the_wait_would_pass_max_elapsed() -> None:
    policy = BackoffPolicy(initial_interval=1, max_interval=8, max_elapsed_time=10, randomization_factor=0)
    backoff = Backoff(policy)
    assert [backoff.next_wait(attempt, 0.0) for attempt in range(4)] == [1, 2, 4, 8]
    assert backoff.next_wait(3, 3.0) is None  # 3 s spent + 8 s more > 10 s
    assert backoff.next_wait(0, 3.0, server_delay=7.0) == 7.0
    assert backoff.next_wait(0, 3.0, server_delay=7.5) is None
    forever = Backoff(BackoffPolicy(initial_interval=1, max_interval=8, max_elapsed_time=0))
    assert forever.next_wait(50, 1e9) is not None
