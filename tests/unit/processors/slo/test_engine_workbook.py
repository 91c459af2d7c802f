"""SRE Workbook scenarios on a 30-day, 99.9% SLO at 1000 events/min, hand-computed.

Budget: 0.1% of the period's events; at 1000/min a 30-day period holds 43.2M events, so the
budget is about 43,200 bad events. A burn rate of b over a window means b x 0.1% of its
events are bad.
"""

from __future__ import annotations

import pytest
from support.impact_store import InMemoryImpactStore
from support.slo_harness import T0, at, make_engine, segment_doc, steady_history

from otel_impact.processors.slo.alerting_config import AlertingConfig, DeliveryConfig, LowTrafficGuard
from otel_impact.processors.slo.config import SloConfig

SLO = SloConfig(
    name="checkout", task="checkout", objective=99.9, owner="payments-oncall", team="payments", route="pager"
)
QUIET = AlertingConfig(delivery=DeliveryConfig(resend_interval=7 * 86400.0))  # no periodic re-sends in these tests


def _store() -> InMemoryImpactStore:
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=("tier",))
    steady_history(store, "checkout")
    return store


def _firing(snapshot: dict, **segment: str) -> list[str]:
    return [c["name"] for c in segment_doc(snapshot, "checkout", **segment)["conditions"] if c["firing"]]


def test_two_percent_of_the_budget_in_an_hour_pages_and_resolves_when_the_short_window_clears() -> None:
    store = _store()
    # From T0, 15 of every 1000 events fail (1.5% = 15x burn) for one hour, then all succeed.
    store.traffic("checkout", T0, 60, good=985, bad=15)
    store.traffic("checkout", T0 + 60 * 60 * 10**9, 60, good=1000)
    engine, clock, sent = make_engine(store, [SLO], alerting=QUIET)

    # After 57 minutes the 1h window holds 57*15 = 855 bad in 60,000: burn 14.25 <= 14.4.
    at(clock, 57)
    snapshot = engine.evaluate()
    doc = segment_doc(snapshot, "checkout")
    assert doc["burn_rates"]["1h"] == pytest.approx(14.25)
    assert doc["burn_rates"]["5m"] == pytest.approx(15.0)
    assert _firing(snapshot) == []
    assert sent.take() == []

    # After 58 minutes: 870 bad -> burn 14.5 > 14.4 over 1h and 15 over 5m: page.
    at(clock, 58)
    snapshot = engine.evaluate()
    doc = segment_doc(snapshot, "checkout")
    assert doc["burn_rates"]["1h"] == pytest.approx(14.5)
    assert _firing(snapshot) == ["page_fast"]
    # 870 bad of a budget of 0.1% x 43,258,000 events = 43,258: 2.01% consumed.
    assert doc["budget"]["consumed"] == pytest.approx(870 / 43_258)
    assert doc["budget"]["remaining"] == pytest.approx(1 - 870 / 43_258)
    assert snapshot["slos"][0]["alert_state"] == "page"
    (page,) = sent.take()
    assert page.status == "firing"
    assert page.labels == {
        "alertname": "ImpactSLOBurnRate",
        "slo": "checkout",
        "task": "checkout",
        "severity": "page",
        "impact_severity": "SEV4",
        "owner": "payments-oncall",
        "team": "payments",
        "route": "pager",
    }
    assert page.starts_at_ns == clock.now_ns()
    assert page.ends_at_ns > clock.now_ns()
    assert page.annotations["conditions"] == "page_fast"
    assert "14.5x over 1h" in page.annotations["summary"]

    # Still burning at 60 minutes: no duplicate notification (same fingerprint, not due for re-send).
    at(clock, 60)
    assert _firing(engine.evaluate()) == ["page_fast"]
    assert sent.take() == []

    # At 61 minutes the 5m window (minutes 56-60) has 4 bad minutes: 60/5000 = 12x < 14.4, while the
    # 1h window is still at 885/60,000 = 14.75x. The short window clears, so the page resolves.
    at(clock, 61)
    snapshot = engine.evaluate()
    doc = segment_doc(snapshot, "checkout")
    assert doc["burn_rates"]["1h"] == pytest.approx(14.75)
    assert doc["burn_rates"]["5m"] == pytest.approx(12.0)
    assert _firing(snapshot) == []
    (resolved,) = sent.take()
    assert resolved.status == "resolved"
    assert resolved.fingerprint == page.fingerprint
    assert resolved.ends_at_ns == clock.now_ns()
    assert doc["alert"]["state"] == "ok"


def test_six_hours_at_7x_pages_on_the_slow_window() -> None:
    store = _store()
    store.traffic("checkout", T0, 320, good=993, bad=7)
    engine, clock, sent = make_engine(store, [SLO], alerting=QUIET)
    # 6h burn after t minutes = 7t/360: 308 -> 5.99, 309 -> 6.008 > 6. The 1h burn (7x) never reaches 14.4.
    at(clock, 308)
    assert _firing(engine.evaluate()) == []
    at(clock, 309)
    snapshot = engine.evaluate()
    assert _firing(snapshot) == ["page_slow"]
    assert segment_doc(snapshot, "checkout")["burn_rates"]["6h"] == pytest.approx(7 * 309 / 360)
    (page,) = sent.take()
    assert page.labels["severity"] == "page"


def test_a_day_at_4x_opens_a_ticket() -> None:
    store = _store()
    store.traffic("checkout", T0, 1090, good=996, bad=4)
    engine, clock, sent = make_engine(store, [SLO], alerting=QUIET)
    # 1d burn after t minutes = 4t/1440: 1079 -> 2.997, 1081 -> 3.003 > 3; the 2h window is at 4x.
    # The 3d burn, 4t/4320, crosses 1 at t = 1080 too (1081 -> 1.0009), with its 6h window at 4x.
    at(clock, 1079)
    assert _firing(engine.evaluate()) == []
    at(clock, 1081)
    assert _firing(engine.evaluate()) == ["ticket_fast", "ticket_slow"]
    (ticket,) = sent.take()
    assert ticket.labels["severity"] == "ticket"


def test_three_days_at_2x_opens_a_ticket_on_the_slowest_window() -> None:
    store = _store()
    store.traffic("checkout", T0, 2170, good=998, bad=2)
    engine, clock, sent = make_engine(store, [SLO], alerting=QUIET)
    # 3d burn after t minutes = 2t/4320: 2159 -> 0.9995, 2161 -> 1.0005 > 1; 1d stays at 2x < 3.
    at(clock, 2159)
    assert _firing(engine.evaluate()) == []
    at(clock, 2161)
    assert _firing(engine.evaluate()) == ["ticket_slow"]
    assert [n.labels["severity"] for n in sent.take()] == ["ticket"]


def test_page_then_ticket_resolves_the_page_and_opens_the_ticket() -> None:
    store = _store()
    # 2 hours at 20x, then 4 hours at 4x.
    store.traffic("checkout", T0, 120, good=980, bad=20)
    store.traffic("checkout", T0 + 120 * 60 * 10**9, 1400, good=996, bad=4)
    engine, clock, sent = make_engine(store, [SLO], alerting=QUIET)
    at(clock, 90)
    engine.evaluate()
    (page,) = sent.take()
    assert page.labels["severity"] == "page"
    # At 22h the 1d window holds (120*20 + 1200*4) = 7200 bad in 1,440,000 events: 5x > 3, with 2h at 4x;
    # the 3d window 7200 / 4,320,000 = 1.67x > 1, with 6h at 4x. The 1h/5m (4x < 14.4) and 6h/30m (4x < 6)
    # page conditions no longer hold: only the tickets do.
    at(clock, 1320)
    snapshot = engine.evaluate()
    assert _firing(snapshot) == ["ticket_fast", "ticket_slow"]
    resolved, ticket = sent.take()
    assert (resolved.status, resolved.fingerprint) == ("resolved", page.fingerprint)
    assert (ticket.status, ticket.labels["severity"]) == ("firing", "ticket")
    assert ticket.fingerprint != page.fingerprint


def test_low_traffic_guard_keeps_one_failure_in_ten_from_paging() -> None:
    store = InMemoryImpactStore()
    store.declare("admin", dimensions=())
    store.add("admin", T0 - 3 * 60 * 10**9, good=9, bad=1)  # 10% errors = 100x burn, but ten requests
    slo = SloConfig(name="admin", task="admin", objective=99.9)
    engine, _, sent = make_engine(store, [slo])
    snapshot = engine.evaluate()
    doc = segment_doc(snapshot, "admin")
    page_fast = next(c for c in doc["conditions"] if c["name"] == "page_fast")
    assert page_fast["long_burn"] == pytest.approx(100.0)
    assert (page_fast["firing"], page_fast["guarded"]) == (False, True)
    assert doc["alert"]["state"] == "ok"
    assert sent.take() == []

    # The same traffic pages once the guard allows 10 events with 1 failure: the guard alone held it.
    lenient = AlertingConfig(low_traffic_guard=LowTrafficGuard(min_events=10, min_bad_events=1))
    engine, _, sent = make_engine(store, [slo], alerting=lenient)
    engine.evaluate()
    assert [n.labels["severity"] for n in sent.take()] == ["page"]


@pytest.mark.parametrize(("older_bad", "pages"), [(32_400, True), (31_800, False)])
def test_article_rule_pages_at_4x_with_less_than_a_quarter_of_the_budget_left(older_bad: int, pages: bool) -> None:
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=("tier",))
    steady_history(store, "checkout", older_bad=older_bad)
    store.traffic("checkout", T0, 60, good=995, bad=5)  # 5x: below every Workbook page threshold
    engine, clock, sent = make_engine(store, [SLO])
    at(clock, 60)
    snapshot = engine.evaluate()
    doc = segment_doc(snapshot, "checkout")
    # Period: 38.88M good + older_bad + 4.32M + 60,000 events -> budget 0.1% of that; bad = older_bad + 300.
    assert doc["budget"]["remaining"] == pytest.approx(1 - (older_bad + 300) / (43_260 + older_bad / 1000))
    # 32,700 / 43,292.4 -> 24.5% left: page; 32,100 / 43,291.8 -> 25.9% left: nothing.
    assert _firing(snapshot) == (["low_budget_page"] if pages else [])
    assert [n.labels["severity"] for n in sent.take()] == (["page"] if pages else [])


def test_firing_alerts_are_re_sent_every_resend_interval() -> None:
    store = _store()
    store.traffic("checkout", T0, 120, good=980, bad=20)
    alerting = AlertingConfig(delivery=DeliveryConfig(resend_interval=300.0))
    engine, clock, sent = make_engine(store, [SLO], alerting=alerting)
    at(clock, 60)
    engine.evaluate()
    (first,) = sent.take()
    for minute in (61, 62, 63, 64):
        at(clock, minute)
        engine.evaluate()
    assert sent.take() == []
    at(clock, 65)
    engine.evaluate()
    (again,) = sent.take()
    assert again.fingerprint == first.fingerprint
    assert again.starts_at_ns == first.starts_at_ns
    assert again.ends_at_ns == clock.now_ns() + 4 * 300 * 10**9
