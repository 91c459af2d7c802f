"""Bad input, full queues, authentication and pseudonymization against ``otel-impact serve``.

Every rejection must get the right code with a reason, be counted by reason, and leave the
server up; a full queue must tell the sender to retry (it keeps the data).
"""

from __future__ import annotations

import gzip
import json
import subprocess
from collections.abc import Iterator

import grpc
import pytest
import requests
from google.rpc import error_details_pb2, status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from support.canaries import CANARY_EMAIL, CANARY_NUMBER, TEST_KEY_HEX, assert_no_canary
from support.otlp_requests import make_request
from support.otlp_sink import OtlpSink
from support.processor import CLI, Processor, assert_books_balance, grpc_export, serve

from otel_impact import HashKey, Pseudonymizer

pytestmark = pytest.mark.slow

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def rejected(processor: Processor, reason: str) -> float:
    return processor.metric_sum("otel_impact_receiver_rejected_requests_total", reason=reason)


def grpc_error(port: int, body: bytes, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        grpc_export(port, body, metadata)
    return raised.value


@pytest.fixture(scope="module")
def limited() -> Iterator[Processor]:
    """A processor with a 64 KiB request limit and no downstream (nothing to forward to)."""
    with serve(config="receivers:\n  max_request_bytes: 64KiB\n") as processor:
        yield processor


def test_oversize_requests_get_413_or_resource_exhausted(limited: Processor) -> None:
    big = make_request(1000)
    assert len(big) > 64 << 10
    error = grpc_error(limited.ports["otlp_grpc"], big)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "exceeds the limit of 65536 bytes" in error.details()
    reply = requests.post(limited.http_url, data=big, headers=PROTOBUF, timeout=10)
    assert reply.status_code == 413
    assert "exceeds the limit" in status_pb2.Status.FromString(reply.content).message
    bomb = gzip.compress(b"\0" * (8 << 20))  # 8 MiB of zeros in a few KiB
    reply = requests.post(limited.http_url, data=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=10)
    assert reply.status_code == 413
    assert rejected(limited, "too_large") == 3
    assert requests.get(limited.admin_url + "/healthz", timeout=5).status_code == 200


def test_malformed_bodies_get_400_or_invalid_argument_with_the_reason(limited: Processor) -> None:
    error = grpc_error(limited.ports["otlp_grpc"], b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "not a valid OTLP" in error.details()
    reply = requests.post(limited.http_url, data=b"{not json", headers=JSON, timeout=10)
    assert reply.status_code == 400 and "invalid OTLP/JSON: not valid JSON" in reply.json()["message"]
    bad_id = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz", "spanId": "00"}]}]}]}
    reply = requests.post(limited.http_url, data=json.dumps(bad_id), headers=JSON, timeout=10)
    assert reply.status_code == 400
    assert reply.json()["message"].endswith(
        "resourceSpans[0].scopeSpans[0].spans[0].traceId: expected 32 hex characters"
    )
    raw_id = {"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [
        {"key": "enduser.id", "value": {"intValue": CANARY_EMAIL}}]}]}]}]}  # fmt: skip
    reply = requests.post(limited.http_url, data=json.dumps(raw_id), headers=JSON, timeout=10)
    assert reply.status_code == 400 and "intValue: invalid value" in reply.json()["message"]
    assert_no_canary(reply.content, where="an error answer")
    reply = requests.post(limited.http_url, data=b"\x0a\x05abc", headers=PROTOBUF, timeout=10)
    assert reply.status_code == 400
    reply = requests.post(limited.http_url, data=b"{}", headers={"Content-Type": "text/plain"}, timeout=10)
    assert reply.status_code == 415
    assert rejected(limited, "invalid") >= 5 and rejected(limited, "unsupported_media_type") >= 1
    assert_no_canary(limited.log().encode(), where="the processor's log")


def test_unknown_fields_are_kept(sink: OtlpSink) -> None:
    body = make_request(2) + b"\xa2\x06\x05extra"  # field 100 (length-delimited) at the top level
    with serve("--forward", f"grpc://127.0.0.1:{sink.grpc_port}") as processor:
        grpc_export(processor.ports["otlp_grpc"], body)
        processor.wait_for(lambda: len(sink.requests()) == 1, what="the forwarded request")
    assert sink.requests()[0].body == body  # the original bytes, unknown field included


def test_a_full_queue_tells_senders_to_retry(sink: OtlpSink) -> None:
    endpoint = f"grpc://127.0.0.1:{sink.grpc_port}"
    sink.stop()
    config = f"exporters:\n  - endpoint: {endpoint}\n    queue: {{max_requests: 1}}\ndrain_timeout: 500ms\n"
    with serve(config=config) as processor:
        grpc_export(processor.ports["otlp_grpc"], make_request(3))  # fills the queue
        error = grpc_error(processor.ports["otlp_grpc"], make_request(4))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        trailers = dict(error.trailing_metadata())
        delay = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"]).retry_delay
        assert delay.seconds == 1
        status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
        assert status.code == grpc.StatusCode.UNAVAILABLE.value[0] and status.details[0].Is(
            error_details_pb2.RetryInfo.DESCRIPTOR
        )
        reply = requests.post(processor.http_url, data=make_request(5), headers=PROTOBUF, timeout=10)
        assert reply.status_code == 503 and reply.headers["Retry-After"] == "1"
        assert processor.metric_sum("otel_impact_receiver_rejected_spans_total", reason="queue_full") == 4 + 5
        terms = assert_books_balance(processor, endpoint)
        assert terms["accepted"] == terms["queued"] == 3 and terms["rejected"] == 9


def test_the_sdk_retry_keeps_what_a_full_queue_refused(sink: OtlpSink) -> None:
    endpoint = f"grpc://127.0.0.1:{sink.grpc_port}"
    sink.stop()
    config = (
        f"exporters:\n  - endpoint: {endpoint}\n    queue: {{max_requests: 1}}\n"
        "    retry: {initial_interval: 200ms, max_interval: 500ms}\n"
    )
    with serve(config=config) as processor:
        provider = TracerProvider()
        exporter = GrpcSpanExporter(endpoint=processor.grpc_endpoint, insecure=True, timeout=30)
        provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=100, schedule_delay_millis=50))
        tracer = provider.get_tracer("tests")
        for index in range(300):
            with tracer.start_as_current_span(f"span-{index}"):
                pass
        processor.wait_for(lambda: rejected(processor, "queue_full") >= 1, what="a full queue")
        sink.start()  # the downstream comes back; the SDK's retries now get in
        provider.shutdown()
        spans = sink.wait_for_spans(300)
        assert sorted(span.name for span in spans) == sorted(f"span-{i}" for i in range(300))
        terms = assert_books_balance(processor, endpoint)
        assert terms["rejected"] > 0 and terms["sent"] == terms["accepted"] == 300


def test_bearer_token_on_receivers_and_admin() -> None:
    config = (
        "receivers:\n  grpc: {endpoint: '127.0.0.1:0', auth: {bearer_token: t0ken}}\n"
        "  http: {endpoint: '127.0.0.1:0', auth: {bearer_token: t0ken}}\n"
        "admin: {endpoint: '127.0.0.1:0', auth: {bearer_token: adm1n}}\n"
    )
    with serve(config=config) as processor:
        port = processor.ports["otlp_grpc"]
        assert grpc_error(port, make_request(1)).code() == grpc.StatusCode.UNAUTHENTICATED
        grpc_export(port, make_request(1), (("authorization", "Bearer t0ken"),))
        assert requests.post(processor.http_url, data=make_request(1), headers=PROTOBUF, timeout=5).status_code == 401
        with_token = {**PROTOBUF, "Authorization": "Bearer t0ken"}
        assert requests.post(processor.http_url, data=make_request(1), headers=with_token, timeout=5).status_code == 200
        assert requests.get(processor.admin_url + "/metrics", timeout=5).status_code == 401
        metrics = requests.get(processor.admin_url + "/metrics", headers={"Authorization": "Bearer adm1n"}, timeout=5)
        assert metrics.status_code == 200
        assert 'otel_impact_receiver_rejected_requests_total{reason="unauthenticated",transport="grpc"} 1.0' in (
            metrics.text
        )
        assert requests.get(processor.admin_url + "/healthz", timeout=5).status_code == 200
        assert requests.get(processor.admin_url + "/readyz", timeout=5).status_code == 200


def test_raw_identities_leave_as_the_sdk_pseudonym(sink: OtlpSink) -> None:
    env = {"OTEL_IMPACT_HASH_KEY": TEST_KEY_HEX}
    config = "pseudonymization:\n  attributes: [enduser.id, user.id]\n"
    with serve("--forward", f"grpc://127.0.0.1:{sink.grpc_port}", config=config, env=env) as processor:
        provider = TracerProvider()  # a service without the plugin, as a Java or Go one would be
        provider.add_span_processor(SimpleSpanProcessor(GrpcSpanExporter(endpoint=processor.grpc_endpoint)))
        tracer = provider.get_tracer("tests")
        with tracer.start_as_current_span("login", attributes={"enduser.id": CANARY_EMAIL}):
            pass
        with tracer.start_as_current_span("order", attributes={"user.id": int(CANARY_NUMBER), "other": "x"}):
            pass
        provider.shutdown()
        spans = {span.name: span for span in sink.wait_for_spans(2)}
        pseudonymizer = Pseudonymizer(HashKey(bytes.fromhex(TEST_KEY_HEX), source="test"))
        assert spans["login"].attributes["enduser.id"] == pseudonymizer.pseudonymize(CANARY_EMAIL)
        assert spans["order"].attributes["user.id"] == pseudonymizer.pseudonymize(CANARY_NUMBER)
        assert spans["order"].attributes["other"] == "x"
        assert_no_canary(sink.raw_bytes(), where="forwarded spans")
        assert processor.metric_sum("otel_impact_pseudonymized_requests_total") == 2
    assert_no_canary(processor.log().encode(), where="the processor's log")


def test_pseudonymization_without_a_key_refuses_to_start() -> None:
    config = "pseudonymization:\n  attributes: [enduser.id]\n"
    with pytest.raises(RuntimeError, match=r"pseudonymization.attributes: .* no key is set\. Fix: set OTEL_IMPACT"):
        with serve(config=config):
            pass
    bad = subprocess.run(
        [CLI, "serve", "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "none", "--admin", "none"],
        env={"OTEL_IMPACT_HASH_KEY": "short", "OTEL_IMPACT_CONFIG": "/nonexistent.yaml"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "--config: cannot read /nonexistent.yaml" in bad.stderr


# -- fuzzing: arbitrary input never takes the server down ----------------------------------------------

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
otlp_keys = st.sampled_from(
    ["resourceSpans", "scopeSpans", "spans", "traceId", "spanId", "name", "kind", "attributes", "key", "value",
     "stringValue", "intValue", "startTimeUnixNano", "status", "code", "links", "events", "resource"]
)  # fmt: skip
otlp_like = st.recursive(
    st.none() | st.integers() | st.text(max_size=34) | st.booleans(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(otlp_keys, children, max_size=4),
    max_leaves=25,
)
VALID = make_request(3)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(VALID)
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.integers(0, 255))
    return bytes(data)


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[Processor]:
    with serve() as processor:
        yield processor


@FUZZ
@given(body=st.binary(max_size=2048) | mutated())
def test_fuzz_grpc_receiver(fuzz_target: Processor, body: bytes) -> None:
    try:
        grpc_export(fuzz_target.ports["otlp_grpc"], body)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error


@FUZZ
@given(body=st.binary(max_size=2048) | mutated(), gzipped=st.booleans())
def test_fuzz_http_protobuf(fuzz_target: Processor, body: bytes, gzipped: bool) -> None:
    headers = {**PROTOBUF, "Content-Encoding": "gzip"} if gzipped else PROTOBUF
    reply = requests.post(
        fuzz_target.http_url, data=gzip.compress(body) if gzipped else body, headers=headers, timeout=10
    )
    assert reply.status_code in (200, 400), reply.content


@FUZZ
@given(document=json_values | otlp_like | st.fixed_dictionaries({"resourceSpans": otlp_like}))
def test_fuzz_http_json(fuzz_target: Processor, document: object) -> None:
    reply = requests.post(fuzz_target.http_url, data=json.dumps(document), headers=JSON, timeout=10)
    assert reply.status_code in (200, 400), reply.content
    if reply.status_code == 400:
        assert reply.json()["message"].startswith("invalid OTLP/JSON")


def test_fuzzed_server_is_up_and_counted_every_answer(fuzz_target: Processor) -> None:
    grpc_export(fuzz_target.ports["otlp_grpc"], VALID)
    assert requests.get(fuzz_target.admin_url + "/healthz", timeout=5).status_code == 200
    accepted = fuzz_target.metric_sum("otel_impact_receiver_requests_total", outcome="accepted")
    refused = fuzz_target.metric_sum("otel_impact_receiver_requests_total", outcome="rejected")
    assert refused == fuzz_target.metric_sum("otel_impact_receiver_rejected_requests_total", reason="invalid")
    assert accepted >= 1 and accepted + refused >= 3 * 60
    assert fuzz_target.process.poll() is None
