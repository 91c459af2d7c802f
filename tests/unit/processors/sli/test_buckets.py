"""Resolution tiers: roll-up on eviction, sums over windows, retention."""

from __future__ import annotations

import numpy as np

from otel_impact.processors.sli.buckets import CountTiers, Layout, SketchTiers
from otel_impact.processors.sli.config import TierConfig
from otel_impact.processors.sli.sketches import SketchParams

MINUTE = 60 * 10**9
# 1-minute buckets for 5 minutes, 5-minute buckets for 20 minutes, 20-minute buckets for an hour.
LAYOUT = Layout.from_tiers((TierConfig(60, 300), TierConfig(300, 1200), TierConfig(1200, 3600)))


def one(value: float = 1.0) -> np.ndarray:
    return np.array([value, 0.0, 0.0])


def test_every_event_lives_in_one_bucket_and_rolls_up_as_it_ages() -> None:
    tiers = CountTiers(LAYOUT, 3)
    for minute in range(60):
        tiers.add(minute * MINUTE, one())
    assert tiers.sum(0, 60 * MINUTE)[0] == 60
    assert tiers.sum(55 * MINUTE, 60 * MINUTE)[0] == 5  # the first tier: exact to the minute
    assert tiers.sum(57 * MINUTE, 58 * MINUTE)[0] == 1
    assert tiers.sum(40 * MINUTE, 60 * MINUTE)[0] == 20  # starts on bucket edges: exact
    assert tiers.sum(42 * MINUTE, 60 * MINUTE)[0] == 20  # starts inside a 5-minute bucket: widened
    assert tiers.sum(3 * MINUTE, 4 * MINUTE)[0] == 20  # inside the oldest 20-minute bucket: widened
    assert tiers.expired == 0
    for minute in range(60, 90):  # half an hour later the oldest 20 minutes are past retention
        tiers.add(minute * MINUTE, one())
    assert tiers.expired == 20
    assert tiers.sum(0, 90 * MINUTE)[0] == 70


def test_a_late_write_for_an_evicted_bucket_goes_to_a_coarser_tier() -> None:
    tiers = CountTiers(LAYOUT, 3)
    tiers.add(30 * MINUTE, one())
    tiers.add(12 * MINUTE, one(2.0))  # its 1-minute slot holds a newer minute: filed 5-minute wide
    assert tiers.sum(10 * MINUTE, 15 * MINUTE)[0] == 2
    assert tiers.sum(0, 31 * MINUTE)[0] == 3


def test_dirty_buckets_restore_exactly() -> None:
    tiers = CountTiers(LAYOUT, 3)
    for minute in range(0, 50, 3):
        tiers.add(minute * MINUTE, one(minute))
    restored = CountTiers(LAYOUT, 3)
    for tier, slot, stamp, row in tiers.take_dirty():
        restored.load(tier, slot, stamp, row)
    assert not tiers.dirty
    for start in range(0, 50, 5):
        assert (restored.sum(start * MINUTE, 60 * MINUTE) == tiers.sum(start * MINUTE, 60 * MINUTE)).all()


def test_sketch_cells_merge_when_they_roll_up() -> None:
    tiers = SketchTiers(LAYOUT, SketchParams())
    for minute in range(30):
        cell = tiers.cell_for(minute * MINUTE)
        assert cell is not None
        cell.add([float(minute)], [f"{minute:032x}"], {}, {})
    starts = [start for start, _ in tiers.overlapping(0, 30 * MINUTE)]
    assert len(starts) == 5 + 4 + 1  # five minutes, four 5-minute buckets, one 20-minute bucket
    assert min(starts) == 0
    users = sum(cell.users.get_estimate() for _, cell in tiers.overlapping(0, 30 * MINUTE))
    assert round(users) == 30
