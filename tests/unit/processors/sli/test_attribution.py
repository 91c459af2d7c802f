"""Attribution coverage (issue 15, part 1): how many task events carry the customer, per task
and per segment; bad events without one make impacted users a lower bound."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from support.otlp_traces import batch, request, span

from otel_impact.processors.api.documents import attribution_document, impact_document
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliCollector, SliConfig, SliEngine
from otel_impact.processors.sli.aggregates import FIRST_THRESHOLD_COL, row_width
from otel_impact.processors.sli.buckets import CountTiers, Layout
from otel_impact.processors.sli.queries import SliQueries

SECOND = 10**9
MINUTE = 60 * SECOND
T0 = 1_800_000_000 * SECOND // (60 * MINUTE) * (60 * MINUTE)
CANARY = "canary-raw-customer-id@example.com"


def event(index: int, *, tier: str, customer: bool, bad: bool) -> Any:
    attributes: dict[str, Any] = {"impact.task.name": "checkout", "impact.customer.tier": tier}
    if customer:
        attributes["impact.customer.hash"] = f"{index:032x}"
    if bad:
        attributes["http.response.status_code"] = 503
    return span(end_ns=T0 - index * 10**6, attributes=attributes)


def test_coverage_per_task_and_segment_and_a_lower_bound_on_impacted_users() -> None:
    clock = ManualClock(start_ns=T0 - 10 * MINUTE)  # the state covers the whole window asked
    engine = SliEngine(SliConfig(), clock=clock)
    clock.advance(10 * 60)
    spans = [
        *(event(i, tier="pro", customer=True, bad=i < 2) for i in range(6)),  # 6 with a customer, 2 bad
        *(event(10 + i, tier="pro", customer=False, bad=i < 2) for i in range(3)),  # 3 without, 2 of them bad
        *(event(20 + i, tier="free", customer=True, bad=False) for i in range(4)),  # fully attributed
    ]
    engine.analyze(batch(request(spans), T0))
    document = impact_document(SliQueries(engine).impact("checkout", T0 - 5 * MINUTE, T0 + MINUTE))
    assert document["attribution"] == {
        "events_with_customer": 10,
        "events_without_customer": 3,
        "coverage": round(10 / 13, 6),
        "bad_events_without_customer": 2,
    }
    assert document["telemetry"]["complete"] is True
    assert document["impacted_users"]["upper"] is None  # two impacted users nobody can count
    segments = {s["segment"]["tier"]: s for s in document["segments"]}
    assert segments["pro"]["attribution"]["coverage"] == round(6 / 9, 6)
    assert segments["pro"]["impacted_users"]["upper"] is None
    assert segments["free"]["attribution"] == {
        "events_with_customer": 4,
        "events_without_customer": 0,
        "coverage": 1.0,
        "bad_events_without_customer": 0,
    }
    assert segments["free"]["impacted_users"]["upper"] == 0  # nothing failed there: still bounded

    registry = CollectorRegistry()
    registry.register(SliCollector(SliQueries(engine)))
    text = generate_latest(registry).decode()
    assert 'impact_task_events_without_customer_total{outcome="all",task="checkout",tier="pro"} 3.0' in text
    assert 'impact_task_events_without_customer_total{outcome="bad",task="checkout",tier="pro"} 2.0' in text


def test_rows_saved_before_the_attribution_columns_restore_with_zeros() -> None:
    layout = Layout.from_tiers(SliConfig().count_tiers)
    thresholds = 2
    tiers = CountTiers(layout, row_width(thresholds), saved_columns_accepted=(FIRST_THRESHOLD_COL + thresholds,))
    old_row = np.array([5.0, 1.0, 2.5, 4.0, 5.0]).tobytes()
    tiers.load(0, 0, 0, old_row)
    assert tiers.values[0] is not None and tiers.values[0][0].tolist() == [5.0, 1.0, 2.5, 4.0, 5.0, 0.0, 0.0]


def test_a_callee_that_loses_the_customer_comes_first_with_its_true_coverage() -> None:
    """Checkout calls payments; 20% of payments' task spans arrive without the customer (a hop
    that drops the baggage). The breakdown names payments' route first, coverage within a point."""
    clock = ManualClock(start_ns=T0 - 10 * MINUTE)
    engine = SliEngine(SliConfig(), clock=clock)
    clock.advance(10 * 60)
    rng = random.Random(7)
    lost = 0
    for batch_index in range(20):
        checkout, payments = [], []
        for i in range(100):
            n = batch_index * 100 + i
            customer = {"impact.customer.hash": f"{n:032x}"}
            checkout.append(
                span(
                    end_ns=T0 - n * 10**5,
                    attributes={"impact.task.name": "checkout", "http.route": "/cart", **customer},
                )
            )
            drops = rng.random() < 0.2
            lost += drops
            payments.append(
                span(
                    end_ns=T0 - n * 10**5,
                    attributes={
                        "impact.task.name": "pay",
                        "rpc.method": "Charge",
                        **({} if drops else customer),
                    },
                )
            )
        engine.analyze(batch(request(checkout, resource={"service.name": "checkout-api"}), T0))
        engine.analyze(batch(request(payments, resource={"service.name": "payments"}), T0))
    queries = SliQueries(engine)
    (row,) = queries.attribution_rows("pay", T0 - 5 * MINUTE, T0 + MINUTE)
    truth = 1 - lost / 2000
    assert (row.service, row.route) == ("payments", "Charge")
    assert abs((row.attribution.coverage or 0) - truth) <= 0.01
    assert row.attribution.events_without_customer == lost
    document = attribution_document("pay", "5m", T0 - 5 * MINUTE, T0 + MINUTE, [row])
    assert document["services"] == [
        {
            "service": "payments",
            "events_with_customer": 2000 - lost,
            "events_without_customer": lost,
            "coverage": round(truth, 6),
            "bad_events_without_customer": 0,
        }
    ]
    (checkout_row,) = queries.attribution_rows("checkout", T0 - 5 * MINUTE, T0 + MINUTE)
    assert (checkout_row.service, checkout_row.route, checkout_row.attribution.coverage) == (
        "checkout-api",
        "/cart",
        1.0,
    )
