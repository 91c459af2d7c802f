"""Error budgets, burn rates and the multiwindow multi-burn-rate decision, as pure functions.

Definitions (budgeting by occurrences):

- *error ratio* over a window = bad events / all events (``None`` with no events);
- *burn rate* = error ratio / error budget, where the error budget is ``1 - objective``: a burn
  rate of 1 spends exactly the budget over the period, 14.4 spends a 30-day budget in 50 hours;
- *budget consumed* over the period so far = bad events / (error budget x events), and
  *remaining* = 1 - consumed (negative once the budget is overspent).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from otel_impact.processors.impact_queries import EventCounts

from .alerting_config import LowBudgetPage, LowTrafficGuard
from .config import SliSpec
from .windows import HOUR, MINUTE, WORKBOOK_RULES, BurnRule

__all__ = [
    "Budget",
    "ConditionResult",
    "Tally",
    "alert_level",
    "budget_covers",
    "budget_left",
    "budget_spent",
    "evaluate_conditions",
    "spoken_duration",
    "tally",
]


@dataclass(frozen=True)
class Tally:
    """Events of one window as the SLI sees them."""

    total: int
    bad: int

    @property
    def good(self) -> int:
        return self.total - self.bad

    def error_ratio(self) -> float | None:
        return self.bad / self.total if self.total else None

    def burn_rate(self, error_budget: float) -> float | None:
        ratio = self.error_ratio()
        return None if ratio is None else ratio / error_budget


EMPTY = Tally(0, 0)


class MissingThreshold(LookupError):
    """The SLI's latency threshold is not among the thresholds the SLI engine counts."""


def tally(counts: EventCounts | None, sli: SliSpec) -> Tally:
    """Events of a window for the SLI: bad = failed events (success ratio) or events slower
    than the threshold (latency). Raises `MissingThreshold` if the threshold is not counted."""
    if counts is None:
        return EMPTY
    if sli.kind == "success_ratio":
        return Tally(counts.total, counts.bad)
    assert sli.threshold_seconds is not None
    for threshold, met in counts.latency_met.items():
        if math.isclose(threshold, sli.threshold_seconds, rel_tol=1e-9, abs_tol=1e-12):
            return Tally(counts.total, max(0, counts.total - met))
    if counts.total == 0:
        return EMPTY
    raise MissingThreshold(sli.threshold_seconds)


@dataclass(frozen=True)
class Budget:
    """Error budget of one SLO (and segment) over the period so far."""

    total: int
    bad: int
    allowed_bad: float
    consumed: float
    remaining: float

    @classmethod
    def of(cls, period: Tally, error_budget: float) -> Budget:
        allowed = error_budget * period.total
        if period.total == 0:
            return cls(0, 0, 0.0, 0.0, 1.0)
        consumed = period.bad / allowed
        return cls(period.total, period.bad, allowed, consumed, 1.0 - consumed)


def _times(consumed: float) -> str:
    """``26x`` or ``1.3x`` (with a multiplication sign): how many budgets were spent."""
    return f"{consumed:.0f}×" if consumed >= 10 else f"{consumed:.1f}".rstrip("0").rstrip(".") + "×"


def budget_left(consumed: float) -> str:
    """The budget left in words: ``82.3% left``, or ``exhausted: 26x the budget spent`` once all
    of it is spent (never a negative percentage)."""
    if consumed >= 1:
        return f"exhausted: {_times(consumed)} the budget spent"
    return f"{(1 - consumed) * 100:.1f}% left"


def budget_spent(consumed: float) -> str:
    """The budget spent in words: ``17.5% of the budget spent``, or ``exhausted: 20x the budget
    spent`` once all of it is."""
    if consumed >= 1:
        return f"exhausted: {_times(consumed)} the budget spent"
    return f"{consumed * 100:.1f}% of the budget spent"


def spoken_duration(seconds: float) -> str:
    """A duration as people say it, rounded down to its largest unit: ``45 seconds``,
    ``12 minutes``, ``3 hours``, ``29 days``."""
    whole = int(max(0.0, seconds))
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60)):
        if whole >= size:
            count = whole // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{whole} second{'' if whole == 1 else 's'}"


def budget_covers(observed_seconds: float, state_covers_period: bool, period_label: str) -> str:
    """What period a budget is of: ``the 12 minutes observed`` while the processor's state is
    younger than the SLO's period (its budget counts those events only), else ``the 30d period``
    (``the calendar month`` for a calendar window)."""
    if not state_covers_period:
        return f"the {spoken_duration(observed_seconds)} observed"
    if period_label == "calendar_month":
        return "the calendar month"
    return f"the {period_label} period"


@dataclass(frozen=True)
class ConditionResult:
    """One burn-rate condition evaluated: both burn rates, the threshold and the verdict.

    ``firing`` is the final answer; ``burning`` says the burn rates alone were above the
    threshold (and, for the low-budget rule, the budget was low), and ``guarded`` that the
    low-traffic guard held the alert back.
    """

    name: str
    severity: Literal["page", "ticket"]
    long: float
    short: float
    threshold: float
    long_burn: float | None
    short_burn: float | None
    burning: bool
    guarded: bool

    @property
    def firing(self) -> bool:
        return self.burning and not self.guarded


def _above(burn: float | None, threshold: float) -> bool:
    return burn is not None and burn > threshold


def evaluate_conditions(
    windows: Mapping[float, Tally],
    budget: Budget,
    *,
    error_budget: float,
    period_seconds: float,
    guard: LowTrafficGuard,
    low_budget: LowBudgetPage,
    rules: Sequence[BurnRule] = WORKBOOK_RULES,
) -> list[ConditionResult]:
    """Evaluate every burn rule (and the low-budget page) for one SLO segment.

    ``windows`` maps each window length in seconds to its tally; a window that is missing
    counts as empty. A condition needs both burn rates strictly above its threshold, and its
    long window must pass the low-traffic guard.
    """

    def burn(seconds: float) -> float | None:
        return windows.get(seconds, EMPTY).burn_rate(error_budget)

    def guarded(seconds: float) -> bool:
        long = windows.get(seconds, EMPTY)
        return long.total < guard.min_events or long.bad < guard.min_bad_events

    results = []
    for rule in rules:
        threshold = rule.threshold(period_seconds)
        long_burn, short_burn = burn(rule.long), burn(rule.short)
        burning = _above(long_burn, threshold) and _above(short_burn, threshold)
        results.append(
            ConditionResult(
                rule.name,
                rule.severity,
                rule.long,
                rule.short,
                threshold,
                long_burn,
                short_burn,
                burning,
                guarded(rule.long),
            )
        )
    if low_budget.enabled:
        long_burn, short_burn = burn(HOUR), burn(5 * MINUTE)
        burning = (
            _above(long_burn, low_budget.burn_rate)
            and _above(short_burn, low_budget.burn_rate)
            and budget.total > 0
            and budget.remaining < low_budget.budget_remaining_below
        )
        results.append(
            ConditionResult(
                "low_budget_page",
                "page",
                HOUR,
                5 * MINUTE,
                low_budget.burn_rate,
                long_burn,
                short_burn,
                burning,
                guarded(HOUR),
            )
        )
    return results


def alert_level(results: Sequence[ConditionResult]) -> Literal["page", "ticket"] | None:
    """``page`` if any page condition fires, else ``ticket`` if any ticket condition fires."""
    firing = {result.severity for result in results if result.firing}
    if "page" in firing:
        return "page"
    if "ticket" in firing:
        return "ticket"
    return None
