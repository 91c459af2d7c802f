"""Browser spans become tasks by processor config: ``match.scope_name`` (the instrumentation scope)
and ``match.url_path`` (the path of a fetch's URL), without custom code in the page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1 import trace_pb2
from support.otlp_traces import batch, kv, span

from otel_impact.processors.clock import ManualClock
from otel_impact.processors.config import Problems
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.config import parse_sli_section
from otel_impact.processors.sli.queries import SliQueries
from otel_impact.processors.sli.tasks import ScopeFilter, UrlPaths

MINUTE = 60 * 10**9
T0 = 1_800_000_000 * 10**9 // MINUTE * MINUTE
CLIENT, INTERNAL = 3, 1
DOCUMENT_LOAD = "@opentelemetry/instrumentation-document-load"
FETCH = "@opentelemetry/instrumentation-fetch"
CONFIG = SliConfig.from_mapping(
    {
        "tasks": [
            {"name": "page_load", "match": {"scope_name": DOCUMENT_LOAD, "span_name": "documentLoad"}},
            {"name": "checkout_click", "match": {"scope_name": FETCH, "url_path": ["/api/checkout"]}},
            {"name": "cart", "match": {"scope_name": [FETCH], "url_path": ["/api/cart/*"], "kind": ["client"]}},
        ]
    }
)


def request(scopes: Sequence[tuple[str | None, Sequence[trace_pb2.Span]]]) -> bytes:
    message = ExportTraceServiceRequest()
    resource_spans = message.resource_spans.add()
    resource_spans.resource.attributes.extend([kv("service.name", "shop-web")])
    for name, spans in scopes:
        scope_spans = resource_spans.scope_spans.add()
        if name is not None:
            scope_spans.scope.name = name
            scope_spans.scope.version = "0.68.0"
        scope_spans.spans.extend(spans)
    return message.SerializeToString()  # type: ignore[no-any-return]


def counts(queries: SliQueries, task: str, now: int) -> tuple[int, int]:
    end = now - now % MINUTE + MINUTE
    result = queries.counts(task, end - 10 * MINUTE, end).get(())
    return (0, 0) if result is None else (result.total, result.bad)


def fetch(now: int, url: str, *, error: bool = False, kind: int = CLIENT, key: str = "http.url") -> trace_pb2.Span:
    attributes: Mapping[str, object] = {key: url, "http.method": "POST"}
    return span(end_ns=now, name="HTTP POST", kind=kind, attributes=attributes, error=error)


def test_document_load_and_fetch_spans_are_named_by_scope_and_url_path() -> None:
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(CONFIG, clock=clock)
    queries = SliQueries(engine)
    now = clock.now_ns()
    document = [
        span(end_ns=now, name="documentLoad", kind=INTERNAL),
        span(end_ns=now, name="documentLoad", kind=INTERNAL, error=True),
        span(end_ns=now, name="documentFetch", kind=INTERNAL),  # a child of the load, not a task event
        span(end_ns=now, name="resourceFetch", kind=INTERNAL),
    ]
    fetches = [
        fetch(now, "https://shop.example.com/api/checkout?cart=1"),
        fetch(now, "https://shop.example.com/api/checkout", error=True, key="url.full"),
        fetch(now, "https://shop.example.com/api/checkout/extra"),  # exact path only
        fetch(now, "https://shop.example.com/api/cart/items"),
        fetch(now, "https://shop.example.com/api/cart/"),
        fetch(now, "https://shop.example.com/api/cart/items", kind=INTERNAL),  # cart asks for client spans
        fetch(now, "not a url at all"),
        span(end_ns=now, name="HTTP POST", kind=CLIENT),  # no URL
    ]
    elsewhere = [span(end_ns=now, name="documentLoad", kind=INTERNAL), fetch(now, "https://x.test/api/checkout")]
    engine.analyze(batch(request([(DOCUMENT_LOAD, document), (FETCH, fetches), ("my-own-code", elsewhere)]), now))
    engine.analyze(batch(request([(None, elsewhere)]), now))  # a scope without a name matches no scope rule
    assert counts(queries, "page_load", now) == (2, 1)
    assert counts(queries, "checkout_click", now) == (2, 1)
    assert counts(queries, "cart", now) == (2, 0)


def test_a_task_name_on_the_span_still_wins_over_scope_rules() -> None:
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(CONFIG, clock=clock)
    queries = SliQueries(engine)
    now = clock.now_ns()
    named = span(end_ns=now, name="documentLoad", attributes={"impact.task.name": "landing"})
    engine.analyze(batch(request([(DOCUMENT_LOAD, [named])]), now))
    assert counts(queries, "landing", now) == (1, 0)
    assert counts(queries, "page_load", now) == (0, 0)


def test_scope_names_are_read_from_the_undecoded_scope_and_bad_bytes_give_no_name() -> None:
    scopes = ScopeFilter()
    encoded = trace_pb2.ScopeSpans()
    encoded.scope.name = FETCH
    raw = encoded.scope.SerializeToString()
    assert scopes.name(raw) == FETCH and scopes.name(raw) == FETCH  # the second from the memo
    assert scopes.name(b"\x0a\xff") == ""  # truncated: no name, no exception
    assert scopes.name(b"") == ""


def test_url_paths_are_exact_or_prefixes() -> None:
    paths = UrlPaths(("/api/checkout", "/api/cart/*"))
    assert paths.matches("/api/checkout") and paths.matches("/api/cart/1") and paths.matches("/api/cart/")
    assert not paths.matches("/api/checkout/1") and not paths.matches("/api/cart") and not paths.matches(None)


@pytest.mark.parametrize(
    ("match", "field"),
    [
        ({"url_path": ["api/checkout"]}, "sli.tasks[0].match.url_path[0]"),
        ({"url_path": ["/api/*/items"]}, "sli.tasks[0].match.url_path[0]"),
        ({"scope_name": 3.5, "nothing": 1}, "sli.tasks[0].match.nothing"),
        ({}, "sli.tasks[0].match"),
    ],
)
def test_bad_browser_match_rules_are_refused_naming_the_field(match: dict[str, object], field: str) -> None:
    problems = Problems()
    parse_sli_section({"tasks": [{"name": "t", "match": match}]}, "sli", problems)
    assert field in {problem.setting for problem in problems.items}, problems.items


@pytest.mark.parametrize("marked", ["span", "resource"])
def test_synthetic_browser_spans_are_named_by_their_scope_in_the_synthetic_state(marked: str) -> None:
    """A probe's page loads (a synthetic browser session) keep their scope when handed to the
    synthetic state, so ``match.scope_name`` names them there as it does for real users."""
    engine = SliEngine(CONFIG, clock=ManualClock(start_ns=T0))
    mark = {"impact.synthetic": True}
    spans = [
        span(end_ns=T0, name="documentLoad", kind=INTERNAL, attributes=mark if marked == "span" else {}, error=True)
        for _ in range(3)
    ]
    message = ExportTraceServiceRequest.FromString(request([(DOCUMENT_LOAD, spans), (FETCH, [fetch(T0, "/x")])]))
    if marked == "resource":
        message.resource_spans[0].resource.attributes.extend([kv("impact.synthetic", True)])
    engine.analyze(batch(message.SerializeToString(), received_ns=T0))
    assert engine.synthetic is not None
    assert counts(SliQueries(engine.synthetic), "page_load", T0) == (3, 3)
    assert counts(SliQueries(engine), "page_load", T0) == (0, 0)
