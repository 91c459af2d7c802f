"""What failing requests have in common: over-represented attribute values, with intervals.

`explain(tracking, start_ns, end_ns)` compares, for every tracked value of a task in the window,
its share among failing events (all counted) with its share among passing events (sampled, see
`explain_tracking`: the weighted share is the estimate, the sampled count the ``n`` of the
interval). A value is a finding
only when the Newcombe interval of ``failing_share - passing_share`` (the canary gate's, imported
from `processors.proportions`) lies above 0 at a Bonferroni-corrected confidence
``1 - FAMILY_ERROR / candidates`` (every value tested, plus the pairs that may be tested), and it
is on at least ``min_share`` of failing events. `FAMILY_ERROR` bounds the chance that an answer
reports anything by chance alone; it is far below the usual 5 % because on-call engineers ask
again and again, and a value reported by chance once in twenty answers would send them astray.
The interval reported is the plain ``confidence`` one; findings are sorted by its lower bound,
strongest first.

Pairs: among the `PAIR_FROM` strongest single findings (of different attributes), a pair is
tested on the window's uniform event sample and reported when it is significant too (same
correction) and it explains clearly more than either value alone. The pair's difference exceeds
value X's by exactly the share of events having X without the other value among passing events
minus that share among failing ones, so "clearly more" is that difference's Newcombe interval
lying above 0 at the ``confidence`` level, for both values, on the same sampled events: failures
need both values, while successes often have one alone. (That comparison is among values already
found significant, so it is not corrected again: a value paired with a chance one does not show
more successes without it, so the pair is not reported.) A pair's ``failing_users`` is the
smaller of its two values' (an upper bound: users are counted per value).

``where`` restricts the comparison to events having one value; the counts then come from the
pair sample alone (``sampled`` is true), so fewer findings reach significance.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

from otel_impact.processors.proportions import Proportion, difference_interval, z_value

from .config_entries import DimensionConfig
from .explain_tracking import FLAG_PREFIX, OTHER, ExplainTracking, Pair, TaskExplain, WindowCounts

__all__ = [
    "FAMILY_ERROR",
    "PAIR_FROM",
    "Difference",
    "Explanation",
    "Finding",
    "explain",
    "explain_task",
    "no_explanation",
]

PAIR_FROM: Final = 6
"""Pairs are tested among this many strongest single findings (at most 15 pairs)."""
_MAX_PAIRS: Final = PAIR_FROM * (PAIR_FROM - 1) // 2
FAMILY_ERROR: Final = 0.001
"""The chance that one answer reports any value at all when failures have nothing in common."""


@dataclass(frozen=True)
class Difference:
    """``failing_share - passing_share`` with its interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Finding:
    """A value (or two, for a pair) over-represented among failing events."""

    attribute: str
    value: str
    failing_share: float
    passing_share: float
    difference: Difference
    failing_users: int
    also: Pair | None = None
    """The second value of a pair (``None`` for a single value)."""


@dataclass(frozen=True)
class Explanation:
    """The answer for one task and window (see the module docstring)."""

    task: str
    start_ns: int
    end_ns: int
    failing_events: int
    passing_events: int
    passing_sampled: int
    candidates_tested: int
    findings: tuple[Finding, ...]
    sampled: bool = False
    """Whether the counts come from the event sample (a ``where`` restriction)."""


def no_explanation(task: str, start_ns: int, end_ns: int) -> Explanation:
    """The answer for a task with no explain counts yet."""
    return Explanation(task, start_ns, end_ns, 0, 0, 0, 0, ())


def explain(tracking: TaskExplain, task: str, start_ns: int, end_ns: int, *, where: Pair | None = None) -> Explanation:
    """Findings for ``task`` over ``[start_ns, end_ns)``. Raises ``ValueError`` when ``where``
    names an attribute the task has no values of."""
    counts = tracking.window(start_ns, end_ns)
    config = tracking.config
    if where is not None:
        counts = _restricted(counts, where)
    kept = counts.passing_kept
    candidates = [
        index
        for index, (attribute, value) in enumerate(counts.columns)
        if value != OTHER and (counts.counts[0, index] or counts.counts[1, index])
    ]
    if not counts.failing or not kept or not candidates:
        return Explanation(
            task, counts.start_ns, end_ns, counts.failing, counts.passing, kept, 0, (), sampled=where is not None
        )
    pairs_possible = _MAX_PAIRS if config.pair_sample else 0
    tests = len(candidates) + pairs_possible
    strict = z_value(1 - FAMILY_ERROR / tests)
    shown = z_value(config.confidence)
    singles: list[tuple[float, int, Finding]] = []
    for index in candidates:
        bad = int(counts.counts[0, index])
        if bad < config.min_share * counts.failing:
            continue
        good = _sampled(float(counts.counts[1, index]), counts.passing_weight, kept)
        decided = difference_interval(Proportion(bad, counts.failing), Proportion(good, kept), strict)
        if decided[1] <= 0:
            continue
        attribute, value = counts.columns[index]
        users = counts.users.get(index, 0)
        finding = _finding(attribute, value, bad, counts.failing, good, kept, shown, users)
        singles.append((finding.difference.low, index, finding))
    singles.sort(key=lambda entry: (-entry[0], entry[2].attribute, entry[2].value))
    found = [(low, finding) for low, _, finding in singles]
    tested_pairs = 0
    if config.pair_sample and len(singles) >= 2:
        pairs, tested_pairs = _pairs(counts, singles[:PAIR_FROM], strict, shown)
        found.extend(pairs)
        found.sort(key=lambda entry: -entry[0])
    return Explanation(
        task,
        counts.start_ns,
        end_ns,
        counts.failing,
        counts.passing,
        kept,
        len(candidates) + tested_pairs,
        tuple(finding for _, finding in found),
        sampled=where is not None,
    )


def _sampled(weighted: float, total_weight: float, kept: int) -> int:
    """A weighted passing count as sampled events (its share of the weights, of the ``kept`` sampled)."""
    if total_weight <= 0:
        return 0
    return min(kept, round(kept * weighted / total_weight))


def _finding(
    attribute: str, value: str, bad: int, failing: int, good: int, passing: int, z: float, users: int
) -> Finding:
    estimate, low, high = difference_interval(Proportion(bad, failing), Proportion(good, passing), z)
    return Finding(attribute, value, bad / failing, good / passing, Difference(estimate, low, high), min(users, bad))


def _pairs(
    counts: WindowCounts, singles: list[tuple[float, int, Finding]], strict: float, shown: float
) -> tuple[list[tuple[float, Finding]], int]:
    failing = [mask for _, bad, mask in counts.sample if bad]
    passing = [mask for _, bad, mask in counts.sample if not bad]
    if not failing or not passing:
        return [], 0
    found: list[tuple[float, Finding]] = []
    tested = 0

    def alone_more_often_passing(value: int, both: int) -> bool:
        """Whether events with ``value`` but not both values are more common among passing
        events than among failing ones, beyond chance (at the shown confidence)."""
        good = sum(1 for event in passing if event & both == value)
        bad = sum(1 for event in failing if event & both == value)
        return difference_interval(Proportion(good, len(passing)), Proportion(bad, len(failing)), shown)[1] > 0

    for (_, first, one), (_, second, two) in itertools.combinations(singles, 2):
        if one.attribute == two.attribute:
            continue
        tested += 1
        both = (1 << first) | (1 << second)
        bad = sum(1 for mask in failing if mask & both == both)
        good = sum(1 for mask in passing if mask & both == both)
        significant = difference_interval(Proportion(bad, len(failing)), Proportion(good, len(passing)), strict)
        if significant[1] <= 0:
            continue
        if not (alone_more_often_passing(1 << first, both) and alone_more_often_passing(1 << second, both)):
            continue  # not clearly more than either value alone (on the same events)
        users = min(one.failing_users, two.failing_users)
        pair = _finding(one.attribute, one.value, bad, len(failing), good, len(passing), shown, users)
        pair = Finding(
            pair.attribute,
            pair.value,
            pair.failing_share,
            pair.passing_share,
            pair.difference,
            pair.failing_users,
            also=(two.attribute, two.value),
        )
        found.append((pair.difference.low, pair))
    return found, tested


def _restricted(counts: WindowCounts, where: Pair) -> WindowCounts:
    """``counts`` recomputed from the sample's events that have ``where``."""
    try:
        index = counts.columns.index(where)
    except ValueError:
        if not any(attribute == where[0] for attribute, _ in counts.columns):
            raise ValueError(f"no values of {where[0]!r} are tracked for explain") from None
        index = -1
    bit = 1 << index if index >= 0 else 0
    sample = [entry for entry in counts.sample if bit and entry[2] & bit]
    table = np.zeros((2, len(counts.columns)), dtype=np.float64)
    failing = passing = 0
    for _, bad, mask in sample:
        side = 0 if bad else 1
        if bad:
            failing += 1
        else:
            passing += 1
        column = 0
        while mask:
            if mask & 1:
                table[side, column] += 1
            mask >>= 1
            column += 1
    if index >= 0:
        table[:, index] = 0  # every event has it: not a candidate
    return WindowCounts(counts.start_ns, failing, passing, passing, float(passing), counts.columns, table, {}, sample)


def explain_task(
    tracking: ExplainTracking,
    dimensions: Sequence[DimensionConfig],
    task: str,
    start_ns: int,
    end_ns: int,
    *,
    where: Mapping[str, str] | None = None,
) -> Explanation:
    """`explain` for the task named ``task`` (no findings when it has no explain counts yet).

    ``where`` holds at most one ``{DIMENSION: VALUE}``: a dimension's name (read as its attribute,
    or ``flag:<name>`` for a flag dimension) or an attribute key. Raises ``ValueError`` otherwise.
    """
    restriction = None
    if where:
        if len(where) > 1:
            raise ValueError("explain takes one where=DIMENSION=VALUE")
        ((name, value),) = where.items()
        key = name
        for dimension in dimensions:
            if dimension.name == name:
                key = dimension.attribute if dimension.attribute is not None else f"{FLAG_PREFIX}{dimension.flag}"
        restriction = (key, value)
    tracked = tracking.tasks.get(task)
    if tracked is None:
        if restriction is not None:
            raise ValueError(f"no values of {restriction[0]!r} are tracked for explain")
        return no_explanation(task, start_ns, end_ns)
    return explain(tracked, task, start_ns, end_ns, where=restriction)
