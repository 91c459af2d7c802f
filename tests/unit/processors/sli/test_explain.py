"""Issue 16, item 1: explain finds what failing requests have in common, and nothing by chance."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest
from support import explain_workload
from support.canaries import CANARY_EMAIL, CANARY_NUMBER, assert_no_canary
from support.explain_workload import BAD_REGION, BAD_VERSION, MINUTE, NOISE
from support.otlp_traces import batch, request, span

from otel_impact.processors.clock import ManualClock
from otel_impact.processors.config import ConfigurationErrors
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.explain import Explanation, explain_task
from otel_impact.processors.sli.state import SliState
from otel_impact.processors.sli.value_memos import COMPOSITE_KEY_BYTES, key_bytes

START = 1_800_000_000 * 10**9 // MINUTE * MINUTE
NOISE_KEYS = {key for key, _ in NOISE}
CONFIG: dict[str, Any] = {"tasks": [{"name": "checkout"}]}


def run(requests: list[tuple[int, bytes]], config: dict[str, Any] | None = None, seed: int = 7) -> SliEngine:
    clock = ManualClock(start_ns=START)
    engine = SliEngine(SliConfig.from_mapping(config or CONFIG), clock=clock)
    if engine.analyzer.explain is not None:
        engine.analyzer.explain.random = random.Random(seed).random
    for received_ns, data in requests:
        if received_ns > clock.now_ns():
            clock.advance((received_ns - clock.now_ns()) / 1e9)
        engine.analyze(batch(data, received_ns))
    return engine


def ask(engine: SliEngine, minutes: int = 15, **where: str) -> Explanation:
    end = START + minutes * MINUTE
    return explain_task(engine.state.explain, engine.config.dimensions, "checkout", START, end, where=where or None)


def values(answer: Explanation) -> list[set[tuple[str, str]]]:
    return [{(f.attribute, f.value), *((f.also,) if f.also is not None else ())} for f in answer.findings]


def test_the_two_causes_rank_first_as_a_pair() -> None:
    answer = ask(run(explain_workload.build(1, start_ns=START)))
    found = values(answer)
    assert found[0] == {BAD_REGION, BAD_VERSION}, found
    assert {frozenset(item) for item in found[1:3]} == {frozenset({BAD_REGION}), frozenset({BAD_VERSION})}
    assert len(found) == 3, found
    first = answer.findings[0]
    assert first.failing_share > 0.9 and first.passing_share < 0.1
    assert first.difference.low > 0.8
    region = next(f for f in answer.findings if (f.attribute, f.value) == BAD_REGION and f.also is None)
    assert region.failing_share == 1.0 and 0.1 < region.passing_share < 0.35
    assert 0 < region.failing_users <= 400
    assert answer.failing_events + answer.passing_events == 6000
    assert answer.candidates_tested > 30  # every value of 14 attributes, plus the pairs


@pytest.mark.parametrize("pattern", [True, False], ids=["pattern", "no-pattern"])
def test_twenty_randomized_runs_report_no_random_attribute(pattern: bool) -> None:
    for seed in range(20):
        engine = run(explain_workload.build(100 + seed, start_ns=START, events=3000, pattern=pattern), seed=seed)
        answer = ask(engine)
        reported = {pair for found in values(answer) for pair in found}
        assert not {key for key, _ in reported} & NOISE_KEYS, (seed, reported)
        if pattern:
            assert {BAD_REGION, BAD_VERSION} <= reported, (seed, reported)
        else:
            assert not reported, (seed, reported)
            assert answer.failing_events > 50


def test_results_from_another_process_give_the_same_answer() -> None:
    requests = explain_workload.build(3, start_ns=START, events=2000)
    here = run(requests)
    worker = SliEngine(SliConfig.from_mapping(CONFIG), clock=ManualClock(start_ns=START))
    assert worker.analyzer.explain is not None
    worker.analyzer.explain.random = random.Random(7).random
    state = SliState(SliConfig.from_mapping(CONFIG), now_ns=START)
    for received_ns, data in requests:
        result = worker.analyzer.results([batch(data, received_ns)])
        state.apply(pickle.loads(pickle.dumps(result)))
    mine = ask(here)
    theirs = explain_task(state.explain, state.config.dimensions, "checkout", START, START + 15 * MINUTE)
    assert values(theirs) == values(mine)
    assert theirs.failing_events == mine.failing_events


def test_old_events_roll_into_coarser_buckets_and_stay_explained() -> None:
    requests = explain_workload.build(4, start_ns=START, events=4000, minutes=180)
    engine = run(requests)
    month = explain_task(
        engine.state.explain,
        engine.config.dimensions,
        "checkout",
        START + 200 * MINUTE - 30 * 86400 * 10**9,
        START + 200 * MINUTE,
    )
    assert month.failing_events + month.passing_events == 4000
    assert values(month)[0] == {BAD_REGION, BAD_VERSION}
    last_hour = explain_task(
        engine.state.explain, engine.config.dimensions, "checkout", START + 120 * MINUTE, START + 180 * MINUTE
    )
    assert 0 < last_hour.failing_events + last_hour.passing_events < 2000


def test_where_restricts_to_events_with_a_value() -> None:
    engine = run(explain_workload.build(5, start_ns=START))
    answer = ask(engine, **{"cloud.region": "eu-west"})
    assert answer.sampled
    assert [f for f in answer.findings if f.attribute == "cloud.region"] == []
    assert values(answer) and values(answer)[0] == {BAD_VERSION}
    with pytest.raises(ValueError, match="no values of 'nope'"):
        ask(engine, nope="x")


def test_a_task_without_events_has_no_findings() -> None:
    engine = SliEngine(SliConfig.from_mapping(CONFIG), clock=ManualClock(start_ns=START))
    answer = ask(engine)
    assert answer.findings == () and answer.failing_events == 0 and answer.candidates_tested == 0


def test_high_cardinality_attributes_are_not_tracked_and_columns_are_capped() -> None:
    engine = run(explain_workload.build(6, start_ns=START, events=2000))
    collector = engine.analyzer.explain
    assert collector is not None
    assert "impact.customer.hash" not in collector.auto_keys
    assert set(collector.auto_keys) >= NOISE_KEYS
    small = run(
        explain_workload.build(6, start_ns=START, events=2000),
        {**CONFIG, "explain": {"max_values_per_task": 16, "max_values_per_key": 2}},
    )
    tracked = small.state.explain.tasks["checkout"]
    assert len(tracked.names) == 16 and tracked.dropped_values > 0
    assert max(tracked.per_key.values()) <= 2


def test_explain_tracking_can_be_switched_off() -> None:
    engine = run(explain_workload.build(7, start_ns=START, events=500), {**CONFIG, "explain": {"enabled": False}})
    assert engine.analyzer.explain is None and not engine.state.explain.tasks


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"max_values_per_key": 1}, "sli.explain.max_values_per_key"),
        ({"pair_sample": 1000}, "sli.explain.pair_sample"),
        ({"passing_sample_rate": 0}, "sli.explain.passing_sample_rate"),
        ({"min_share": 0.9}, "sli.explain.min_share"),
        ({"attributes": ["a", "a"]}, "sli.explain.attributes"),
        ({"typo": 1}, "sli.explain.typo"),
    ],
)
def test_bad_explain_settings_name_the_field(section: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationErrors) as raised:
        SliConfig.from_mapping({"explain": section})
    assert field in str(raised.value)


def test_hostile_values_are_not_remembered() -> None:
    huge = "x" * 100_000
    spans = [
        span(
            end_ns=START + MINUTE,
            attributes={
                "impact.task.name": "checkout",
                "impact.task.outcome": "failure" if index % 2 else "success",
                "impact.customer.hash": huge + str(index),
                "http.route": huge + str(index),
            },
            span_id=index + 1,
        )
        for index in range(40)
    ]
    data = request(spans, {"service.name": "shop", "cloud.region": huge, "host.name": "h1"})
    engine = run([(START + MINUTE + 10**9, data)] * 3)
    collector = engine.analyzer.explain
    assert collector is not None
    memos = (collector._resources, collector._admitted_pairs, collector._user_hashes, collector._admitted)
    assert all(key_bytes(key) <= COMPOSITE_KEY_BYTES for memo in memos for key in memo)
    tracked = engine.state.explain.tasks["checkout"]
    assert all(len(value) <= 128 for _, value in tracked.names)
    assert ("host.name", "h1") in tracked.names and not any(key == "cloud.region" for key, _ in tracked.names)
    answer = ask(engine)
    assert answer.failing_events == 60 and answer.findings == ()


def test_attributes_naming_a_person_are_never_compared() -> None:
    """Every failure carries the same raw ``enduser.id`` (a canary), ``user.email`` and
    ``session.id``, among few other values (low-cardinality, so auto-discovery would take them):
    explain reports the real cause and none of those, and no canary is in its answer."""
    start = START
    spans = []
    for index in range(600):
        bad = index % 3 == 0
        attributes: dict[str, object] = {
            "impact.task.name": "checkout",
            "impact.task.outcome": "failure" if bad else "success",
            "enduser.id": CANARY_NUMBER if bad else f"someone-{index % 5}",
            "user.email": CANARY_EMAIL if bad else f"someone-{index % 5}@example.com",
            "session.id": "s-1" if bad else f"s-{index % 5 + 2}",
            "app.cause": "broken" if bad else "fine",
        }
        spans.append(span(end_ns=start + index * 10**8, attributes=attributes, span_id=index + 1))
    engine = run([(start + MINUTE, request(spans[i : i + 50], {"service.name": "shop"})) for i in range(0, 600, 50)])
    answer = ask(engine)
    found = {key for finding in values(answer) for key, _ in finding}
    assert "app.cause" in found, found
    assert not found & {"enduser.id", "user.email", "session.id"}, found
    assert_no_canary(repr(answer).encode(), where="the explain answer")


@pytest.mark.parametrize("identity", ["enduser.id", "session.id"])
def test_explain_refuses_to_compare_an_identity_attribute(identity: str) -> None:
    with pytest.raises(ConfigurationErrors, match=rf"sli\.explain\.attributes.*{identity}"):
        SliConfig.from_mapping({"tasks": [{"name": "checkout"}], "explain": {"attributes": [identity]}})
