"""Issue 5, section 8: a synthetic workload with known truth; the answers match it within their stated bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import sli_workload
from support.known_truth import CONFIG, START, check_answers
from support.otlp_traces import batch

from otel_impact.processors.api.documents import impact_document
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.queries import SliQueries

MINUTE = sli_workload.MINUTE


@pytest.fixture(scope="module")
def workload() -> tuple[list[tuple[int, bytes]], sli_workload.Truth]:
    return sli_workload.build(START)


def run(workload: Any, state_dir: Path | None = None) -> tuple[SliEngine, ManualClock]:
    requests, _ = workload
    clock = ManualClock(start_ns=START)
    engine = SliEngine(SliConfig.from_mapping(CONFIG), clock=clock, state_dir=state_dir)
    for received_ns, data in requests:
        clock.advance((received_ns - clock.now_ns()) / 1e9)
        engine.analyze(batch(data, received_ns))
        engine.tick()
    return engine, clock


LAG_FIELDS = ("lag_seconds", "delayed", "behind_seconds", "delay_reason")
"""Pipeline lag is measured from when the process started: it is not part of the checkpoint."""


def without_quantiles(document: dict[str, Any]) -> dict[str, Any]:
    stripped = {key: value for key, value in document.items() if key != "latency_ms"}
    if "telemetry" in stripped:
        stripped["telemetry"] = {k: v for k, v in stripped["telemetry"].items() if k not in LAG_FIELDS}
    stripped["segments"] = [without_quantiles(segment) for segment in document.get("segments", [])]
    return stripped


def test_answers_match_the_truth(workload: Any) -> None:
    engine, _ = run(workload)
    check_answers(SliQueries(engine), workload[1], START)


def test_restart_keeps_the_answers(workload: Any, tmp_path: Path) -> None:
    engine, clock = run(workload, tmp_path)
    queries = SliQueries(engine)
    end = START + 31 * MINUTE
    before = impact_document(queries.impact("checkout", START, end))
    engine.close()
    restarted = SliEngine(SliConfig.from_mapping(CONFIG), clock=clock, state_dir=tmp_path)
    after_queries = SliQueries(restarted)
    # Exactly the same answers, but for latency quantiles: merging KLL sketches is randomized
    # (within the stated rank error, which check_answers verifies against the truth).
    assert without_quantiles(impact_document(after_queries.impact("checkout", START, end))) == without_quantiles(before)
    check_answers(after_queries, workload[1], START)
    assert after_queries.telemetry_complete("checkout", end) == (True, None)
    restarted.close()
