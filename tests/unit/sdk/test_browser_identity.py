"""`browser_identity`: the page gets the request's pseudonym and tier, HTML-escaped, never the raw ID."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from support.canaries import CANARIES, assert_no_canary

import otel_impact
from otel_impact import BrowserIdentity, ImpactSpanProcessor, is_pseudonym


@pytest.fixture
def tracer(provider: TracerProvider, hash_key: str) -> trace.Tracer:
    provider.add_span_processor(ImpactSpanProcessor())
    return provider.get_tracer("test")


class Metas(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        assert tag == "meta"
        self.found[values["name"] or ""] = values["content"] or ""


def parsed(html: str) -> dict[str, str]:
    parser = Metas()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize("canary", CANARIES)
def test_the_page_gets_the_pseudonym_and_tier_never_the_raw_id(tracer: trace.Tracer, canary: str) -> None:
    with tracer.start_as_current_span("GET /") as server:
        otel_impact.set_customer(canary, tier="pro")
        identity = otel_impact.browser_identity()
        html = identity.meta_tags()
        context = server.get_span_context()
    assert identity.customer_hash is not None and is_pseudonym(identity.customer_hash)
    assert identity.tier == "pro"
    assert identity.attributes() == {"impact.customer.hash": identity.customer_hash, "impact.customer.tier": "pro"}
    assert parsed(html) == {
        "impact.customer.hash": identity.customer_hash,
        "impact.customer.tier": "pro",
        "traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}",
    }
    assert_no_canary(html.encode() + repr(identity).encode(), where="the page's meta tags")


def test_values_are_html_escaped(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("GET /"):
        otel_impact.set_customer("42", tier='"><script>alert(1)</script>')
        html = otel_impact.browser_identity().meta_tags(traceparent=False)
    assert "<script>" not in html and "&quot;&gt;&lt;script&gt;" in html
    assert parsed(html)["impact.customer.tier"] == '"><script>alert(1)</script>'
    assert "traceparent" not in parsed(html)


def test_outside_a_request_nothing_is_known_and_nothing_is_rendered() -> None:
    identity = otel_impact.browser_identity()
    assert identity == BrowserIdentity()
    assert identity.meta_tags() == ""
    assert identity.attributes() == {}


def test_a_tier_without_customer_is_handed_alone(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("GET /"):
        otel_impact.set_customer(None, tier="free")
        identity = otel_impact.browser_identity()
    assert identity.attributes() == {"impact.customer.tier": "free"}
