"""Broken propagation per service edge (issue 15, part 2): the edge tracker over sampled traces,
its bounds, its config, and the known truth through the engine."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2
from prometheus_client import CollectorRegistry, generate_latest
from support.otlp_traces import batch, kv, request

from otel_impact import ConfigurationErrors
from otel_impact.processors.api.documents import attribution_document
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliCollector, SliConfig, SliEngine
from otel_impact.processors.sli.analyzer import SliAnalyzer
from otel_impact.processors.sli.edges import MAX_EDGES, Edge, EdgeHistory
from otel_impact.processors.sli.propagation import MAX_CHILDREN_WAITING, EdgeTracker, PropagationConfig
from otel_impact.processors.sli.queries import SliQueries
from otel_impact.processors.sli.state import SliState
from otel_impact.proto import prefilter, view

SECOND = 10**9
MINUTE = 60 * SECOND
T0 = 1_800_000_000 * SECOND // (60 * MINUTE) * (60 * MINUTE)
ALL = PropagationConfig(trace_sample=1.0)
CLIENT = trace_pb2.Span.SPAN_KIND_CLIENT
SERVER = trace_pb2.Span.SPAN_KIND_SERVER


def ids(rng: random.Random) -> tuple[bytes, bytes]:
    return rng.randbytes(16), rng.randbytes(8)


def otlp_span(trace_id: bytes, span_id: bytes, parent: bytes = b"", *, kind: int = SERVER, **attributes: Any) -> Any:
    message = trace_pb2.Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name="op",
        kind=kind,  # type: ignore[arg-type]
        start_time_unix_nano=T0 - 2 * SECOND,
        end_time_unix_nano=T0 - SECOND,
    )
    message.attributes.extend(kv(key.replace("_", "."), value) for key, value in attributes.items())
    return message


def checkout_calls(calls: int, lose_share: float, seed: int) -> tuple[list[bytes], list[bytes], int]:
    """``calls`` checkouts: checkout-api's server span (the task root) and its client span (the
    task inherited) call payments, whose server span loses the customer ``lose_share`` of the
    time, and has an in-process child. Returns the checkout-api requests, the payments requests
    (sent first: callees end first) and how many calls lost the customer."""
    rng = random.Random(seed)
    checkout: list[Any] = []
    payments: list[Any] = []
    lost = 0
    for n in range(calls):
        trace_id, root = ids(rng)
        client, server, inner = rng.randbytes(8), rng.randbytes(8), rng.randbytes(8)
        customer = f"{n:032x}"
        task = {"impact_task_name": "checkout", "impact_customer_hash": customer}
        checkout.append(otlp_span(trace_id, root, impact_task_root=True, **task))
        checkout.append(otlp_span(trace_id, client, root, kind=CLIENT, impact_task_root=False, **task))
        drops = rng.random() < lose_share
        lost += drops
        kept = {} if drops else {"impact_task_root": False, **task}
        payments.append(otlp_span(trace_id, server, client, **kept))
        payments.append(otlp_span(trace_id, inner, server, kind=CLIENT, **kept))  # same service: no edge
    size = 100
    return (
        [
            request(checkout[i : i + 2 * size], {"service.name": "checkout-api"})
            for i in range(0, len(checkout), 2 * size)
        ],
        [request(payments[i : i + 2 * size], {"service.name": "payments"}) for i in range(0, len(payments), 2 * size)],
        lost,
    )


def engine_with(propagation: PropagationConfig = ALL) -> tuple[SliEngine, ManualClock]:
    clock = ManualClock(start_ns=T0 - 10 * MINUTE)
    engine = SliEngine(SliConfig().with_changes(propagation=propagation), clock=clock)
    clock.advance(10 * 60)
    return engine, clock


def test_the_edge_that_loses_the_baggage_is_named_with_its_true_coverage() -> None:
    """Known truth: 20% of checkout-api's calls to payments lose the customer; children arrive
    in earlier batches than their parents."""
    engine, _ = engine_with()
    checkout, payments, lost = checkout_calls(2000, 0.2, seed=15)
    for index, (callee_batch, caller_batch) in enumerate(zip(payments, checkout, strict=True)):
        engine.analyze(batch(callee_batch, T0 + index))
        engine.analyze(batch(caller_batch, T0 + index))
    (edge,) = SliQueries(engine).edges("checkout", T0 - 5 * MINUTE, T0 + MINUTE)
    assert (edge.caller, edge.callee) == ("checkout-api", "payments")
    assert (edge.children_with_customer, edge.children_without_customer) == (2000 - lost, lost)
    assert edge.coverage is not None and abs(edge.coverage - (1 - lost / 2000)) <= 0.01
    assert 300 < lost < 500
    registry = CollectorRegistry()
    registry.register(SliCollector(SliQueries(engine)))
    text = generate_latest(registry).decode()
    labels = 'callee="payments",caller="checkout-api"'
    assert f'impact_propagation_children_total{{{labels},customer="lost",task="checkout"}} {float(lost)}' in text
    assert 'impact_propagation_misses_total{reason="unresolved"} 0.0' in text  # every child met its parent
    document = attribution_document("checkout", "5m", T0 - 5 * MINUTE, T0 + MINUTE, [], [edge])
    assert document["edges"] == [
        {
            "caller": "checkout-api",
            "callee": "payments",
            "children_with_customer": 2000 - lost,
            "children_without_customer": lost,
            "coverage": round(1 - lost / 2000, 6),
        }
    ]


def test_only_sampled_traces_count_and_the_pre_filter_keeps_them_whole() -> None:
    engine, _ = engine_with(PropagationConfig(trace_sample=1 / 16))
    checkout, payments, _ = checkout_calls(3200, 0.2, seed=3)
    sampled = 0
    below = prefilter.sample_below(1 / 16)
    for data in checkout:
        for span in trace_pb2.TracesData.FromString(data).resource_spans[0].scope_spans[0].spans:
            sampled += span.kind == CLIENT and prefilter.trace_sampled(span.trace_id, below)
    for callee_batch, caller_batch in zip(payments, checkout, strict=True):
        if engine.analyzer.filters:  # the compiled pre-filter: the client spans reach the analysis
            kept = engine.analyzer.select(caller_batch)
            assert b"impact.task.root" in kept
        engine.analyze(batch(callee_batch, T0))
        engine.analyze(batch(caller_batch, T0))
    (edge,) = SliQueries(engine).edges("checkout", T0 - 5 * MINUTE, T0 + MINUTE)
    assert edge.children_with_customer + edge.children_without_customer == sampled
    assert 3200 / 16 * 0.7 < sampled < 3200 / 16 * 1.3


def test_results_from_another_process_carry_the_edges() -> None:
    config = SliConfig().with_changes(propagation=ALL)
    worker = SliAnalyzer(SliState(config, now_ns=T0))
    checkout, payments, lost = checkout_calls(200, 0.5, seed=1)
    result = worker.results([batch(data, T0) for data in (*payments, *checkout)])
    engine, _ = engine_with()
    engine.state.apply(pickle.loads(pickle.dumps(result)))
    (edge,) = SliQueries(engine).edges("checkout", T0 - 5 * MINUTE, T0 + MINUTE)
    assert edge.children_without_customer == lost and edge.children_with_customer == 200 - lost
    assert worker.edges is not None and worker.edges.take().counts == {}  # handed over once


def test_off_counts_nothing_and_keeps_the_pre_filter_narrow() -> None:
    engine, _ = engine_with(PropagationConfig(enabled=False))
    assert engine.analyzer.edges is None
    checkout, payments, _ = checkout_calls(50, 0.5, seed=2)
    for data in (*payments, *checkout):
        engine.analyze(batch(data, T0))
    if engine.analyzer.filters:  # only the task roots reach the analysis
        kept = view.parse_traces(engine.analyzer.select(checkout[0]))
        assert view.span_total(kept) == 50
    assert SliQueries(engine).edges("checkout", T0 - 5 * MINUTE, T0 + MINUTE) == []


# -- the tracker on its own ------------------------------------------------------------------------


class Attrs(dict[str, bytes]):
    """A view attribute map stand-in."""


class FakeSpan:
    def __init__(self, span_id: bytes, parent: bytes = b"", trace_id: bytes = b"\x00" * 16) -> None:
        self.trace_id, self.span_id, self.parent_span_id = trace_id, span_id, parent


CUSTOMER = Attrs({"impact.customer.hash": b"\x0a\x01x", "impact.task.name": b"\x0a\x08checkout"})


def test_a_late_parent_resolves_its_waiting_children_and_the_ttl_forgets() -> None:
    tracker = EdgeTracker(PropagationConfig(trace_sample=1.0, ttl_s=60), "impact.customer.hash")
    tracker.see(FakeSpan(b"child001", b"parent01"), Attrs(), "payments", T0)
    tracker.see(FakeSpan(b"parent01"), CUSTOMER, "checkout", T0 + SECOND)
    assert tracker.take().counts == {("checkout", "checkout", "payments", T0 // MINUTE): [0, 1]}
    tracker.see(FakeSpan(b"parent02"), CUSTOMER, "checkout", T0 + 2 * SECOND)
    tracker.see(FakeSpan(b"child002", b"parent02"), CUSTOMER, "payments", T0 + 31 * SECOND)  # within ttl / 2: held
    assert sum(c[0] for c in tracker.take().counts.values()) == 1
    tracker.see(FakeSpan(b"child003", b"parent02"), CUSTOMER, "payments", T0 + 200 * SECOND)  # forgotten
    tracker.see(FakeSpan(b"other001"), CUSTOMER, "x", T0 + 400 * SECOND)
    report = tracker.take()
    assert report.counts == {} and report.unresolved == 1 and report.dropped_early == 0


def test_the_maps_stay_within_their_bounds_and_count_what_they_drop() -> None:
    tracker = EdgeTracker(PropagationConfig(trace_sample=1.0, max_spans=1000), "impact.customer.hash")
    rng = random.Random(5)
    for n in range(20_000):
        tracker.see(FakeSpan(rng.randbytes(8), rng.randbytes(8)), CUSTOMER, "svc", T0 + n)
        spans, pending = tracker.held()
        assert spans <= 1000 and pending <= 250
    report = tracker.take()
    assert report.dropped_early > 0 and report.unresolved > 0
    history = EdgeHistory()
    history.add_all(report, {})
    assert (history.dropped_early, history.unresolved) == (report.dropped_early, report.unresolved)
    many = EdgeTracker(ALL, "impact.customer.hash")
    for n in range(MAX_CHILDREN_WAITING + 10):
        many.see(FakeSpan(n.to_bytes(8, "big"), b"parent01"), Attrs(), "callee", T0)
    many.see(FakeSpan(b"parent01"), CUSTOMER, "caller", T0)
    report = many.take()
    assert sum(counts[1] for counts in report.counts.values()) == MAX_CHILDREN_WAITING
    assert report.unresolved == 10


def test_hostile_ids_and_names_are_skipped_or_cut() -> None:
    tracker = EdgeTracker(ALL, "impact.customer.hash")
    for trace_id, span_id, parent in [(b"", b"x" * 8, b""), (b"\x00" * 17, b"a" * 8, b""), (b"\x00" * 16, b"b", b"")]:
        tracker.see(FakeSpan(span_id, parent, trace_id), CUSTOMER, "s", T0)
    assert tracker.held() == (0, 0)
    huge = Attrs({"impact.customer.hash": b"\x0a\x01x", "impact.task.name": b"\x0a" + b"\xff" * 5000})
    tracker.see(FakeSpan(b"parent01"), huge, "checkout", T0)
    tracker.see(FakeSpan(b"child001", b"parent01"), Attrs(), "payments", T0)
    (key,) = tracker.take().counts
    assert key[0] == "_other"


def test_history_is_bounded_and_worst_first() -> None:
    history = EdgeHistory()
    history.add(("t", "a", "b"), 1, 9, 1)
    history.add(("t", "a", "c"), 1, 1, 9)
    history.add(("u", "a", "c"), 1, 1, 1)
    assert history.edges("t", 0, 10 * MINUTE) == [Edge("a", "c", 1, 9), Edge("a", "b", 9, 1)]
    for n in range(MAX_EDGES):
        history.add(("t", "x", str(n)), 1, 1, 0)
    assert history.overflow == 3  # the last three edges found no room
    assert len(list(history)) == MAX_EDGES


# -- config ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "share"), [("1/16", 1 / 16), (0.25, 0.25), ("50%", 0.5), (1, 1.0)])
def test_trace_sample_reads_fractions_numbers_and_percentages(written: object, share: float) -> None:
    config = SliConfig.from_mapping({"propagation": {"trace_sample": written}})
    assert config.propagation.trace_sample == share


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"trace_sample": 0}, "sli.propagation.trace_sample"),
        ({"trace_sample": "2"}, "sli.propagation.trace_sample"),
        ({"trace_sample": "a/b"}, "sli.propagation.trace_sample"),
        ({"max_spans": 10}, "sli.propagation.max_spans"),
        ({"ttl": "2h"}, "sli.propagation.ttl"),
        ({"tll": "2m"}, "sli.propagation.tll"),
    ],
)
def test_bad_settings_name_the_field_and_the_fix(section: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigurationErrors) as caught:
        SliConfig.from_mapping({"propagation": section})
    message = str(caught.value)
    assert field in message
    assert "use " in message or "write " in message or "check the spelling" in message
