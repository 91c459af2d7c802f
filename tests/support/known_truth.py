"""The answers the known-truth workload (`sli_workload`) must get, from any query source."""

from __future__ import annotations

import numpy as np
import pytest

from otel_impact.processors.answers import AnswerQueries
from otel_impact.processors.api.documents import impact_document, top_customers_document
from support import sli_workload

START = 1_800_000_000 * 10**9 // sli_workload.MINUTE * sli_workload.MINUTE
"""When the workload begins: in the future on purpose, so that shared-state keys, which expire
at their bucket's end plus retention in real time, stay while a test runs."""
CONFIG = {
    "dimensions": [
        {"name": "tier", "attribute": "impact.customer.tier"},
        {"name": "new_checkout", "flag": "new_checkout"},
    ],
    "tasks": [{"name": "checkout", "latency_thresholds": ["300ms", "1s"]}],
}
"""The SLI config the workload is counted with."""


def within(bounds: dict[str, float], truth: int) -> bool:
    return bounds["lower"] <= truth <= bounds["upper"]


def check_answers(queries: AnswerQueries, truth: sli_workload.Truth, start: int) -> None:
    """Every answer of ``queries`` over the workload that began at ``start`` matches its truth."""
    end = start + 31 * sli_workload.MINUTE
    impact = impact_document(queries.impact("checkout", start, end))
    assert impact["telemetry"]["complete"] is True
    assert impact["events"]["total"] == sum(truth.total.values())
    assert impact["events"]["bad"] == sum(truth.bad.values())
    assert impact["revenue_at_risk"] == pytest.approx(sum(truth.revenue.values()), rel=1e-9)
    assert impact["attribution"] == {  # every event of the workload carries its customer
        "events_with_customer": sum(truth.total.values()),
        "events_without_customer": 0,
        "coverage": 1.0,
        "bad_events_without_customer": 0,
    }
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

    # Quantiles: the true rank of each reported quantile is within the stated rank error, or
    # (log-spaced buckets) the value is within the stated relative error of the true quantile.
    durations = np.sort(np.array(truth.durations_ms))
    error = impact["accuracy"]["latency_rank_error"]
    relative = impact["accuracy"].get("latency_relative_error")
    for name, rank in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        value = impact["latency_ms"][name]
        if relative is not None:
            exact = float(np.quantile(durations, rank, method="inverted_cdf"))
            assert abs(value - exact) <= relative * exact, (name, value, exact)
            continue
        low = np.searchsorted(durations, value, side="left") / durations.size
        high = np.searchsorted(durations, value, side="right") / durations.size
        assert low - error <= rank <= high + error, (name, value, low, high)

    # By one dimension, by the flag's alias, and filtered.
    by_tier = queries.counts("checkout", start, end, by=["tier"])
    assert by_tier[("pro",)].bad == truth.bad[("pro", "on")]
    assert by_tier[("free",)].total == truth.total[("free", "on")] + truth.total[("free", "off")]
    on_only = queries.counts("checkout", start, end, by=["flag:new_checkout"], where={"tier": "pro"})
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
    top = top_customers_document(queries.top_customers("checkout", start, end, limit=5))
    whales = dict(truth.bad_by_customer.most_common(sli_workload.WHALES))
    assert {c["customer"] for c in top["customers"]} == set(whales)
    for customer in top["customers"]:
        assert customer["lower"] <= whales[customer["customer"]] <= customer["upper"]
