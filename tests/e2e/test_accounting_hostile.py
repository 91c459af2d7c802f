"""Hostile input against a running ``serve`` with pseudonymization on and a real downstream.

Every request gets a final answer and moves the books; no canary ID reaches the downstream
from any position; one unreadable span does not blind the SLI engine to its request; a
request of too many spans is refused naming the setting; and a config that protects one
receiver but leaves the other open does not start.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from support.canaries import CANARY_EMAIL, CANARY_NUMBER, TEST_KEY_HEX, assert_no_canary
from support.otlp_sink import OtlpSink
from support.processor import CLI, Processor, assert_books_balance, forward_args, get_json, grpc_export, serve

CONFIG = """\
receivers:
  max_spans_per_request: 1000
pseudonymization:
  attributes: [enduser.id, user.id]
sli:
  dimensions:
    - {name: tier, attribute: impact.customer.tier}
  tasks:
    - {name: checkout, value: 50}
"""
ENV = {"OTEL_IMPACT_HASH_KEY": TEST_KEY_HEX}
NOW = time.time_ns()


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    length, header = len(payload), bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        header.append(byte | 0x80 if length else byte)
        if not length:
            break
    return bytes([number << 3 | 2]) + bytes(header) + payload


def fixed64(number: int, value: int) -> bytes:
    return bytes([number << 3 | 1]) + value.to_bytes(8, "little")


def kv(key: str, value: bytes) -> bytes:
    return field(1, key.encode()) + field(2, value)


def string(text: str) -> bytes:
    return field(1, text.encode())


def nested(depth: int, leaf: bytes) -> bytes:
    value = leaf
    for _ in range(depth):
        value = field(6, field(1, kv("inner", value)))
    return value


def span(number: int, *attributes: bytes, failed: bool = False, extra: bytes = b"") -> bytes:
    body = field(1, number.to_bytes(16, "big")) + field(2, number.to_bytes(8, "big")) + field(5, b"POST /checkout")
    body += fixed64(7, NOW - 10_000_000) + fixed64(8, NOW)
    body += b"".join(field(9, attribute) for attribute in attributes)
    if failed:
        body += field(15, bytes([0x18, 2]))  # status code ERROR
    return field(2, body + extra)


def request(*spans: bytes, resource: bytes = b"", scope: bytes = b"") -> bytes:
    resource_message = field(1, kv("service.name", string("checkout-api"))) + resource
    return field(1, field(1, resource_message) + field(2, field(1, scope) + b"".join(spans)))


def http_post(processor: Processor, body: bytes) -> int:
    call = urllib.request.Request(
        processor.http_url, data=body, method="POST", headers={"Content-Type": "application/x-protobuf"}
    )
    try:
        with urllib.request.urlopen(call, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def grpc_code(processor: Processor, body: bytes) -> grpc.StatusCode:
    try:
        grpc_export(processor.ports["otlp_grpc"], body)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_hostile_requests_end_counted_and_forward_no_raw_identity(sink: OtlpSink) -> None:
    deep = request(span(1, kv("enduser.id", string(CANARY_EMAIL)), kv("deep", nested(60, string("x")))))
    not_utf8 = request(span(2, kv("enduser.id", field(1, b"\xff\xfe" + CANARY_NUMBER.encode()))))
    nested_ids = request(
        span(3, kv("user", field(6, field(1, kv("enduser.id", string(CANARY_EMAIL)))))),
        span(4, kv("users", field(5, field(1, field(6, field(1, kv("user.id", string(CANARY_NUMBER)))))))),
        scope=field(3, kv("enduser.id", string(CANARY_EMAIL))),
    )
    too_many = request(*(span(1000 + i) for i in range(1001)))
    endpoint = f"grpc://127.0.0.1:{sink.grpc_port}"
    with serve(*forward_args([endpoint]), config=CONFIG, env=ENV) as processor:
        assert grpc_code(processor, deep) == grpc.StatusCode.INVALID_ARGUMENT
        assert http_post(processor, deep) == 400
        assert grpc_code(processor, not_utf8) == grpc.StatusCode.INVALID_ARGUMENT
        assert http_post(processor, not_utf8) == 400
        assert grpc_code(processor, nested_ids) == grpc.StatusCode.OK
        assert grpc_code(processor, too_many) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert http_post(processor, too_many) == 413
        processor.wait_for(lambda: len(sink.span_ids()) == 2, what="the accepted spans forwarded")
        terms = assert_books_balance(processor, endpoint)
        assert terms["accepted"] == 2
        assert terms["rejected"] == 2 * 1 + 2 * 1 + 2 * 1001
        assert processor.metric_sum("otel_impact_receiver_rejected_spans_total", reason="too_many_spans") == 2002
        assert processor.metric_sum("otel_impact_receiver_rejected_spans_total", reason="invalid") == 4
        log = processor.log()
    assert_no_canary(sink.raw_bytes(), where="the downstream")
    assert_no_canary(log.encode(), where="the processor's log")
    assert "Traceback" not in log


def test_one_unreadable_span_does_not_blind_the_engine_to_its_request() -> None:
    task = kv("impact.task.name", string("checkout"))
    bad_tier = span(100, task, kv("impact.customer.tier", nested(40, string("pro"))))
    checkouts = request(bad_tier, *(span(200 + i, task, failed=True) for i in range(100)))
    assert len(bad_tier) < 1000
    with serve(config=CONFIG, env=ENV) as processor:
        for _ in range(3):
            assert grpc_code(processor, checkouts) == grpc.StatusCode.OK
        impact = get_json(processor, "/api/v1/impact?task=checkout&window=5m")
        assert impact["events"]["total"] == 3 * 101 and impact["events"]["bad"] == 3 * 100
        assert processor.metric_sum("otel_impact_analyzer_values_total", kind="invalid_value") >= 1
        assert processor.metric_sum("impact_sli_analysis_errors_total") == 0
        log = processor.log()
    assert "Traceback" not in log


def test_a_token_on_one_receiver_only_fails_check_config_naming_the_open_one(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "receivers:\n  grpc: {endpoint: 0.0.0.0:4317}\n  http: {endpoint: 0.0.0.0:4318, auth: {bearer_token: t}}\n"
    )
    checked = subprocess.run([CLI, "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode != 0
    assert "receivers.grpc.auth" in checked.stderr and "endpoint: none" in checked.stderr


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_with_tokens_on_both_receivers_unauthenticated_data_goes_in_through_neither(transport: str) -> None:
    config = "receivers:\n  grpc: {auth: {bearer_token: t0ken}}\n  http: {auth: {bearer_token: t0ken}}\n"
    body = ExportTraceServiceRequest().SerializeToString()
    with serve(config=config) as processor:
        if transport == "grpc":
            assert grpc_code(processor, body) == grpc.StatusCode.UNAUTHENTICATED
        else:
            assert http_post(processor, body) == 401
