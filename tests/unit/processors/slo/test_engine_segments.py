"""Per-segment budgets, calendar months, latency SLIs, impact severity and what the engine
does with data it cannot trust."""

from __future__ import annotations

import datetime as dt

import pytest
from support.impact_store import MINUTE_NS, InMemoryImpactStore
from support.slo_harness import T0, at, make_engine, segment_doc, steady_history

from otel_impact.processors.impact_queries import PipelineLag
from otel_impact.processors.slo.alerting_config import AlertingConfig, DeliveryConfig
from otel_impact.processors.slo.config import SliSpec, SloConfig, WindowSpec

QUIET = AlertingConfig(delivery=DeliveryConfig(resend_interval=7 * 86400.0))
TIERS = ("enterprise", "pro", "free")


def _tiered_store() -> InMemoryImpactStore:
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=("tier", "region"))
    for tier in TIERS:
        steady_history(store, "checkout", segment={"tier": tier, "region": "eu"})
    return store


def test_each_segment_has_its_own_budget_and_alert() -> None:
    store = _tiered_store()
    # Only pro fails: 2% for an hour (20x). Enterprise and free stay clean.
    store.traffic("checkout", T0, 60, good=980, bad=20, segment={"tier": "pro", "region": "eu"})
    for tier in ("enterprise", "free"):
        store.traffic("checkout", T0, 60, good=1000, segment={"tier": tier, "region": "eu"})
    by_tier = SloConfig(name="checkout-by-tier", task="checkout", objective=99.9, by=("tier",), team="payments")
    overall = SloConfig(name="checkout", task="checkout", objective=99.9)
    engine, clock, sent = make_engine(store, [by_tier, overall], alerting=QUIET)
    at(clock, 60)
    snapshot = engine.evaluate()

    pro = segment_doc(snapshot, "checkout-by-tier", tier="pro")
    assert pro["burn_rates"]["1h"] == pytest.approx(20.0)
    # pro's own period: 43.2M + 60,000 events, 1,200 bad.
    assert pro["budget"]["consumed"] == pytest.approx(1200 / 43_260)
    for tier in ("enterprise", "free"):
        clean = segment_doc(snapshot, "checkout-by-tier", tier=tier)
        assert (clean["budget"]["consumed"], clean["alert"]["state"]) == (0.0, "ok")
    # Across all tiers the same failures are a third of the ratio: 20/3 = 6.67x over 1h, below 14.4.
    assert segment_doc(snapshot, "checkout")["burn_rates"]["1h"] == pytest.approx(20 / 3)

    (alert,) = sent.take()
    assert alert.labels["tier"] == "pro"
    assert alert.labels["slo"] == "checkout-by-tier"
    assert "region" not in alert.labels
    by_tier_doc = next(s for s in snapshot["slos"] if s["name"] == "checkout-by-tier")
    assert by_tier_doc["alert_state"] == "page"
    assert by_tier_doc["budget_remaining"] == pytest.approx(1 - 1200 / 43_260)
    assert [s["segment"]["tier"] for s in by_tier_doc["segments"]] == sorted(TIERS)


def test_calendar_month_uses_its_own_length_and_start() -> None:
    # 31 March 2024, 12:00 in Paris: March has 743 hours there (DST), so the 1h page threshold is
    # 0.02 x 743 = 14.86, against 14.4 for a rolling 30 days.
    now = int(dt.datetime(2024, 3, 31, 10, 0, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=())
    store.traffic("checkout", now - 3 * 86400 * 10**9, 3 * 1440 - 60, good=1000)
    # Traffic from February (before local midnight on 1 March = 23:00 UTC on 29 Feb) is outside the month.
    feb_29_2230_utc = int(dt.datetime(2024, 2, 29, 22, 30, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    store.add("checkout", feb_29_2230_utc, good=1_000_000, bad=5_000)
    store.add("checkout", feb_29_2230_utc + 60 * MINUTE_NS, good=2_000_000)  # 23:30 UTC: 1 March in Paris
    # The last hour burns at 14.7x (14.7 per mille).
    # The last hour: 891 bad in 60,000 events = 14.85x, between the two thresholds.
    store.add("checkout", now - 60 * MINUTE_NS, good=994, bad=6)
    store.traffic("checkout", now - 59 * MINUTE_NS, 59, good=985, bad=15)
    calendar = SloConfig(
        name="month", task="checkout", objective=99.9, window=WindowSpec("calendar_month", time_zone="Europe/Paris")
    )
    rolling = SloConfig(name="rolling", task="checkout", objective=99.9)
    engine, _, sent = make_engine(store, [calendar, rolling], alerting=QUIET, start_ns=now)
    snapshot = engine.evaluate()
    month = next(s for s in snapshot["slos"] if s["name"] == "month")
    assert month["period"]["start"] == "2024-02-29T23:00:00.000Z"
    assert month["period"]["length_seconds"] == 743 * 3600
    page_fast = next(c for c in month["segments"][0]["conditions"] if c["name"] == "page_fast")
    assert page_fast["threshold"] == pytest.approx(14.86)
    assert page_fast["long_burn"] == pytest.approx(14.85)
    assert page_fast["firing"] is False
    # The month's events: the 2M of 1 March plus the last 3 days, none of February's 5,000 failures.
    events = month["segments"][0]["events"]
    assert events["bad"] == 891
    assert events["total"] == 2_000_000 + (3 * 1440 - 60) * 1000 + 60 * 1000
    # The rolling 30-day SLO sees the same hour above its 14.4 threshold.
    assert [n.labels["slo"] for n in sent.take()] == ["rolling"]


def test_latency_sli_counts_slow_events_as_bad() -> None:
    store = InMemoryImpactStore()
    store.declare("search", dimensions=(), thresholds=(0.3, 1.0))
    store.traffic("search", T0 - 3 * 86400 * 10**9, 3 * 1440, good=1000)
    store.traffic("search", T0, 60, good=1000, slow=200)  # all succeed, 20% slower than 1s: 20x on 99%
    slo = SloConfig(name="search-fast", task="search", objective=99.0, sli=SliSpec("latency", 1.0))
    engine, clock, sent = make_engine(store, [slo], alerting=QUIET)
    at(clock, 60)
    doc = segment_doc(engine.evaluate(), "search-fast")
    assert doc["burn_rates"]["1h"] == pytest.approx(20.0)
    assert doc["events"]["bad"] == 60 * 200
    assert [n.labels["severity"] for n in sent.take()] == ["page"]


def _impact_store() -> InMemoryImpactStore:
    store = _tiered_store()
    # A pro outage with identifiable impact: users per tier and revenue at risk.
    store.traffic("checkout", T0, 60, good=980, bad=20, segment={"tier": "pro", "region": "eu"})
    for tier in ("enterprise", "free"):
        store.traffic("checkout", T0, 1200, good=1000, segment={"tier": tier, "region": "eu"})
    store.add(
        "checkout",
        T0 + 30 * MINUTE_NS,
        segment={"tier": "pro", "region": "eu"},
        impacted=[f"p{i}" for i in range(40)],
        revenue=1000.0,
    )
    store.add("checkout", T0 + 31 * MINUTE_NS, segment={"tier": "pro", "region": "us"}, good=0, impacted=["p40"])
    store.add(
        "checkout", T0 + 32 * MINUTE_NS, segment={"tier": "enterprise", "region": "eu"}, impacted=["e1", "e2", "e3"]
    )
    return store


def test_alert_carries_score_severity_users_and_top_segments() -> None:
    store = _impact_store()
    slo = SloConfig(name="checkout", task="checkout", objective=99.9, runbook="https://runbooks.example.com/c")
    engine, clock, sent = make_engine(store, [slo], alerting=QUIET)
    at(clock, 60)
    snapshot = engine.evaluate()
    # Overall 1h burn: 1200 bad / 180,000 events = 6.67x: no Workbook page over 1h; make it a per-tier SLO instead.
    assert snapshot["slos"][0]["alert_state"] == "ok"
    impact = segment_doc(snapshot, "checkout")["impact"]
    # Scored over the default 1h: enterprise 3 users x 10 + pro 41 x 3 + revenue 1000 x 0.1 = 30 + 123 + 100.
    assert impact["score"] == pytest.approx(253.0)
    assert impact["severity"] == "SEV2"
    assert impact["impacted_users"] == {"estimate": 44.0, "lower": 44.0, "upper": 44.0}
    assert impact["revenue_at_risk"] == 1000.0

    by_tier = SloConfig(name="pro", task="checkout", objective=99.9, by=("tier",), runbook="https://rb.example.com/p")
    engine, clock, sent = make_engine(store, [by_tier], alerting=QUIET)
    at(clock, 60)
    snapshot = engine.evaluate()
    impact = segment_doc(snapshot, "pro", tier="pro")["impact"]
    # Within the pro segment: 41 users x 3 + 1000 x 0.1 = 223 -> SEV2; top segments by region.
    assert impact["score"] == pytest.approx(223.0)
    assert [row["segment"] for row in impact["top_segments"]] == [{"region": "eu"}, {"region": "us"}]
    assert impact["top_segments"][0]["impacted_users"]["estimate"] == 40.0
    (alert,) = sent.take()
    assert alert.labels["impact_severity"] == "SEV2"
    assert alert.annotations["impact_score"] == "223.0"
    assert alert.annotations["impacted_users"] == "41 (41-41)"
    assert alert.annotations["revenue_at_risk"] == "1000.00"
    assert alert.annotations["top_segments"] == "region=eu: 40 users; region=us: 1 users"
    assert alert.annotations["runbook_url"] == "https://rb.example.com/p"
    assert alert.details["impact"]["score"] == pytest.approx(223.0)
    assert alert.details["segment"] == {"tier": "pro"}


def test_an_alert_says_when_the_data_is_delayed() -> None:
    store = _impact_store()
    reason = "spans of task 'checkout' arrive late: the p99 lag of the last 5m is 93s"
    store.set_lag("checkout", PipelineLag(2.0, 93.0, delayed=True, reason=reason, recent_p99_s=93.0))
    by_tier = SloConfig(name="pro", task="checkout", objective=99.9, by=("tier",))
    engine, clock, sent = make_engine(store, [by_tier], alerting=QUIET)
    at(clock, 60)
    engine.evaluate()
    (alert,) = sent.take()
    assert alert.annotations["data_delayed"] == reason
    assert alert.details["impact"]["data_delayed"] == reason
    store.set_lag("checkout", PipelineLag(2.0, 3.0))
    assert "data_delayed" not in _first_alert_annotations(store, by_tier)


def _first_alert_annotations(store: InMemoryImpactStore, slo: SloConfig) -> dict[str, str]:
    engine, clock, sent = make_engine(store, [slo], alerting=QUIET)
    at(clock, 60)
    engine.evaluate()
    return dict(sent.take()[0].annotations)


def test_score_bounds_follow_the_user_bounds() -> None:
    store = _impact_store()
    store.user_error = 0.1
    slo = SloConfig(name="checkout", task="checkout", objective=99.9)
    engine, clock, _ = make_engine(store, [slo], alerting=QUIET)
    at(clock, 60)
    impact = segment_doc(engine.evaluate(), "checkout")["impact"]
    # enterprise 3 -> [2, 4], pro 41 -> [36, 46]: 10*2 + 3*36 + 100 = 228 and 10*4 + 3*46 + 100 = 278.
    assert impact["score_range"] == [228.0, 278.0]


def test_a_ticket_with_high_impact_is_delivered_as_a_page() -> None:
    store = _impact_store()
    # Replace the outage by a slow burn: a 4x ticket over a day for pro, same users and revenue.
    store.traffic("checkout", T0 + 60 * MINUTE_NS, 1100, good=996, bad=4, segment={"tier": "pro", "region": "eu"})
    store.add(
        "checkout", T0 + 1080 * MINUTE_NS, segment={"tier": "pro", "region": "eu"}, impacted=["x1"], revenue=9000.0
    )
    slo = SloConfig(name="pro", task="checkout", objective=99.9, by=("tier",))
    for page_at, expected in (("SEV2", "page"), (None, "ticket")):
        alerting = AlertingConfig(delivery=DeliveryConfig(resend_interval=7 * 86400.0), page_at_severity=page_at)
        engine, clock, sent = make_engine(store, [slo], alerting=alerting)
        at(clock, 1150)
        doc = segment_doc(engine.evaluate(), "pro", tier="pro")
        assert [c["name"] for c in doc["conditions"] if c["firing"]] == ["ticket_fast", "ticket_slow"]
        # Scored over the firing 1d window: (41 + 1) users x 3 + 10,000 x 0.1 = 1126 -> SEV1.
        assert doc["impact"]["severity"] == "SEV1"
        (alert,) = sent.take()
        assert (alert.labels["severity"], alert.labels["impact_severity"]) == (expected, "SEV1")


def test_impact_severity_only_rises_while_an_alert_is_active() -> None:
    store = _tiered_store()
    store.traffic("checkout", T0, 180, good=980, bad=20, segment={"tier": "pro", "region": "eu"})
    store.add(
        "checkout", T0 + 5 * MINUTE_NS, segment={"tier": "pro", "region": "eu"}, impacted=[f"u{i}" for i in range(40)]
    )
    slo = SloConfig(name="pro", task="checkout", objective=99.9, by=("tier",))
    engine, clock, sent = make_engine(store, [slo], alerting=QUIET)
    at(clock, 60)
    engine.evaluate()
    (first,) = sent.take()
    assert first.labels["impact_severity"] == "SEV2"  # 40 x 3 = 120
    # An hour later the 1h window has no impacted users left (score 0, SEV4), but the label stays.
    at(clock, 120)
    doc = segment_doc(engine.evaluate(), "pro", tier="pro")
    assert doc["impact"]["severity"] == "SEV4"
    assert doc["alert"]["labels"]["impact_severity"] == "SEV2"
    assert sent.take() == []
    # A bigger outage escalates: the SEV2 alert resolves and a SEV1 alert fires.
    store.add(
        "checkout",
        T0 + 125 * MINUTE_NS,
        segment={"tier": "pro", "region": "eu"},
        impacted=[f"v{i}" for i in range(400)],
    )
    at(clock, 130)
    engine.evaluate()
    resolved, escalated = sent.take()
    assert (resolved.status, resolved.fingerprint) == ("resolved", first.fingerprint)
    assert (escalated.status, escalated.labels["impact_severity"]) == ("firing", "SEV1")


def test_incomplete_telemetry_never_resolves_an_alert() -> None:
    store = _tiered_store()
    store.traffic("checkout", T0, 60, good=980, bad=20, segment={"tier": "pro", "region": "eu"})
    slo = SloConfig(name="pro", task="checkout", objective=99.9, by=("tier",))
    engine, clock, sent = make_engine(store, [slo], alerting=QUIET)
    at(clock, 60)
    engine.evaluate()
    (page,) = sent.take()
    # Spans stop arriving: the windows look clean, but the SLI engine reports the drop.
    store.set_telemetry("checkout", False, "span volume fell 95% below its trailing baseline")
    at(clock, 75)
    snapshot = engine.evaluate()
    doc = segment_doc(snapshot, "pro", tier="pro")
    assert doc["conditions"][0]["firing"] is False
    assert doc["alert"]["state"] == "page"
    assert "span volume fell" in doc["alert"]["held"]
    assert snapshot["slos"][0]["telemetry"] == {
        "complete": False,
        "reason": "span volume fell 95% below its trailing baseline",
    }
    assert sent.take() == []
    store.set_telemetry("checkout", True)
    at(clock, 76)
    engine.evaluate()
    (resolved,) = sent.take()
    assert (resolved.status, resolved.fingerprint) == ("resolved", page.fingerprint)


@pytest.mark.parametrize(
    ("slo", "status", "words"),
    [
        (SloConfig(name="s", task="nothing-yet", objective=99.9), "no_data", "no events seen"),
        (SloConfig(name="s", task="checkout", objective=99.9, by=("plan",)), "error", "add them to the SLI dimensions"),
        (
            SloConfig(name="s", task="checkout", objective=99.9, sli=SliSpec("latency", 0.25)),
            "error",
            "thresholds: 0.3s, 1s",
        ),
    ],
)
def test_slos_the_data_cannot_answer_say_why(slo: SloConfig, status: str, words: str) -> None:
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=("tier",), thresholds=(0.3, 1.0))
    store.add("checkout", T0 - MINUTE_NS, good=10)
    engine, _, _ = make_engine(store, [slo])
    doc = engine.evaluate()["slos"][0]
    assert (doc["status"], doc["segments"]) == (status, [])
    assert words in doc["reason"]


def test_a_malformed_impact_answer_leaves_the_score_unknown_not_zero() -> None:
    store = _tiered_store()
    store.traffic("checkout", T0, 60, good=980, bad=20, segment={"tier": "pro", "region": "eu"})

    class Broken(InMemoryImpactStore):
        def impact(self, *args: object, **kwargs: object) -> dict:  # type: ignore[override]
            return {"events": {}, "segments": "nope"}

    broken = Broken()
    broken.__dict__.update(store.__dict__)
    slo = SloConfig(name="pro", task="checkout", objective=99.9, by=("tier",))
    engine, clock, sent = make_engine(broken, [slo], alerting=QUIET)
    at(clock, 60)
    doc = segment_doc(engine.evaluate(), "pro", tier="pro")
    assert doc["impact"] is None
    assert "impacted_users" in doc["impact_error"]
    (alert,) = sent.take()
    assert alert.labels["impact_severity"] == "unknown"
    assert alert.annotations["impact_score"].startswith("unknown:")
