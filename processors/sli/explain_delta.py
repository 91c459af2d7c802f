"""`ExplainDelta`: what one analysed result adds to a task's explain counts in one minute.

Plain data, so it crosses a process boundary inside an `AnalysisResult` (see `explain_tracking`
for who makes and who folds it). It imports nothing of the SLI package, so `results` can hold it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ExplainDelta", "Pair", "RawPair", "RawPairs", "SampleEntry", "Signature", "merge_deltas"]

Pair = tuple[str, str]
"""(attribute, value), as decoded text; flag variants are (``flag:<name>``, variant)."""
RawPair = tuple[str, bytes]
"""(attribute, AnyValue bytes) as read from the wire, undecoded."""
RawPairs = tuple[RawPair, ...]
Signature = tuple[tuple[str, ...], tuple[bytes | None, ...], RawPairs]
"""One event's undecoded values: the span keys read, their values (``None``: absent), and its
resource's candidate pairs. Events repeat signatures, so they are counted by signature."""
SampleEntry = tuple[float, bool, Signature]
"""(priority, bad, values) of one sampled event."""


@dataclass(slots=True)
class ExplainDelta:
    """One analysed result's events of one task in one minute (see `explain_tracking`).

    Values stay undecoded (counts by raw pair, users and the sample by event signature): the
    state decodes each distinct value once, when it first sees it.
    """

    failing: int = 0
    passing: int = 0
    """All failing and passing events (sampled or not)."""
    passing_kept: int = 0
    """Passing events sampled (each counted with weight 1 / its sampling rate)."""
    passing_weight: float = 0.0
    """The sampled passing events' weights summed (an estimate of ``passing``)."""
    min_rate: float = 1.0
    """The lowest sampling rate of the passing events here (1: all were kept)."""
    counts: dict[RawPair, list[float]] = field(default_factory=dict)
    """``[failing events, weighted sampled passing events]`` per value."""
    users: dict[int, tuple[Signature, ...]] = field(default_factory=dict)
    """Failing users (64-bit hashes of their pseudonyms) and the values of their failing events."""
    sample: list[SampleEntry] = field(default_factory=list)
    """Sampled events: the lowest priorities, up to ``pair_sample`` per outcome."""


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
        for user, values in delta.users.items():
            before = mine.users.get(user)
            mine.users[user] = values if before is None else (*before, *values)
        mine.sample.extend(delta.sample)
