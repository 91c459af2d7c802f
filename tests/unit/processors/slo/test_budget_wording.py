"""Budgets in words: the period they cover while the state is young, and 'exhausted' once spent."""

from __future__ import annotations

import pytest
from support.impact_store import MINUTE_NS, InMemoryImpactStore
from support.slo_harness import T0, make_engine

from otel_impact.processors.slo.burn import budget_covers, budget_left, budget_spent, spoken_duration
from otel_impact.processors.slo.config import SloConfig


@pytest.mark.parametrize(
    ("consumed", "words"),
    [
        (0.0, "100.0% left"),
        (0.177, "82.3% left"),
        (1.0, "exhausted: 1× the budget spent"),
        (1.3, "exhausted: 1.3× the budget spent"),
        (26.25, "exhausted: 26× the budget spent"),
    ],
)
def test_budget_left_never_reads_as_a_negative_percentage(consumed: float, words: str) -> None:
    assert budget_left(consumed) == words


def test_budget_spent_in_an_incident() -> None:
    assert budget_spent(0.175) == "17.5% of the budget spent"
    assert budget_spent(20.0) == "exhausted: 20× the budget spent"


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 seconds"), (1, "1 second"), (45, "45 seconds"), (60, "1 minute"), (725, "12 minutes"), (7300, "2 hours")],
)
def test_spoken_durations(seconds: float, words: str) -> None:
    assert spoken_duration(seconds) == words


def test_a_budget_covers_what_was_observed_while_the_state_is_young() -> None:
    assert budget_covers(12 * 60 + 5, False, "30d") == "the 12 minutes observed"
    assert budget_covers(30 * 86_400, True, "30d") == "the 30d period"
    assert budget_covers(86_400, True, "calendar_month") == "the calendar month"


def test_the_snapshot_says_what_its_budgets_cover_and_that_they_are_exhausted() -> None:
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=("tier",))
    store.set_state_start(T0)  # the processor started at T0: a 30d period is mostly unseen
    store.traffic("checkout", T0, 12, good=900, bad=100, segment={"tier": "pro"})
    slo = SloConfig(name="pro", task="checkout", objective=99.9, by=("tier",))
    engine, clock, _ = make_engine(store, [slo])
    clock.advance(12 * 60)
    (doc,) = engine.evaluate()["slos"]
    assert doc["telemetry"]["complete"] is False and "covers only" in doc["telemetry"]["reason"]
    assert doc["budget_remaining"] == pytest.approx(1 - 100)  # the numeric field is unchanged
    assert doc["budget"]["covers"] == "the 12 minutes observed"
    assert doc["budget"]["observed_seconds"] == 12 * 60
    assert doc["budget"]["text"] == "exhausted: 100× the budget spent"
    (segment,) = doc["segments"]
    assert segment["budget"]["remaining"] == doc["budget_remaining"]
    assert segment["budget"]["covers"] == "the 12 minutes observed"
    assert segment["budget"]["text"] == "exhausted: 100× the budget spent"


def test_a_young_state_does_not_hold_alerts_a_telemetry_loss_does() -> None:
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=("tier",))
    store.set_state_start(T0)
    store.traffic("checkout", T0, 60, good=900, bad=100, segment={"tier": "pro"})
    slo = SloConfig(name="pro", task="checkout", objective=99.9, by=("tier",))
    engine, clock, _ = make_engine(store, [slo])
    clock.advance(60 * 60)
    engine.evaluate()
    (evaluation,) = engine.last_evaluation
    assert evaluation.completeness is not None and evaluation.completeness.complete is False
    assert evaluation.telemetry == (True, None)  # only a loss keeps a firing alert from resolving
    store.set_telemetry("checkout", False, "span volume fell")
    clock.advance(MINUTE_NS / 1e9)
    engine.evaluate()
    (evaluation,) = engine.last_evaluation
    assert evaluation.telemetry == (False, "span volume fell")
