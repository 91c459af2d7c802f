"""One bad span costs only itself: a value that does not decode is a counted ``(invalid)`` label,
and a span whose analysis raises is counted and skipped while the rest of its batch is analysed."""

from __future__ import annotations

import logging

import pytest
from support.otlp_traces import batch, request, span

from otel_impact.processors.sli import SliConfig
from otel_impact.processors.sli.analyzer import SliAnalyzer
from otel_impact.processors.sli.segments import INVALID
from otel_impact.processors.sli.state import SliState

MINUTE = 60 * 10**9
T0 = 1_800_000_000 * 10**9 // MINUTE * MINUTE


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (payloads here are shorter than 2**14 bytes)."""
    length = len(payload)
    header = bytes([length]) if length < 0x80 else bytes([length & 0x7F | 0x80, length >> 7])
    return bytes([number << 3 | 2]) + header + payload


def nested_tier(depth: int) -> bytes:
    """KeyValue bytes of ``impact.customer.tier`` holding a string inside ``depth`` kvlists
    (deeper than protobuf decodes: its encoder cannot even build it)."""
    value = field(1, b"pro")
    for _ in range(depth):
        value = field(6, field(1, field(1, b"k") + field(2, value)))
    return field(1, b"impact.customer.tier") + field(2, value)


def request_of(encoded_spans: list[bytes]) -> bytes:
    resource = field(1, field(1, b"service.name") + field(2, field(1, b"svc")))
    return field(1, field(1, resource) + field(2, b"".join(field(2, each) for each in encoded_spans)))


def analyzer() -> SliAnalyzer:
    config = SliConfig.from_mapping({"tasks": [{"name": "checkout"}]})
    return SliAnalyzer(SliState(config, now_ns=T0))


def failing_checkouts(count: int) -> list[bytes]:
    return [
        span(end_ns=T0, attributes={"impact.task.name": "checkout"}, error=True, span_id=i + 2).SerializeToString()
        for i in range(count)
    ]


def test_a_nested_kvlist_tier_does_not_blind_the_engine_to_its_batch() -> None:
    sli = analyzer()
    bad = span(end_ns=T0, attributes={"impact.task.name": "checkout"}).SerializeToString() + field(9, nested_tier(40))
    assert len(bad) < 1000
    sli.analyze(batch(request_of([bad, *failing_checkouts(100)]), T0))
    assert sli.errors == 0
    assert sli.state.task_events == 101
    task = sli.state.tasks["checkout"]
    bad_events = sum(int(series.cumulative[1]) for series in task.series.values())
    assert bad_events == 100  # the failing checkouts were counted
    assert (INVALID,) in task.series  # the bad value has its own, labelled segment
    assert sli.reader.bad_values == 1


def test_a_span_whose_analysis_raises_costs_only_itself(caplog: pytest.LogCaptureFixture) -> None:
    sli = analyzer()
    original = sli._task_for_raw

    def broken(raw: bytes) -> object:
        if b"boom" in raw:
            raise RuntimeError("a bug reading this span")
        return original(raw)

    sli._task_for_raw = broken  # type: ignore[assignment,method-assign]
    bad = span(end_ns=T0, attributes={"impact.task.name": "boom"}).SerializeToString()
    with caplog.at_level(logging.WARNING, logger="otel_impact.sli"):
        for _ in range(20):
            sli.analyze(batch(request_of([bad, *failing_checkouts(10)]), T0))
    assert sli.bad_spans == 20 and sli.errors == 20
    assert sli.state.task_events == 200
    lines = [r for r in caplog.records if "could not read" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is not None  # once a minute, one traceback


def test_oversized_values_are_counted_by_kind_and_not_kept() -> None:

    sli = analyzer()
    huge = "x" * 100_000
    failing = span(end_ns=T0, attributes={"impact.task.name": "checkout"}, error=True)
    failing.status.message = huge
    spans = [
        span(end_ns=T0, attributes={"impact.task.name": huge}),
        span(end_ns=T0, attributes={"impact.task.name": "checkout", "impact.customer.tier": huge}),
        span(end_ns=T0, attributes={"impact.task.name": "checkout", "impact.customer.hash": huge}),
        span(end_ns=T0, attributes={"impact.task.name": "checkout", "http.response.status_code": huge}),
        failing,
    ]
    sli.analyze(batch(request(spans, resource={"service.name": huge}), T0))
    tally = sli.value_tally()
    for kind in ("task_name", "resource", "status", "http_status", "user", "segment", "label"):
        assert tally[f"oversized_{kind}"] >= 1, (kind, tally)
    assert tally["invalid_value"] == 0
    task = sli.state.tasks["checkout"]
    assert all(len(value) <= 128 for values in task.series for value in values)
