"""Real-user monitoring in a real browser: pages bundled with the official OpenTelemetry JS web SDK
export OTLP/JSON straight to ``serve``, cross-origin, under its CORS rules.

A shop on one loopback port renders pages whose ``<head>`` holds the visitor's pseudonym and tier
(`otel_impact.browser_identity`); headless Chromium (the system one, driven by Playwright) loads
them, and their document-load and fetch spans go to ``serve`` on another port. Processor config
alone names the tasks (``match.scope_name``, ``match.url_path``). Pages of one tier throw a JS
error while loading: ``/api/v1/impact?task=page_load`` counts their failed page loads and
impacted users for that tier only. A page from an origin ``serve`` does not allow cannot export:
the browser itself blocks it after the refused preflight.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from support.canaries import CANARY_EMAIL, TEST_KEY_HEX, assert_no_canary
from support.otlp_sink import OtlpSink, SpanRecord
from support.processes import Service, service
from support.processor import Processor, get_json, serve
from support.rum_page import chromium_browser, rum_bundle

from otel_impact import is_pseudonym

TIERS = ("free", "pro")
BROKEN_TIER = "free"
PAGES_PER_TIER = 4
DOCUMENT_LOAD = "@opentelemetry/instrumentation-document-load"
FETCH = "@opentelemetry/instrumentation-fetch"
CONFIG = """
receivers:
  http:
    cors:
      allowed_origins: ["http://127.0.0.1:{shop_port}"]
      max_age: 2h
sli:
  dimensions:
    - {{name: tier, attribute: impact.customer.tier}}
  tasks:
    - name: page_load
      match: {{scope_name: "{document_load}", span_name: documentLoad}}
    - name: checkout_click
      match: {{scope_name: "{fetch}", url_path: /api/checkout}}
"""


@pytest.fixture(scope="module")
def shop() -> Iterator[Service]:
    bundle = rum_bundle()
    env = {"OTEL_IMPACT_HASH_KEY": TEST_KEY_HEX}
    with service("rum_shop.py", [str(bundle), CANARY_EMAIL, BROKEN_TIER], env) as running:
        yield running


@pytest.fixture(scope="module")
def downstream() -> Iterator[OtlpSink]:
    with OtlpSink() as sink:
        yield sink


@pytest.fixture(scope="module")
def processor(shop: Service, downstream: OtlpSink) -> Iterator[Processor]:
    config = CONFIG.format(shop_port=shop.port, document_load=DOCUMENT_LOAD, fetch=FETCH)
    with serve("--forward", f"grpc://127.0.0.1:{downstream.grpc_port}", config=config) as running:
        yield running


def visit(browser: Any, url: str) -> tuple[list[int], str]:
    """Load ``url``, wait for its page-load and checkout-fetch spans to end, flush them; the
    outcome of each export (0 success, 1 failure) and the page's HTML."""
    page = browser.new_page()
    try:
        page.goto(url, wait_until="load", timeout=60_000)
        ended = "window.rum && ['documentLoad', 'POST'].every((name) => window.rum.ended.includes(name))"
        page.wait_for_function(ended, timeout=60_000)
        page.evaluate("window.rum.flush().catch(() => null)")  # a blocked export rejects the flush
        page.wait_for_function("window.rum.results.length > 0", timeout=60_000)
        return list(page.evaluate("window.rum.results")), page.content()
    finally:
        page.close()


def by_tier(processor: Processor, task: str) -> dict[str, dict[str, Any]]:
    answer = get_json(processor, f"/api/v1/impact?task={task}&window=5m&by=tier")
    return {segment["segment"]["tier"]: segment for segment in answer["segments"]}


def test_browser_page_loads_count_per_tier_and_a_js_error_hurts_only_its_tier(
    shop: Service, processor: Processor, downstream: OtlpSink
) -> None:
    with chromium_browser() as browser:
        for tier in TIERS:
            for number in range(PAGES_PER_TIER):
                url = f"http://127.0.0.1:{shop.port}/page/{tier}/{number}?otlp={processor.http_url}"
                results, html = visit(browser, url)
                assert results and set(results) == {0}, f"exports from the allowed origin failed: {results}"
                assert 'name="impact.customer.hash"' in html
                assert_no_canary(html.encode(), where="the page")

    pages = PAGES_PER_TIER * len(TIERS)
    processor.wait_for(
        lambda: get_json(processor, "/api/v1/impact?task=page_load&window=5m")["events"]["total"] == pages,
        what=f"{pages} page_load events",
    )
    loads = by_tier(processor, "page_load")
    assert set(loads) == set(TIERS)
    broken, healthy = loads[BROKEN_TIER], loads["pro"]
    assert broken["events"] == {"total": PAGES_PER_TIER, "good": 0, "bad": PAGES_PER_TIER}
    assert broken["impacted_users"]["estimate"] == pytest.approx(PAGES_PER_TIER, abs=0.5)
    assert healthy["events"] == {"total": PAGES_PER_TIER, "good": PAGES_PER_TIER, "bad": 0}
    assert healthy["impacted_users"]["estimate"] == 0
    processor.wait_for(
        lambda: get_json(processor, "/api/v1/impact?task=checkout_click&window=5m")["events"]["total"] == pages,
        what=f"{pages} checkout_click events (the pages' fetches)",
    )
    assert all(segment["events"]["bad"] == 0 for segment in by_tier(processor, "checkout_click").values())
    answers = json.dumps([loads, get_json(processor, "/api/v1/customers/top?task=page_load&window=5m")])
    assert_no_canary(answers.encode(), where="the impact answers")
    assert "checkout widget crashed" not in answers  # exception messages are not part of the answers

    # The spans as forwarded: page loads carry the pseudonym and tier from the meta tags, are
    # children of the server span named by the traceparent tag, and the broken tier's hold the
    # JS error as an exception event with status error.
    def loads_sent() -> list[SpanRecord]:
        return [record for record in downstream.spans() if record.name == "documentLoad"]

    processor.wait_for(lambda: len(loads_sent()) >= pages, what=f"{pages} page loads forwarded")
    assert len(loads_sent()) == pages
    for record in loads_sent():
        tier = record.attributes["impact.customer.tier"]
        assert is_pseudonym(record.attributes["impact.customer.hash"]) and record.parent_span_id
        exceptions = [attributes for name, attributes in record.events if name == "exception"]
        if tier == BROKEN_TIER:
            assert record.status_code == 2
            assert [e.get("exception.message") for e in exceptions] == ["checkout widget crashed"]
        else:
            assert record.status_code != 2 and not exceptions
    assert_no_canary(downstream.raw_bytes(), where="the spans browsers sent")


def test_a_page_from_an_origin_serve_does_not_allow_is_blocked_by_the_browser(
    shop: Service, processor: Processor
) -> None:
    received_before = processor.metric_sum("otel_impact_receiver_spans_total")
    refused_before = processor.metric_sum("otel_impact_receiver_cors_refused_preflights_total", reason="origin")
    with chromium_browser() as browser:
        # The same shop by another name: origin http://localhost:PORT, not the allowed http://127.0.0.1:PORT.
        url = f"http://localhost:{shop.port}/page/blocked/0?otlp={processor.http_url}"
        results, _ = visit(browser, url)
    assert results and 0 not in results, f"an export from a disallowed origin got through: {results}"
    assert processor.metric_sum("otel_impact_receiver_cors_refused_preflights_total", reason="origin") > refused_before
    assert processor.metric_sum("otel_impact_receiver_spans_total") == received_before
    assert "blocked" not in by_tier(processor, "page_load")
