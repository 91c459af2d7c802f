"""Relayed analysis results fold exactly as local ones: one merge path (`SliState.apply`)."""

from __future__ import annotations

import pickle

from support.otlp_traces import batch, request, span
from support.sli_http import CONFIG, MINUTE, T0

from otel_impact.processors.analysis.sink import AnalyzerCounts, EngineSink, LoopAnalyzer, RelaySink, deliver
from otel_impact.processors.api.documents import impact_document
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliEngine
from otel_impact.processors.sli.queries import SliQueries


def checkouts(now: int) -> bytes:
    spans = []
    for i in range(90):
        tier = ("free", "pro", "enterprise")[i % 3]
        attributes = {
            "impact.task.name": "checkout",
            "impact.customer.tier": tier,
            "impact.feature_flags": [f"new_checkout={'on' if i % 2 else 'off'}"],
            "impact.customer.hash": f"{i % 40:032x}",
            "impact.task.value": 10.0,
        }
        spans.append(span(end_ns=now - (i % 5) * MINUTE, attributes=attributes, error=tier == "pro", duration_ms=9 + i))
    return request(spans)


def engine() -> SliEngine:
    clock = ManualClock(start_ns=T0)
    clock.advance(20 * 60)
    return SliEngine(CONFIG, clock=clock)


def test_a_relayed_result_folds_as_a_local_one() -> None:
    local, main, extra = engine(), engine(), engine()
    now = local.clock.now_ns()
    data = checkouts(now)
    local.analyze(batch(data, now))  # analysis in process: the baseline

    relayed: list[bytes] = []
    LoopAnalyzer(extra, RelaySink(lambda message: relayed.append(pickle.dumps(message)))).analyze(batch(data, now))
    RelaySink(lambda message: relayed.append(pickle.dumps(message))).note_unanalysed(now, 3, "buffer_full")
    local.state.note_unanalysed(now, 3, "buffer_full")
    sink = EngineSink(main)
    assert all(deliver(pickle.loads(message), sink) for message in relayed)

    def answer(source: SliEngine) -> object:
        return impact_document(SliQueries(source).impact("checkout", now - 30 * MINUTE, now + MINUTE))

    assert answer(main) == answer(local)
    assert main.task_events == local.task_events == 90
    assert main.batches == local.batches and extra.task_events == 0  # the extra engine only shaped it
    assert main.state.unanalysed_in(now - MINUTE, now + MINUTE) == {"buffer_full": 3}


def test_counts_are_absorbed_and_other_messages_are_not_analysis() -> None:
    main = engine()
    sink = EngineSink(main)
    assert deliver(AnalyzerCounts(errors=2, batches=3), sink)
    assert main.errors == 2 and main.batches == 3
    assert not deliver("something else", sink)
