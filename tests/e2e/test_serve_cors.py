"""``serve`` with ``receivers.http.cors``, spoken to over plain HTTP (the browser test covers a real
browser): preflights, exports of an allowed origin, refusals counted, hostile headers survived."""

from __future__ import annotations

import http.client
from collections.abc import Iterator, Mapping

import pytest
from support.otlp_requests import make_request
from support.processor import Processor, serve

CONFIG = """
receivers:
  http:
    cors:
      allowed_origins: ["https://shop.example.com", "https://*.example.net"]
      max_age: 2h
"""
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


@pytest.fixture(scope="module")
def processor() -> Iterator[Processor]:
    with serve(config=CONFIG) as running:
        yield running


def call(processor: Processor, method: str, headers: Mapping[str, str], body: bytes = b"") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", processor.ports["otlp_http"], timeout=10)
    connection.request(method, "/v1/traces", body=body, headers=dict(headers))
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_a_preflight_of_an_allowed_origin_is_answered(processor: Processor) -> None:
    response = call(processor, "OPTIONS", {"Origin": "https://eu.example.net", **PREFLIGHT})
    assert response.status == 204
    assert response.getheader("Access-Control-Allow-Origin") == "https://eu.example.net"
    assert response.getheader("Access-Control-Allow-Methods") == "POST"
    assert response.getheader("Access-Control-Max-Age") == "7200"


def test_an_export_of_an_allowed_origin_is_accepted_with_its_cors_headers(processor: Processor) -> None:
    headers = {"Origin": "https://shop.example.com", "Content-Type": "application/x-protobuf"}
    response = call(processor, "POST", headers, make_request(3))
    assert response.status == 200
    assert response.getheader("Access-Control-Allow-Origin") == "https://shop.example.com"
    assert response.getheader("Access-Control-Expose-Headers") == "Retry-After"
    refused = call(processor, "POST", {**headers, "Content-Type": "text/plain"}, b"x")
    assert refused.status == 415 and refused.getheader("Access-Control-Allow-Origin") == "https://shop.example.com"


def test_other_origins_get_no_cors_header_and_are_counted(processor: Processor) -> None:
    before = processor.metric_sum("otel_impact_receiver_cors_refused_preflights_total", reason="origin")
    response = call(processor, "OPTIONS", {"Origin": "https://evil.test", **PREFLIGHT})
    assert response.status == 204 and response.getheader("Access-Control-Allow-Origin") is None
    after = processor.metric_sum("otel_impact_receiver_cors_refused_preflights_total", reason="origin")
    assert after == before + 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://" + "a" * 7000 + ".example.net", **PREFLIGHT},
        {
            "Origin": "https://shop.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": ",".join(["x"] * 3000),
        },
        {"Origin": "https://shop.example.com\u00e9", **PREFLIGHT},
    ],
    ids=["long-origin", "many-headers", "non-ascii"],
)
def test_hostile_preflights_are_refused_and_serve_carries_on(processor: Processor, headers: dict[str, str]) -> None:
    encoded = {name: value.encode("utf-8").decode("latin-1") for name, value in headers.items()}
    response = call(processor, "OPTIONS", encoded)
    assert response.status in (204, 400, 431)
    assert response.getheader("Access-Control-Allow-Origin") is None
    assert call(processor, "OPTIONS", {"Origin": "https://shop.example.com", **PREFLIGHT}).status == 204
