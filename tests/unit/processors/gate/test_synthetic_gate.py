"""The gate on synthetic probes alone (``traffic=synthetic``): a canary judged before real users reach it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from support.otlp_traces import batch, request, span

from otel_impact.processors.api.gate_routes import GateRoutes
from otel_impact.processors.api.synthetic import SyntheticSource
from otel_impact.processors.cli import build_parser
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.gate.evaluate import GateError
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.queries import SliQueries
from otel_impact.processors.sli.synthetic_queries import synthetic_queries

MINUTE = 60 * 10**9
T0 = 1_800_000_000 * 10**9 // MINUTE * MINUTE
CONFIG = SliConfig.from_mapping({"dimensions": [{"name": "version", "attribute": "service.version"}]})


def events(version: str, count: int, *, bad: int = 0, synthetic: bool) -> bytes:
    spans = []
    for index in range(count):
        attributes: dict[str, Any] = {"impact.task.name": "checkout", "impact.customer.hash": f"{index:032x}"}
        if synthetic:
            attributes["impact.synthetic"] = True
        if index < bad:
            attributes["impact.task.outcome"] = "failure"
        spans.append(span(end_ns=T0 - (index % 20) * MINUTE - 1, attributes=attributes, span_id=index + 1))
    return request(spans, resource={"service.name": "shop", "service.version": version})


def routes() -> GateRoutes:
    clock = ManualClock(start_ns=T0 - 40 * MINUTE)  # the state covers the whole 30m window
    engine = SliEngine(CONFIG, clock=clock)
    clock.advance(40 * 60)
    engine.analyze(batch(events("1.4", 300, synthetic=False), T0))  # real users on the baseline only
    engine.analyze(batch(events("1.4", 200, synthetic=True), T0))
    engine.analyze(batch(events("1.5", 200, bad=60, synthetic=True), T0))  # the canary fails 30% of probes
    queries = SliQueries(engine)
    return GateRoutes(
        queries, queries.resolve_dimension, clock, synthetic=SyntheticSource.of(synthetic_queries(queries))
    )


QUERY = {"task": "checkout", "baseline": "version=1.4", "canary": "version=1.5", "window": "30m"}


class _Request:
    def __init__(self, query: dict[str, str]) -> None:
        self.query = query


def test_probes_fail_the_canary_before_real_users_reach_it() -> None:
    gate = routes()
    synthetic = gate.answer({**QUERY, "traffic": "synthetic"})
    over_http = json.loads(asyncio.run(gate.gate(_Request({**QUERY, "traffic": "synthetic"}))).text or "{}")  # type: ignore[arg-type]
    assert over_http["verdict"] == "fail" and over_http["traffic"] == "synthetic"
    assert synthetic["traffic"] == "synthetic"
    assert synthetic["verdict"] == "fail" and synthetic["exit_code"] == 1, synthetic["explanation"]
    real = gate.answer(QUERY)  # no real user on the canary yet: nothing to judge, and no probe counted
    assert real["traffic"] == "real" and real["verdict"] == "inconclusive"


def test_a_bad_traffic_is_refused_naming_the_parameter() -> None:
    with pytest.raises(ValueError, match="traffic must be one of real, synthetic"):
        routes().answer({**QUERY, "traffic": "bots"})


def test_without_a_synthetic_state_the_gate_says_so() -> None:
    gate = routes()
    gate.synthetic = None
    with pytest.raises(GateError, match="no synthetic state"):
        gate.answer({**QUERY, "traffic": "synthetic"})


def test_the_gate_command_takes_the_traffic() -> None:
    args = ["gate", "--task", "checkout", "--baseline", "version=1.4", "--canary", "version=1.5"]
    assert build_parser().parse_args(args).traffic == "real"
    assert build_parser().parse_args([*args, "--traffic", "synthetic"]).traffic == "synthetic"
    with pytest.raises(SystemExit):
        build_parser().parse_args([*args, "--traffic", "bots"])
