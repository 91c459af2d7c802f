"""Which buckets answer a window: as coarse as the window allows, never overlapping, kept ones only."""

from __future__ import annotations

import itertools

from otel_impact.processors.shared.cover import DAY_S, cover, shared_tiers
from otel_impact.processors.sli.config import DEFAULT_COUNT_TIERS, DEFAULT_SKETCH_TIERS

MINUTE = 60 * 10**9
HOUR = 60 * MINUTE
DAY = DAY_S * 10**9
NOW = (1_800_000_000 * 10**9 // DAY) * DAY + 13 * HOUR + 7 * MINUTE + 30 * 10**9


def spans(tiers, buckets):  # type: ignore[no-untyped-def]
    return [(b * tiers[t].width_ns, (b + 1) * tiers[t].width_ns) for t, b in buckets]


def test_a_30_day_window_reads_days_and_a_few_finer_buckets() -> None:
    tiers = shared_tiers(DEFAULT_COUNT_TIERS, add_day=True)
    assert [t.width_ns for t in tiers] == [MINUTE, 10 * MINUTE, HOUR, DAY]
    end = (NOW // MINUTE + 1) * MINUTE
    result = cover(tiers, end - 30 * DAY, end, NOW)
    parts = spans(tiers, result.buckets)
    assert len(result.buckets) < 80
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))  # contiguous, no overlap
    assert parts[0][0] == result.start_ns <= end - 30 * DAY and parts[-1][1] >= end
    assert sum(1 for t, _ in result.buckets if t == 3) >= 28


def test_a_recent_window_is_exact_to_the_minute() -> None:
    tiers = shared_tiers(DEFAULT_COUNT_TIERS, add_day=True)
    end = (NOW // MINUTE + 1) * MINUTE
    start = end - 95 * MINUTE
    result = cover(tiers, start, end, NOW)
    parts = spans(tiers, result.buckets)
    assert result.start_ns == start and parts[-1][1] == end
    assert len(result.buckets) < 30  # an hour bucket in the middle, minutes and 10 minutes at the edges


def test_a_start_past_the_fine_retention_is_widened_to_a_kept_bucket() -> None:
    tiers = shared_tiers(DEFAULT_SKETCH_TIERS, add_day=False)
    end = (NOW // MINUTE + 1) * MINUTE
    start = end - 5 * DAY - 7 * MINUTE  # past the hour tier's 2 days: day buckets
    result = cover(tiers, start, end, NOW)
    assert result.start_ns == start // DAY * DAY
    assert all(t == 2 for t, _ in result.buckets[:4])
