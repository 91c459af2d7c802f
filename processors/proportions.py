"""Comparing two proportions: Wilson score intervals and Newcombe's difference interval.

The gate asks whether the canary's failure rate exceeds the baseline's; explain asks whether a
value's share among failing events exceeds its share among passing ones. Failure rates of healthy
services sit near zero, where the normal (Wald) interval is wrong; Wilson's score interval per
arm, combined by Newcombe's hybrid method (1998, method 10), keeps its coverage there and for
small counts, and needs nothing beyond the standard library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True)
class Proportion:
    """``failures`` out of ``total``."""

    failures: int
    total: int

    def __post_init__(self) -> None:
        if self.total < 0 or not 0 <= self.failures <= self.total:
            raise ValueError(f"need 0 <= failures <= total, got {self.failures} of {self.total}")

    @property
    def rate(self) -> float:
        return self.failures / self.total if self.total else 0.0


def z_value(confidence: float) -> float:
    """The two-sided normal quantile for ``confidence`` (e.g. 0.95 → 1.96)."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be between 0 and 1")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(p: Proportion, z: float) -> tuple[float, float]:
    """Wilson score interval for ``p.rate``; ``(0, 1)`` when there is no data."""
    n = p.total
    if n == 0:
        return 0.0, 1.0
    rate = p.failures / n
    denominator = 1 + z * z / n
    centre = (rate + z * z / (2 * n)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(canary: Proportion, baseline: Proportion, z: float) -> tuple[float, float, float]:
    """Newcombe's interval for ``canary.rate - baseline.rate``: ``(estimate, lower, upper)``."""
    c_low, c_high = wilson_interval(canary, z)
    b_low, b_high = wilson_interval(baseline, z)
    estimate = canary.rate - baseline.rate
    lower = estimate - math.sqrt((canary.rate - c_low) ** 2 + (b_high - baseline.rate) ** 2)
    upper = estimate + math.sqrt((c_high - canary.rate) ** 2 + (baseline.rate - b_low) ** 2)
    return estimate, lower, upper
