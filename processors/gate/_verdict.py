"""The gate's verdict: pass, fail or inconclusive, with the numbers and a paragraph for people.

Each signal (task success, and the latency threshold when the task has one) compares the
canary's failure proportion with the baseline's. With ``confidence`` (default 95%) Newcombe's
interval bounds how much worse the canary is, ``canary rate - baseline rate``:

* **fail**: the interval lies above zero (the canary is worse, beyond chance) and the point
  estimate exceeds the tolerated degradation;
* **pass**: the interval's upper end is within the tolerated degradation (any difference is
  small enough, with confidence);
* **inconclusive**: anything else, including either side having fewer than ``min_events``.

The gate fails if any signal fails, is inconclusive if any is, and passes otherwise.
Exit codes: 0 pass, 1 fail, 2 inconclusive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from otel_impact.processors.proportions import Proportion, difference_interval, z_value


class Verdict(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"

    @property
    def exit_code(self) -> int:
        return {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.INCONCLUSIVE: 2}[self]


TEST_NAME = "Newcombe hybrid score interval (Wilson) on the difference of failure proportions"


@dataclass(frozen=True)
class GatePolicy:
    """How strict the gate is. Degradations are absolute differences of failure proportions."""

    confidence: float = 0.95
    max_success_degradation: float = 0.005
    max_latency_degradation: float = 0.02
    min_events: int = 100

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1:
            raise ValueError("confidence must be in [0.5, 1), e.g. 0.95")
        if not 0 <= self.max_success_degradation < 1 or not 0 <= self.max_latency_degradation < 1:
            raise ValueError("degradations are proportions in [0, 1), e.g. 0.005 for half a percentage point")
        if self.min_events < 1:
            raise ValueError("min_events must be at least 1")


@dataclass(frozen=True)
class SignalResult:
    """One compared signal."""

    signal: str
    verdict: Verdict
    canary: Proportion
    baseline: Proportion
    difference: float
    lower: float
    upper: float
    tolerance: float

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["verdict"] = self.verdict.value
        out["canary"] = {**asdict(self.canary), "rate": self.canary.rate}
        out["baseline"] = {**asdict(self.baseline), "rate": self.baseline.rate}
        return out


def compare(
    signal: str, canary: Proportion, baseline: Proportion, tolerance: float, policy: GatePolicy
) -> SignalResult:
    """Compare one signal's failure proportions under ``policy``."""
    estimate, lower, upper = difference_interval(canary, baseline, z_value(policy.confidence))
    if canary.total < policy.min_events or baseline.total < policy.min_events:
        verdict = Verdict.INCONCLUSIVE
    elif lower > 0 and estimate > tolerance:
        verdict = Verdict.FAIL
    elif upper <= tolerance:
        verdict = Verdict.PASS
    else:
        verdict = Verdict.INCONCLUSIVE
    return SignalResult(signal, verdict, canary, baseline, estimate, lower, upper, tolerance)


@dataclass(frozen=True)
class GateResult:
    """The gate's answer for one task, canary against baseline."""

    task: str
    window: str
    baseline_label: str
    canary_label: str
    policy: GatePolicy
    signals: tuple[SignalResult, ...] = field(default_factory=tuple)
    telemetry_reason: str | None = None
    """Why the window looked incomplete (which makes every signal inconclusive)."""
    observed_seconds: float | None = None
    """How much of the window the processor's state has seen (``None`` when not asked)."""

    @property
    def verdict(self) -> Verdict:
        verdicts = {s.verdict for s in self.signals}
        if Verdict.FAIL in verdicts:
            return Verdict.FAIL
        if Verdict.INCONCLUSIVE in verdicts or not verdicts:
            return Verdict.INCONCLUSIVE
        return Verdict.PASS

    def explanation(self) -> str:
        """One paragraph saying what was compared, what was found and why that is the verdict."""
        verdict = self.verdict
        head = {
            Verdict.PASS: "PASS: the canary is not worse than the baseline beyond the tolerance.",
            Verdict.FAIL: "FAIL: the canary is worse than the baseline.",
            Verdict.INCONCLUSIVE: "INCONCLUSIVE: the data cannot tell yet.",
        }[verdict]
        parts = [head]
        if self.telemetry_reason:
            parts.append(f"The window is incomplete ({self.telemetry_reason}), so no signal can pass or fail.")
        for s in self.signals:
            parts.append(
                f"{s.signal}: the canary ({self.canary_label}) failed {s.canary.failures} of {s.canary.total} "
                f"({_pct(s.canary.rate)}) against {s.baseline.failures} of {s.baseline.total} "
                f"({_pct(s.baseline.rate)}) for the baseline ({self.baseline_label}) over {self.window}; "
                f"with {self.policy.confidence:.0%} confidence the canary's failure rate is "
                f"{_points(s.lower)} to {_points(s.upper)} percentage points higher "
                f"(tolerance {_points(s.tolerance)}), so this signal is {s.verdict.value}"
                + (_short_reason(s, self.policy) or "")
                + "."
            )
        parts.append(f"Test: {TEST_NAME}; at least {self.policy.min_events} events per side are required.")
        return " ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "window": self.window,
            "baseline": self.baseline_label,
            "canary": self.canary_label,
            "verdict": self.verdict.value,
            "exit_code": self.verdict.exit_code,
            "signals": [s.to_json() for s in self.signals],
            "test": TEST_NAME,
            "confidence": self.policy.confidence,
            "min_events": self.policy.min_events,
            "telemetry": {
                "complete": self.telemetry_reason is None,
                "reason": self.telemetry_reason,
                "observed_seconds": self.observed_seconds,
            },
            "explanation": self.explanation(),
        }


def _short_reason(s: SignalResult, policy: GatePolicy) -> str | None:
    if s.verdict is Verdict.INCONCLUSIVE and min(s.canary.total, s.baseline.total) < policy.min_events:
        return f" (too few events: fewer than {policy.min_events} on one side)"
    return None


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f}%"


def _points(value: float) -> str:
    return f"{value * 100:+.2f}"
