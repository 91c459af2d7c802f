"""Which shared-state buckets answer a window.

In Redis every event is added to its bucket in *every* tier at once (a minute bucket, a
10-minute bucket, an hour bucket ...), each kept for its tier's retention. A window is then
answered by a cover: buckets that do not overlap and together span it, as coarse as the window
allows, so that a 30-day window reads about thirty day buckets plus a few finer ones at its
edges instead of 720 hour buckets.

Like the embedded state, a window whose start lies past a fine tier's retention is widened to
the retained tier's bucket edge (never narrowed); a window ending now may include the whole of
the newest buckets, which hold nothing later than now.
"""

from __future__ import annotations

from dataclasses import dataclass

from otel_impact.processors.durations import SECOND_NS
from otel_impact.processors.sli.config import TierConfig

__all__ = ["DAY_S", "Cover", "SharedTier", "cover", "shared_tiers"]

DAY_S = 86_400


@dataclass(frozen=True)
class SharedTier:
    """One tier of the shared state: bucket width and how long its buckets are kept (ns)."""

    width_ns: int
    keep_ns: int

    def bucket(self, at_ns: int) -> int:
        return at_ns // self.width_ns

    def expires_at_ms(self, bucket: int) -> int:
        """When a bucket's key expires: the end of the bucket plus the tier's retention."""
        return ((bucket + 1) * self.width_ns + self.keep_ns) // 1_000_000


def shared_tiers(tiers: tuple[TierConfig, ...], *, add_day: bool) -> tuple[SharedTier, ...]:
    """The configured tiers, plus (with ``add_day``) a 1-day tier as long as the last one when
    the last is finer than a day: long windows then read tens of buckets, not hundreds."""
    shared = [SharedTier(t.width_s * SECOND_NS, t.keep_s * SECOND_NS) for t in tiers]
    if add_day and tiers and tiers[-1].width_s < DAY_S and tiers[-1].keep_s >= DAY_S:
        shared.append(SharedTier(DAY_S * SECOND_NS, tiers[-1].keep_s * SECOND_NS))
    return tuple(shared)


@dataclass(frozen=True)
class Cover:
    """The buckets ``(tier, bucket index)`` answering a window, and where they really start."""

    buckets: tuple[tuple[int, int], ...]
    start_ns: int


def cover(tiers: tuple[SharedTier, ...], start_ns: int, end_ns: int, now_ns: int) -> Cover:
    """The coarsest non-overlapping buckets spanning ``[start_ns, end_ns)`` that are still kept.

    Tier widths are multiples of each other, fine to coarse (the config validates it).
    """

    def kept(tier: int, at_ns: int) -> bool:
        t = tiers[tier]
        return at_ns >= (now_ns // t.width_ns) * t.width_ns - t.keep_ns + t.width_ns

    widened = None
    for index, tier in enumerate(tiers):
        edge = (start_ns // tier.width_ns) * tier.width_ns
        if kept(index, edge):
            widened = edge
            break
    if widened is None:  # older than every tier keeps: start at the oldest bucket still kept
        last = tiers[-1]
        widened = (now_ns // last.width_ns) * last.width_ns - last.keep_ns + last.width_ns
    buckets: list[tuple[int, int]] = []
    at = widened
    while at < end_ns:
        candidates = [i for i, t in enumerate(tiers) if at % t.width_ns == 0 and kept(i, at)]
        if not candidates:  # not on any kept tier's edge: take the finest kept bucket holding it
            candidates = [next((i for i in range(len(tiers)) if kept(i, at)), len(tiers) - 1)]
            at = (at // tiers[candidates[0]].width_ns) * tiers[candidates[0]].width_ns
        fitting = [i for i in candidates if at + tiers[i].width_ns <= end_ns]
        chosen = fitting[-1] if fitting else candidates[0]
        buckets.append((chosen, at // tiers[chosen].width_ns))
        at += tiers[chosen].width_ns
    return Cover(tuple(buckets), widened)
