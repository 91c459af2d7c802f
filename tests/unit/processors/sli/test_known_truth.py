"""Issue 5, section 8: a synthetic workload with known truth; the answers match it within their stated bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import sli_workload
from support.otlp_traces import batch

from otel_impact.processors.api.documents import impact_document, top_customers_document
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.queries import SliQueries

MINUTE = sli_workload.MINUTE
START = 1_800_000_000 * 10**9 // MINUTE * MINUTE
CONFIG = {
    "dimensions": [
        {"name": "tier", "attribute": "impact.customer.tier"},
        {"name": "new_checkout", "flag": "new_checkout"},
    ],
    "tasks": [{"name": "checkout", "latency_thresholds": ["300ms", "1s"]}],
}


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


def without_quantiles(document: dict[str, Any]) -> dict[str, Any]:
    stripped = {key: value for key, value in document.items() if key != "latency_ms"}
    stripped["segments"] = [without_quantiles(segment) for segment in document.get("segments", [])]
    return stripped


def within(bounds: dict[str, float], truth: int) -> bool:
    return bounds["lower"] <= truth <= bounds["upper"]


def check_answers(queries: SliQueries, truth: sli_workload.Truth) -> None:
    end = START + 31 * MINUTE
    impact = impact_document(queries.impact("checkout", START, end))
    assert impact["telemetry"]["complete"] is True
    assert impact["events"]["total"] == sum(truth.total.values())
    assert impact["events"]["bad"] == sum(truth.bad.values())
    assert impact["revenue_at_risk"] == pytest.approx(sum(truth.revenue.values()), rel=1e-9)
    all_users = set().union(*truth.users.values())
    assert within(impact["users"], len(all_users))
    assert within(impact["impacted_users"], len(set().union(*truth.impacted.values())))

    segments = {(s["segment"]["tier"], s["segment"]["new_checkout"]): s for s in impact["segments"]}
    assert set(segments) == set(truth.total)
    assert impact["segments"][0]["segment"] == {"tier": "pro", "new_checkout": "on"}  # worst first
    for key, segment in segments.items():
        assert segment["events"] == {
            "total": truth.total[key],
            "good": truth.total[key] - truth.bad[key],
            "bad": truth.bad[key],
        }
        assert segment["revenue_at_risk"] == pytest.approx(truth.revenue[key], rel=1e-9)
        assert within(segment["users"], len(truth.users[key])), (key, segment["users"], len(truth.users[key]))
        assert within(segment["impacted_users"], len(truth.impacted[key])), key
        assert segment["latency_met"] == {format(t, "g"): truth.met[key][t] for t in sli_workload.THRESHOLDS}
        if key != ("pro", "on"):
            assert segment["events"]["bad"] == 0 and segment["impacted_users"]["estimate"] == 0
    assert segments[("pro", "on")]["impacted_users"]["estimate"] > 8000

    # Quantiles: the true rank of each reported quantile is within the stated rank error.
    durations = np.sort(np.array(truth.durations_ms))
    error = impact["accuracy"]["latency_rank_error"]
    for name, rank in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        value = impact["latency_ms"][name]
        low = np.searchsorted(durations, value, side="left") / durations.size
        high = np.searchsorted(durations, value, side="right") / durations.size
        assert low - error <= rank <= high + error, (name, value, low, high)

    # By one dimension, by the flag's alias, and filtered.
    by_tier = queries.counts("checkout", START, end, by=["tier"])
    assert by_tier[("pro",)].bad == truth.bad[("pro", "on")]
    assert by_tier[("free",)].total == truth.total[("free", "on")] + truth.total[("free", "off")]
    on_only = queries.counts("checkout", START, end, by=["flag:new_checkout"], where={"tier": "pro"})
    assert (
        on_only
        == {
            ("on",): on_only[("on",)],
            ("off",): on_only[("off",)],
        }
        and on_only[("off",)].bad == 0
        and on_only[("on",)].bad == truth.bad[("pro", "on")]
    )

    # The whales top the impacted customers, their counts within the sketch's bounds.
    top = top_customers_document(queries.top_customers("checkout", START, end, limit=5))
    whales = dict(truth.bad_by_customer.most_common(sli_workload.WHALES))
    assert {c["customer"] for c in top["customers"]} == set(whales)
    for customer in top["customers"]:
        assert customer["lower"] <= whales[customer["customer"]] <= customer["upper"]


def test_answers_match_the_truth(workload: Any) -> None:
    engine, _ = run(workload)
    check_answers(SliQueries(engine), workload[1])


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
    check_answers(after_queries, workload[1])
    assert after_queries.telemetry_complete("checkout", end) == (True, None)
    restarted.close()
