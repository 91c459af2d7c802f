"""`ExplainDelta`: what one analysed result adds to a task's explain counts in one minute.

Plain data, so it crosses a process boundary inside an `AnalysisResult` (see `explain_tracking`
for who makes and who folds it). It imports nothing of the SLI package, so `results` can hold it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = ["USER_SKETCH_K", "ExplainDelta", "Pair", "SampleEntry", "merge_deltas", "merge_hashes"]

Pair = tuple[str, str]
"""(attribute, value), as decoded text; flag variants are (``flag:<name>``, variant)."""
SampleEntry = tuple[float, bool, tuple[tuple[str, bytes], ...]]
"""(priority, bad, values) of one sampled event, its values undecoded (key, AnyValue bytes)."""
USER_SKETCH_K: Final = 32
"""Distinct-user sketch size per value: exact up to this many users, estimated beyond."""


@dataclass(slots=True)
class ExplainDelta:
    """One analysed result's events of one task in one minute (see `explain_tracking`)."""

    failing: int = 0
    passing: int = 0
    """All failing and passing events (sampled or not)."""
    passing_kept: int = 0
    """Passing events sampled (each counted with weight 1 / its sampling rate)."""
    passing_weight: float = 0.0
    """The sampled passing events' weights summed (an estimate of ``passing``)."""
    min_rate: float = 1.0
    """The lowest sampling rate of the passing events here (1: all were kept)."""
    counts: dict[Pair, list[float]] = field(default_factory=dict)
    """``[failing events, weighted sampled passing events]`` per value."""
    users: dict[Pair, list[int]] = field(default_factory=dict)
    """Failing users per value: the lowest `USER_SKETCH_K` user hashes, sorted."""
    sample: list[SampleEntry] = field(default_factory=list)
    """Sampled events: the lowest priorities, up to ``pair_sample`` per outcome."""


def merge_hashes(first: list[int], second: list[int]) -> list[int]:
    """The lowest `USER_SKETCH_K` distinct hashes of both, sorted."""
    return sorted(set(first).union(second))[:USER_SKETCH_K]


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
        mine.passing_weight += delta.passing_weight
        mine.min_rate = min(mine.min_rate, delta.min_rate)
        for pair, (failing, passing) in delta.counts.items():
            held = mine.counts.get(pair)
            if held is None:
                mine.counts[pair] = [failing, passing]
            else:
                held[0] += failing
                held[1] += passing
        for pair, hashes in delta.users.items():
            mine.users[pair] = merge_hashes(mine.users.get(pair, []), hashes)
        mine.sample.extend(delta.sample)
