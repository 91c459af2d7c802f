"""Synthetic traffic apart (issue 15, part 4): which task events are synthetic, and that they
reach the synthetic state only, whichever way the analysis runs."""

from __future__ import annotations

import asyncio
import pickle
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from support.otlp_traces import batch, request, span
from support.sli_http import serving

from otel_impact.processors.batch import TraceBatch
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.gate.mismatch import traffic_mismatch
from otel_impact.processors.sli import SliCollector, SliConfig, SliEngine
from otel_impact.processors.sli.engine import SYNTHETIC_DIR
from otel_impact.processors.sli.queries import SliQueries
from otel_impact.processors.sli.results import AnalysisResult
from otel_impact.processors.sli.state import SliState
from otel_impact.processors.sli.store import STATE_FILE
from otel_impact.processors.sli.synthetic_prometheus import SyntheticCollector
from otel_impact.processors.sli.synthetic_queries import synthetic_queries, synthetic_summary
from otel_impact.processors.traffic import parse_traffic
from otel_impact.proto import prefilter

SECOND = 10**9
MINUTE = 60 * SECOND
T0 = 1_800_000_000 * SECOND // (60 * MINUTE) * (60 * MINUTE)
CONFIG = SliConfig.from_mapping({"dimensions": [{"name": "tier", "attribute": "impact.customer.tier"}]})


def task_span(index: int, *, bad: bool = False, **marks: Any) -> Any:
    attributes: dict[str, Any] = {
        "impact.task.name": "checkout",
        "impact.customer.tier": "pro",
        "impact.customer.hash": f"{index:032x}",
        "impact.task.value": 10.0,
        **marks,
    }
    if bad:
        attributes["http.response.status_code"] = 503
    return span(end_ns=T0 - 1 - index * 10**6, attributes=attributes, span_id=index + 1)


def mixed_request() -> bytes:
    """10 real events (all good) and 18 synthetic ones (all bad), marked every way there is, plus
    two spans whose marks do not make them synthetic."""
    spans = [task_span(i) for i in range(8)]
    spans.append(task_span(8, **{"impact.synthetic": False}))  # false: real
    spans.append(task_span(9, **{"impact.synthetic": "no"}))  # not true: real
    spans += [task_span(100 + i, bad=True, **{"impact.synthetic": True}) for i in range(5)]
    spans += [task_span(200 + i, bad=True, **{"impact.synthetic": "true"}) for i in range(3)]
    spans += [task_span(300 + i, bad=True, **{"user_agent.synthetic.type": "bot"}) for i in range(4)]
    return request(spans)


def probe_resource_request() -> bytes:
    """A resource marked synthetic: all 6 of its (bad) events are synthetic, unmarked as they are."""
    return request(
        [task_span(400 + i, bad=True) for i in range(6)],
        resource={"service.name": "prober", "user_agent.synthetic.type": "test"},
    )


def new_engine(tmp: Path | None = None) -> SliEngine:
    clock = ManualClock(start_ns=T0 - 10 * MINUTE)
    engine = SliEngine(CONFIG, clock=clock, state_dir=tmp)
    clock.advance(10 * 60)
    return engine


def counts(engine: SliEngine) -> tuple[int, int]:
    found = SliQueries(engine).counts("checkout", T0 - 5 * MINUTE, T0 + MINUTE)[()]
    return found.total, found.bad


def check_split(engine: SliEngine) -> None:
    assert counts(engine) == (10, 0)
    assert engine.synthetic is not None
    assert counts(engine.synthetic) == (18, 18)
    real = SliQueries(engine).impact("checkout", T0 - 5 * MINUTE, T0 + MINUTE)
    assert real.impacted_users.estimate == 0 and real.revenue_at_risk == 0
    assert real.attribution.events_with_customer == 10  # attribution counts real events only
    synthetic = SliQueries(engine.synthetic).impact("checkout", T0 - 5 * MINUTE, T0 + MINUTE)
    assert synthetic.revenue_at_risk == 180.0 and synthetic.events.bad == 18


@pytest.mark.parametrize("parsed", [True, False], ids=["view", "prefiltered"])
def test_synthetic_events_reach_only_the_synthetic_state(parsed: bool) -> None:
    engine = new_engine()
    for data in (mixed_request(), probe_resource_request()):
        if parsed:
            engine.analyze(batch(data, T0))
        else:
            engine.analyze(TraceBatch(data=data, view=None, span_count=0, received_ns=T0, transport="grpc"))
    if not parsed:
        assert engine.analyzer.filters == prefilter.NATIVE
    check_split(engine)
    assert engine.errors == 0


def test_a_relayed_result_carries_its_synthetic_part() -> None:
    worker_state = SliState(CONFIG, now_ns=T0 - 10 * MINUTE)  # as an analysis worker builds it
    from otel_impact.processors.sli.analyzer import SliAnalyzer  # noqa: PLC0415

    analyzer = SliAnalyzer(worker_state)
    first = analyzer.results([batch(mixed_request(), T0)])
    second = analyzer.results([batch(probe_resource_request(), T0)])
    assert first.synthetic is not None and second.synthetic is not None
    merged = AnalysisResult()
    merged.extend(pickle.loads(pickle.dumps(first)))
    merged.extend(pickle.loads(pickle.dumps(second)))
    assert merged.events == 10 and merged.synthetic is not None and merged.synthetic.events == 18
    engine = new_engine()
    engine.state.apply(merged)  # what EngineSink does in the main process
    check_split(engine)


def test_the_synthetic_state_has_its_own_checkpoint(tmp_path: Path) -> None:
    engine = new_engine(tmp_path)
    engine.analyze(batch(mixed_request(), T0))
    engine.analyze(batch(probe_resource_request(), T0))
    engine.close()
    assert (tmp_path / SYNTHETIC_DIR / STATE_FILE).is_file() and (tmp_path / STATE_FILE).is_file()
    restored = new_engine(tmp_path)
    check_split(restored)
    restored.close()


def test_a_span_without_marks_costs_no_synthetic_state() -> None:
    engine = new_engine()
    engine.analyze(batch(request([task_span(i) for i in range(5)]), T0))
    assert engine.synthetic is not None and engine.synthetic.task_events == 0
    assert synthetic_summary(synthetic_queries(SliQueries(engine)), "checkout", T0 - MINUTE, T0 + MINUTE).total == 0


def test_prometheus_keeps_real_names_for_real_users_and_prefixes_synthetic() -> None:
    engine = new_engine()
    engine.analyze(batch(mixed_request(), T0))
    registry = CollectorRegistry()
    registry.register(SliCollector(SliQueries(engine)))
    synthetic = synthetic_queries(SliQueries(engine))
    assert synthetic is not None
    registry.register(SyntheticCollector(synthetic))
    text = generate_latest(registry).decode()
    assert 'impact_task_events_total{outcome="bad",task="checkout",tier="pro"} 0.0' in text
    assert 'impact_task_events_total{outcome="good",task="checkout",tier="pro"} 10.0' in text
    assert 'impact_synthetic_task_events_total{outcome="bad",task="checkout",tier="pro"} 12.0' in text


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "real"), ("", "real"), ("real", "real"), ("synthetic", "synthetic")]
)
def test_traffic_values(value: str | None, expected: str) -> None:
    assert parse_traffic(value) == expected


@pytest.mark.parametrize("value", ["Synthetic", "all", "x" * 500])
def test_a_bad_traffic_names_the_parameter_and_the_allowed_values(value: str) -> None:
    with pytest.raises(ValueError, match=r"traffic must be one of real, synthetic") as raised:
        parse_traffic(value)
    assert len(str(raised.value)) < 120


def test_mismatch_in_either_direction_and_none_by_chance() -> None:
    probes_fail = traffic_mismatch(1000, 5, 60, 60)
    assert probes_fail.mismatch and probes_fail.direction == "synthetic_worse"
    users_fail = traffic_mismatch(1000, 900, 60, 0)
    assert users_fail.mismatch and users_fail.direction == "real_worse"
    assert not traffic_mismatch(1000, 10, 60, 1).mismatch  # 1% vs 1.7% on 60 probes: chance
    assert not traffic_mismatch(0, 0, 60, 60).mismatch  # no real users: nothing to compare
    assert not traffic_mismatch(1000, 0, 0, 0).mismatch


def test_the_api_answers_each_traffic_and_refuses_others() -> None:
    engine = new_engine()
    engine.analyze(batch(mixed_request(), T0))

    async def main() -> None:
        async with serving(engine) as base, aiohttp.ClientSession() as session:
            query = {"task": "checkout", "window": "5m", "end": str((T0 + MINUTE) // SECOND)}
            async with session.get(f"{base}/api/v1/impact", params=query) as response:
                real = await response.json()
            async with session.get(f"{base}/api/v1/impact", params={**query, "traffic": "synthetic"}) as response:
                synthetic = await response.json()
            async with session.get(f"{base}/api/v1/impact", params={**query, "traffic": "bots"}) as response:
                assert response.status == 400
                error = (await response.json())["error"]
        assert real["traffic"] == "real" and real["events"] == {"total": 10, "good": 10, "bad": 0}
        assert real["synthetic"] == {"events": {"total": 12, "good": 0, "bad": 12}, "success_ratio": 0.0}
        assert synthetic["traffic"] == "synthetic" and "synthetic" not in synthetic
        assert synthetic["events"] == {"total": 12, "good": 0, "bad": 12}
        assert "traffic" in error and "real, synthetic" in error

    asyncio.run(main())


def test_an_extra_intake_process_relays_the_synthetic_part_to_the_main_one() -> None:
    from otel_impact.processors.analysis.sink import EngineSink, LoopAnalyzer, RelaySink, deliver  # noqa: PLC0415

    sent: list[bytes] = []
    relaying = LoopAnalyzer(new_engine(), RelaySink(lambda message: sent.append(pickle.dumps(message))))
    relaying.analyze(batch(mixed_request(), T0))
    relaying.analyze(batch(probe_resource_request(), T0))
    main = new_engine()
    sink = EngineSink(main)
    assert all(deliver(pickle.loads(message), sink) for message in sent)
    check_split(main)


def test_the_report_shows_the_probes_apart_and_asks_for_synthetic_traffic() -> None:
    from otel_impact.processors.cli.report import render  # noqa: PLC0415

    engine = new_engine()
    engine.analyze(batch(mixed_request(), T0))

    async def main() -> tuple[str, str]:
        async with serving(engine) as base, aiohttp.ClientSession() as session:
            query = {"task": "checkout", "window": "5m", "end": str((T0 + MINUTE) // SECOND)}
            async with session.get(f"{base}/api/v1/impact", params=query) as response:
                real = render(await response.json())
            async with session.get(f"{base}/api/v1/impact", params={**query, "traffic": "synthetic"}) as response:
                synthetic = render(await response.json())
        return real, synthetic

    real, synthetic = asyncio.run(main())
    assert "Synthetic probes (not counted above): 12 events, 12 bad, success 0.00%" in real
    assert "Traffic: synthetic probes only" in synthetic and "Synthetic probes (not" not in synthetic
