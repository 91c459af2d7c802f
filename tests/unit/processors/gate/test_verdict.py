"""Hand-checked numbers for the gate's statistics and verdicts."""

from __future__ import annotations

import pytest

from otel_impact.processors.gate._verdict import GatePolicy, GateResult, Verdict, compare
from otel_impact.processors.proportions import Proportion, difference_interval, wilson_interval, z_value

Z95 = z_value(0.95)


def test_z_value() -> None:
    assert abs(Z95 - 1.959964) < 1e-6


def test_wilson_interval_matches_published_values() -> None:
    # Newcombe (1998), Table I, example (a): 81 of 263 → 0.2553 to 0.3662 (Wilson score, 95%).
    low, high = wilson_interval(Proportion(81, 263), Z95)
    assert low == pytest.approx(0.2553, abs=5e-4)
    assert high == pytest.approx(0.3662, abs=5e-4)
    # zero failures still gives an informative upper bound (the Wald interval would give 0 to 0)
    low, high = wilson_interval(Proportion(0, 100), Z95)
    assert low == 0.0 and high == pytest.approx(0.0370, abs=5e-4)


def test_newcombe_difference_matches_published_values() -> None:
    # Newcombe (1998), Table II, example (a): 56/70 - 48/80 = 0.2000, method 10: 0.0524 to 0.3339.
    estimate, low, high = difference_interval(Proportion(56, 70), Proportion(48, 80), Z95)
    assert estimate == pytest.approx(0.2)
    assert low == pytest.approx(0.0524, abs=5e-4)
    assert high == pytest.approx(0.3339, abs=5e-4)


POLICY = GatePolicy()


def test_a_clearly_worse_canary_fails() -> None:
    result = compare("success", Proportion(300, 1000), Proportion(10, 10_000), 0.005, POLICY)
    assert result.verdict is Verdict.FAIL


def test_an_equal_canary_with_enough_data_passes() -> None:
    result = compare("success", Proportion(10, 10_000), Proportion(11, 10_000), 0.005, POLICY)
    assert result.verdict is Verdict.PASS and result.upper <= 0.005


def test_too_little_data_is_inconclusive_even_when_it_looks_bad() -> None:
    result = compare("success", Proportion(5, 20), Proportion(0, 20), 0.005, POLICY)
    assert result.verdict is Verdict.INCONCLUSIVE


def test_worse_but_not_beyond_chance_is_inconclusive() -> None:
    result = compare("success", Proportion(4, 200), Proportion(2, 200), 0.005, POLICY)
    assert result.lower < 0 < result.upper
    assert result.verdict is Verdict.INCONCLUSIVE


def test_significantly_worse_within_tolerance_is_not_a_failure() -> None:
    result = compare("success", Proportion(300, 100_000), Proportion(100, 100_000), 0.005, POLICY)
    assert result.lower > 0 and result.verdict is Verdict.PASS


def test_overall_verdict_and_exit_codes() -> None:
    fail = compare("success", Proportion(300, 1000), Proportion(10, 10_000), 0.005, POLICY)
    ok = compare("latency ≤ 0.3 s", Proportion(10, 1000), Proportion(100, 10_000), 0.02, POLICY)
    unsure = compare("latency ≤ 0.3 s", Proportion(1, 10), Proportion(1, 10), 0.02, POLICY)
    result = GateResult("checkout", "30m", "service.version=1.4", "service.version=1.5", POLICY, (fail, ok))
    assert result.verdict is Verdict.FAIL and result.verdict.exit_code == 1
    assert GateResult("t", "30m", "a", "b", POLICY, (ok, unsure)).verdict.exit_code == 2
    assert GateResult("t", "30m", "a", "b", POLICY, (ok,)).verdict.exit_code == 0
    assert GateResult("t", "30m", "a", "b", POLICY, ()).verdict is Verdict.INCONCLUSIVE
    text = result.explanation()
    assert text.startswith("FAIL") and "300 of 1000" in text and "service.version=1.5" in text and "Newcombe" in text
    document = result.to_json()
    assert document["verdict"] == "fail" and document["exit_code"] == 1
    assert document["signals"][0]["canary"]["rate"] == 0.3


@pytest.mark.parametrize(
    "kwargs", [{"confidence": 1.0}, {"confidence": 0.2}, {"max_success_degradation": -0.1}, {"min_events": 0}]
)
def test_bad_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        GatePolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("failures", "total"), [(-1, 10), (11, 10), (0, -1)])
def test_bad_proportions_are_refused(failures: int, total: int) -> None:
    with pytest.raises(ValueError):
        Proportion(failures, total)
