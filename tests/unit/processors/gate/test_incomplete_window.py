"""The gate on an incomplete window: inconclusive (exit code 2) with the reason, never pass or fail."""

from __future__ import annotations

from support.impact_store import MINUTE_NS, InMemoryImpactStore

from otel_impact.processors.gate._verdict import GatePolicy, Verdict
from otel_impact.processors.gate.evaluate import Selector, evaluate

T0 = 1_800_000_000 * 10**9 // MINUTE_NS * MINUTE_NS
BASELINE = Selector("version=1.4", "version", "1.4")
CANARY = Selector("version=1.5", "version", "1.5")


def _store() -> InMemoryImpactStore:
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=("version",))
    store.traffic("checkout", T0, 30, good=100, segment={"version": "1.4"})
    store.traffic("checkout", T0, 30, good=60, bad=40, segment={"version": "1.5"})  # clearly worse
    return store


def _gate(store: InMemoryImpactStore) -> dict[str, object]:
    result = evaluate(store, "checkout", BASELINE, CANARY, T0, T0 + 30 * MINUTE_NS, window="30m", policy=GatePolicy())
    return result.to_json()


def test_a_worse_canary_fails_over_a_complete_window() -> None:
    answer = _gate(_store())
    assert answer["verdict"] == Verdict.FAIL.value and answer["exit_code"] == 1
    assert answer["telemetry"] == {"complete": True, "reason": None, "observed_seconds": 30 * 60}


def test_a_window_older_than_the_state_is_inconclusive_with_the_reason() -> None:
    store = _store()
    store.set_state_start(T0 + 27 * MINUTE_NS)  # the processor has seen the last 3 minutes only
    answer = _gate(store)
    assert answer["verdict"] == "inconclusive" and answer["exit_code"] == 2
    telemetry = answer["telemetry"]
    assert isinstance(telemetry, dict) and telemetry["complete"] is False
    assert telemetry["reason"] == store.window_completeness("checkout", T0, T0 + 30 * MINUTE_NS).reason
    assert telemetry["observed_seconds"] == 3 * 60
    assert f"The window is incomplete ({telemetry['reason']})" in str(answer["explanation"])


def test_telemetry_loss_is_inconclusive_too() -> None:
    store = _store()
    store.set_telemetry("checkout", False, "span volume fell to 5% of its baseline")
    answer = _gate(store)
    assert answer["exit_code"] == 2
    assert answer["telemetry"] == {
        "complete": False,
        "reason": "span volume fell to 5% of its baseline",
        "observed_seconds": 30 * 60,
    }
