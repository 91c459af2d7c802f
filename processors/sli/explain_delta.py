"""`ExplainDelta`: what one analysed result adds to a task's explain counts in one minute.

Plain data, so it crosses a process boundary inside an `AnalysisResult` (see `explain_tracking`
for who makes and who folds it). It imports nothing of the SLI package, so `results` can hold it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ExplainDelta", "Pair", "merge_deltas"]

Pair = tuple[str, str]
"""(attribute, value), as decoded text; flag variants are (``flag:<name>``, variant)."""


@dataclass(slots=True)
class ExplainDelta:
    """One analysed result's events of one task in one minute (see the module docstring)."""

    failing: int = 0
    passing: int = 0
    passing_kept: int = 0
    counts: dict[Pair, list[int]] = field(default_factory=dict)
    """``[failing, passing kept]`` per value."""
    users: dict[Pair, set[str]] = field(default_factory=dict)
    """Failing users per value (decoded pseudonyms)."""
    sample: list[tuple[float, bool, tuple[Pair, ...]]] = field(default_factory=list)
    """(priority, bad, values) of up to ``pair_sample`` kept events per outcome, lowest priorities."""


def merge_deltas(into: dict[tuple[str, int], ExplainDelta], other: dict[tuple[str, int], ExplainDelta]) -> None:
    """Add ``other``'s deltas to ``into`` (samples are concatenated; the state keeps the lowest)."""
    for key, delta in other.items():
        mine = into.get(key)
        if mine is None:
            into[key] = delta
            continue
        mine.failing += delta.failing
        mine.passing += delta.passing
        mine.passing_kept += delta.passing_kept
        for pair, (failing, passing) in delta.counts.items():
            held = mine.counts.setdefault(pair, [0, 0])
            held[0] += failing
            held[1] += passing
        for pair, users in delta.users.items():
            mine.users.setdefault(pair, set()).update(users)
        mine.sample.extend(delta.sample)
