"""``otel-impact serve`` as a subprocess between real OTLP senders and a real OTLP receiver: nothing lost."""

from __future__ import annotations

import gzip
import json
import os
import signal
import tempfile
import threading
import time
from collections import Counter

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from support.otlp_requests import ids_of, make_request
from support.otlp_sink import OtlpSink
from support.processor import assert_books_balance, grpc_export, serve

pytestmark = pytest.mark.slow

RETRY_FAST = "retry: {initial_interval: 200ms, max_interval: 1s, max_elapsed_time: 2m}"


def downstream(sink: OtlpSink, extra: str = "") -> tuple[str, str]:
    """A config forwarding to ``sink`` over gRPC, and the exporter's name."""
    endpoint = f"grpc://127.0.0.1:{sink.grpc_port}"
    return f"exporters:\n  - endpoint: {endpoint}\n    {RETRY_FAST}\n{extra}", endpoint


def send_with_sdk(exporter: SpanExporter, count: int, prefix: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": prefix}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=count + 1, max_export_batch_size=256))
    tracer = provider.get_tracer("tests")
    for index in range(count):
        with tracer.start_as_current_span(f"{prefix}-{index}", attributes={"index": index}):
            pass
    provider.shutdown()


def otlp_json_request(names: list[str]) -> bytes:
    spans = [
        {
            "traceId": f"{index + 1:032x}",
            "spanId": f"{0xABC000 + index:016x}",
            "name": name,
            "kind": 2,
            "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000100000000",
            "attributes": [{"key": "http.response.status_code", "value": {"intValue": "200"}}],
            "status": {"code": 1},
        }
        for index, name in enumerate(names)
    ]
    document = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {"name": "json"}, "spans": spans}]}]}
    return json.dumps(document).encode()


def test_sdk_exporters_and_otlp_json_arrive_exactly_once(sink: OtlpSink) -> None:
    config, name = downstream(sink)
    with serve(config=config) as processor:
        send_with_sdk(GrpcSpanExporter(endpoint=processor.grpc_endpoint, insecure=True), 300, "grpc")
        send_with_sdk(HttpSpanExporter(endpoint=processor.http_url), 300, "http")
        json_names = [f"json-{i}" for i in range(3)]
        response = requests.post(
            processor.http_url,
            data=gzip.compress(otlp_json_request(json_names)),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            timeout=10,
        )
        assert response.status_code == 200 and response.json() == {}
        spans = sink.wait_for_spans(603)
        names = Counter(span.name for span in spans)
        expected = {f"{p}-{i}" for p in ("grpc", "http") for i in range(300)} | set(json_names)
        assert set(names) == expected and max(names.values()) == 1
        json_span = next(span for span in spans if span.name == "json-0")
        assert json_span.trace_id == bytes.fromhex(f"{1:032x}") and json_span.kind == 2
        assert json_span.attributes["http.response.status_code"] == 200
        processor.wait_for(lambda: assert_books_balance(processor, name)["queued"] == 0, what="an empty queue")
        terms = assert_books_balance(processor, name)
        assert terms["accepted"] == terms["sent"] == 603 and terms["dropped"] == 0


def test_100k_spans_arrive_exactly_once(sink: OtlpSink) -> None:
    config, name = downstream(sink)
    with serve(config=config) as processor:
        requests_ = [make_request(500) for _ in range(200)]
        expected = [span_id for body in requests_ for span_id in ids_of(body)]

        def send(part: list[bytes], transport: str) -> None:
            session = requests.Session()
            for body in part:
                if transport == "grpc":
                    grpc_export(processor.ports["otlp_grpc"], body)
                else:
                    headers = {"Content-Type": "application/x-protobuf"}
                    reply = session.post(processor.http_url, data=body, headers=headers, timeout=10)
                    assert reply.status_code == 200, reply.text

        senders = [threading.Thread(target=send, args=(requests_[i::4], "grpc" if i % 2 else "http")) for i in range(4)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        deadline = time.monotonic() + 60
        while len(sink.span_ids()) < len(expected) and time.monotonic() < deadline:
            time.sleep(0.2)
        received = sink.span_ids()
        assert len(received) == len(expected) == 100_000
        assert Counter(received) == Counter(expected)  # every span once, none twice
        processor.wait_for(lambda: assert_books_balance(processor, name)["queued"] == 0, what="an empty queue")
        assert assert_books_balance(processor, name)["sent"] == 100_000


def test_downstream_down_for_10_seconds_loses_nothing(sink: OtlpSink) -> None:
    config, name = downstream(sink)
    with serve(config=config) as processor:
        sink.stop()
        down_since = time.monotonic()
        send_with_sdk(HttpSpanExporter(endpoint=processor.http_url), 1000, "outage")
        for _ in range(10):
            grpc_export(processor.ports["otlp_grpc"], make_request(100))
        processor.wait_for(lambda: assert_books_balance(processor, name)["retried"] > 0, what="a retry")
        assert assert_books_balance(processor, name)["queued"] == 2000
        time.sleep(max(0.0, 10 - (time.monotonic() - down_since)))
        sink.start()
        processor.wait_for(lambda: len(sink.span_ids()) >= 2000, timeout=30, what="delivery after the outage")
        received = sink.span_ids()
        assert len(received) == len(set(received)) == 2000  # zero loss, and no duplicates were needed
        processor.wait_for(lambda: assert_books_balance(processor, name)["queued"] == 0, what="an empty queue")
        terms = assert_books_balance(processor, name)
        assert terms["sent"] == 2000 and terms["dropped"] == 0


def test_kill_9_with_a_persistent_queue_loses_nothing_and_counts_duplicates(sink: OtlpSink) -> None:
    config, name = downstream(sink)
    bodies = [make_request(100) for _ in range(20)]
    expected = Counter(span_id for body in bodies for span_id in ids_of(body))
    with tempfile.TemporaryDirectory() as state:
        sink.behavior.delay = 1.5  # the downstream answers slowly: requests are in flight at the kill
        with serve(config=config, state=state) as first:
            for body in bodies:
                grpc_export(first.ports["otlp_grpc"], body)
            time.sleep(0.5)
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.wait(timeout=10)
        time.sleep(sink.behavior.delay)  # the slow answers complete into the void
        sink.behavior.delay = 0
        with serve(config=config, state=state) as second:
            second.wait_for(lambda: set(sink.span_ids()) == set(expected), timeout=30, what="every span delivered")
            second.wait_for(lambda: assert_books_balance(second, name)["queued"] == 0, what="an empty queue")
            terms = assert_books_balance(second, name)
            received = Counter(sink.span_ids())
            duplicates = sum(received.values()) - len(received)
            # The second process delivered exactly what it found on disk (usually all of it: the
            # slow downstream had answered nothing before the kill).
            assert terms["restored"] == terms["sent"] > 0
            assert 0 < duplicates <= terms["redelivered"], (duplicates, terms)
            assert "restored" in second.log() and "possibly sent before" in second.log()


def test_partial_success_is_logged_and_counted(sink: OtlpSink) -> None:
    config, name = downstream(sink)
    sink.behavior.partial_rejected = 2
    with serve(config=config) as processor:
        grpc_export(processor.ports["otlp_grpc"], make_request(5))
        processor.wait_for(
            lambda: processor.metric_sum("otel_impact_exporter_partial_success_rejected_spans_total") == 2,
            what="partial success counted",
        )
        assert processor.metric_sum("otel_impact_exporter_partial_success_responses_total", exporter=name) == 1
        assert "accepted a request partially: 2 of 5 spans rejected" in processor.log()
        assert assert_books_balance(processor, name)["sent"] == 5


def test_sigterm_drains_then_keeps_or_counts_what_is_left(sink: OtlpSink) -> None:
    config, name = downstream(sink, "drain_timeout: 1s\n")
    sink.behavior.delay = 0.3  # slow but up: the drain delivers everything before exiting
    with serve(config=config) as processor:
        for _ in range(5):
            grpc_export(processor.ports["otlp_grpc"], make_request(40))
        assert processor.terminate() == 0
    assert len(sink.span_ids()) == 200
    assert "drained; everything received was delivered" in processor.log()

    sink.behavior.delay = 0
    sink.stop()  # down: nothing can be delivered before the deadline
    with serve(config=config) as processor:
        grpc_export(processor.ports["otlp_grpc"], make_request(30))
        started = time.monotonic()
        assert processor.terminate() == 0
        assert time.monotonic() - started < 10
    assert "30 spans for grpc://127.0.0.1" in processor.log() and "lost; run with --state" in processor.log()

    with tempfile.TemporaryDirectory() as state:
        with serve(config=config, state=state) as processor:
            grpc_export(processor.ports["otlp_grpc"], make_request(30))
            assert processor.terminate() == 0
        assert "30 spans for" in processor.log() and "stay queued on disk" in processor.log()
        sink.start()
        with serve(config=config, state=state) as processor:
            processor.wait_for(lambda: len(sink.span_ids()) == 230, what="the persisted spans delivered")
            assert assert_books_balance(processor, name)["restored"] == 30


def test_http_downstream_answering_503_with_retry_after_is_retried(sink: OtlpSink) -> None:
    name = f"http://127.0.0.1:{sink.http_port}"
    sink.behavior.status, sink.behavior.retry_after = "unavailable", 1
    with serve(config=f"exporters:\n  - endpoint: {name}\n    {RETRY_FAST}\n") as processor:
        grpc_export(processor.ports["otlp_grpc"], make_request(8))
        processor.wait_for(lambda: sink.refused >= 2, what="two refused attempts")
        sink.behavior.status = "ok"
        processor.wait_for(lambda: len(sink.span_ids()) == 8, what="delivery once the downstream accepts")
        terms = assert_books_balance(processor, name)
        assert terms["sent"] == 8 and terms["retried"] >= 8 and terms["dropped"] == 0
        assert "HTTP 503" in processor.log()


def test_a_downstream_refusing_for_good_is_counted_not_retried(sink: OtlpSink) -> None:
    config, name = downstream(sink)
    sink.behavior.status = "invalid"
    with serve(config=config) as processor:
        grpc_export(processor.ports["otlp_grpc"], make_request(9))
        processor.wait_for(lambda: assert_books_balance(processor, name)["dropped"] == 9, what="the drop counted")
        assert sink.refused == 1  # INVALID_ARGUMENT is permanent: one attempt
        assert processor.metric_sum("otel_impact_exporter_dropped_spans_total", reason="permanent_error") == 9
        assert "dropped 9 spans" in processor.log() and "INVALID_ARGUMENT" in processor.log()
