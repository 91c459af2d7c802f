"""Synthetic versus real success: do they differ beyond chance, and which way?

Synthetic probes failing while users are fine (a broken probe, a probe-only path) or users
failing while probes pass (the probe does not cover what users do) both mean the synthetic check
cannot be trusted as a stand-in for users. `traffic_mismatch` applies the gate's test
(`proportions`: Wilson intervals per side, Newcombe's interval for the difference of failure rates)
to the two sides; a mismatch is a difference interval that excludes zero, in either direction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from otel_impact.processors.proportions import Proportion, difference_interval, z_value

__all__ = ["MISMATCH_CONFIDENCE", "TrafficMismatch", "traffic_mismatch"]

MISMATCH_CONFIDENCE: Final = 0.95
"""The confidence of the test (two-sided)."""

Direction = Literal["synthetic_worse", "real_worse"]


@dataclass(frozen=True)
class TrafficMismatch:
    """The comparison of one task's synthetic and real failure rates over one window."""

    mismatch: bool
    """True when the difference is beyond chance at `confidence`."""
    direction: Direction | None
    """Which side fails more, when `mismatch`."""
    difference: float
    """Synthetic failure rate minus real failure rate."""
    lower: float
    upper: float
    """Newcombe's interval for `difference`."""
    confidence: float

    def to_json(self) -> dict[str, object]:
        return {
            "mismatch": self.mismatch,
            "direction": self.direction,
            "failure_rate_difference": round(self.difference, 6),
            "interval": [round(self.lower, 6), round(self.upper, 6)],
            "confidence": self.confidence,
        }


def traffic_mismatch(
    real_total: int,
    real_bad: int,
    synthetic_total: int,
    synthetic_bad: int,
    *,
    confidence: float = MISMATCH_CONFIDENCE,
) -> TrafficMismatch:
    """Compare synthetic and real failure rates. A side without events never mismatches (its
    Wilson interval is the whole of [0, 1]). Raises ``ValueError`` on impossible counts."""
    z = z_value(confidence)
    synthetic = Proportion(synthetic_bad, synthetic_total)
    real = Proportion(real_bad, real_total)
    estimate, lower, upper = difference_interval(synthetic, real, z)
    direction: Direction | None = None
    if real_total and synthetic_total:
        if lower > 0:
            direction = "synthetic_worse"
        elif upper < 0:
            direction = "real_worse"
    return TrafficMismatch(direction is not None, direction, estimate, lower, upper, confidence)
