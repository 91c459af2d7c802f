"""One kind of client cannot starve another: heavy OTLP/JSON, bad enum names, and the books.

A multi-megabyte JSON request is decoded off the event loop, so health checks and gRPC calls
are answered while it is being decoded; a misspelled enum name is a 400 naming the field and
nothing is forwarded; every span of a JSON request is counted accepted or rejected.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
import requests
from support.otlp_requests import make_request
from support.otlp_sink import OtlpSink
from support.processor import assert_books_balance, grpc_export, serve

from otel_impact.proto.prefilter import PURE_PYTHON_ENV

pytestmark = pytest.mark.slow

JSON = {"Content-Type": "application/json"}
TRACE_ID = "0102030405060708090a0b0c0d0e0f10"


def json_request(spans: int, *, bad_code_at: int | None = None) -> bytes:
    """An OTLP/JSON request of ``spans`` spans of 12 attributes each (about 1 KB per span)."""
    listed = []
    for index in range(spans):
        attributes = [
            {"key": f"app.attribute.{n}", "value": {"stringValue": f"value-{index}-{n}" * 3}} for n in range(12)
        ]
        listed.append(
            {
                "traceId": TRACE_ID,
                "spanId": (index + 1).to_bytes(8, "big").hex(),
                "name": "GET /checkout",
                "kind": 2,
                "startTimeUnixNano": "1700000000000000000",
                "endTimeUnixNano": "1700000000001000000",
                "attributes": attributes,
                "status": {"code": "STATUS_CODE_EROR" if index == bad_code_at else "STATUS_CODE_OK"},
            }
        )
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": listed}]}]}).encode()


@pytest.fixture(scope="module")
def sink_module() -> Iterator[OtlpSink]:
    with OtlpSink() as downstream:
        yield downstream


def test_health_checks_and_grpc_are_answered_while_a_large_json_request_is_decoded(sink_module: OtlpSink) -> None:
    spans = 4000
    body = json_request(spans)
    assert len(body) > 3 << 20
    endpoint = f"grpc://127.0.0.1:{sink_module.grpc_port}"
    # The pure-Python decoder, which takes seconds on this body: the compiled one takes
    # milliseconds, too short a window to see anything else answered during it.
    slow = {PURE_PYTHON_ENV: "1"}
    with serve("--forward", endpoint, config="receivers:\n  max_request_bytes: 16MiB\n", env=slow) as processor:
        uploaded = threading.Event()
        answered: list[int] = []

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(body), 1 << 16):
                yield body[start : start + (1 << 16)]
            uploaded.set()

        def post() -> None:
            reply = requests.post(processor.http_url, data=chunks(), headers=JSON, timeout=120)
            answered.append(reply.status_code)

        poster = threading.Thread(target=post)
        poster.start()
        assert uploaded.wait(60), "the request body was not sent"
        during = 0  # answers that came back while the JSON request was still being processed
        while poster.is_alive():
            health = requests.get(processor.admin_url + "/healthz", timeout=60)
            grpc_export(processor.ports["otlp_grpc"], make_request(1), timeout=60)
            if poster.is_alive():
                assert health.status_code == 200
                during += 1
        poster.join()
        assert answered == [200]
        assert during >= 3, "health checks and gRPC calls waited for the JSON request to be decoded"
        accepted = processor.metric_sum("otel_impact_receiver_spans_total", transport="http/json", outcome="accepted")
        assert accepted == spans
        processor.wait_for(lambda: assert_books_balance(processor, endpoint)["sent"] >= spans, what="delivery")


def test_a_misspelled_enum_name_is_a_400_naming_the_field_and_nothing_is_forwarded(sink_module: OtlpSink) -> None:
    endpoint = f"grpc://127.0.0.1:{sink_module.grpc_port}"
    before = len(sink_module.requests())
    with serve("--forward", endpoint) as processor:
        for spans in (4, 200):  # decoded on the loop, and by the worker
            reply = requests.post(processor.http_url, data=json_request(spans, bad_code_at=3), headers=JSON, timeout=60)
            assert reply.status_code == 400
            assert reply.json()["message"] == (
                "invalid OTLP/JSON: resourceSpans[0].scopeSpans[0].spans[3].status.code: 'STATUS_CODE_EROR' is not "
                "a status code; use STATUS_CODE_UNSET, STATUS_CODE_OK or STATUS_CODE_ERROR or 0-2"
            )
        assert (
            processor.metric_sum("otel_impact_receiver_requests_total", transport="http/json", outcome="rejected") == 2
        )
        assert processor.metric_sum("otel_impact_receiver_rejected_requests_total", reason="invalid") == 2
        assert processor.metric_sum("otel_impact_receiver_spans_total", outcome="accepted") == 0
        # A good request after them is the only one that arrives downstream.
        reply = requests.post(processor.http_url, data=json_request(2), headers=JSON, timeout=60)
        assert reply.status_code == 200
        processor.wait_for(lambda: len(sink_module.requests()) == before + 1, what="the good request downstream")
        terms = assert_books_balance(processor, endpoint)
        assert terms["accepted"] == 2 and terms["sent"] == 2


def test_every_span_of_json_requests_is_counted_accepted_or_rejected() -> None:
    config = "receivers:\n  max_request_bytes: 64KiB\n"
    with serve(config=config) as processor:
        sizes = {"small": json_request(3), "worker": json_request(40)}
        assert len(sizes["small"]) < 32 << 10 <= len(sizes["worker"]) <= 64 << 10
        for data in sizes.values():
            assert requests.post(processor.http_url, data=data, headers=JSON, timeout=60).status_code == 200
        too_large = requests.post(processor.http_url, data=json_request(100), headers=JSON, timeout=60)
        assert too_large.status_code == 413
        misspelled = requests.post(processor.http_url, data=json_request(5, bad_code_at=4), headers=JSON, timeout=60)
        assert misspelled.status_code == 400
        assert processor.metric_sum("otel_impact_receiver_spans_total", transport="http/json", outcome="accepted") == 43
        requests_total = processor.metric_sum("otel_impact_receiver_requests_total", transport="http/json")
        rejected = processor.metric_sum(
            "otel_impact_receiver_requests_total", transport="http/json", outcome="rejected"
        )
        assert (requests_total, rejected) == (4, 2)  # two accepted, two rejected: every request counted once
