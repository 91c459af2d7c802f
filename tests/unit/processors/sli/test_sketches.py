"""Sketch accuracy against theory, merging (replicas, roll-ups) and serialization."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from otel_impact.processors.sli.sketches import SketchCell, SketchMerger, SketchParams

PARAMS = SketchParams()


def pseudonyms(start: int, stop: int) -> list[str]:
    prefix = hashlib.sha256(b"seed").hexdigest()[:16]
    return [f"{prefix}{i:016x}" for i in range(start, stop)]


@pytest.mark.parametrize("distinct", [1_000, 100_000, 1_000_000])
def test_hll_error_is_within_three_sigma_of_theory(distinct: int) -> None:
    cell = SketchCell(PARAMS)
    cell.add([], pseudonyms(0, distinct), {}, {})
    merger = SketchMerger(PARAMS)
    merger.add(cell)
    bounds = merger.users()
    sigma = PARAMS.hll_relative_error * distinct  # 1.04 / sqrt(2**lg_k) of the count
    assert abs(bounds.estimate - distinct) <= 3 * sigma, (distinct, bounds.estimate)
    assert bounds.lower <= distinct <= bounds.upper
    assert bounds.upper - bounds.lower <= 4 * 1.1 * sigma + 2  # the stated bounds are about 2 sigma each side


def test_cells_merge_like_one_sketch_and_survive_serialization() -> None:
    """Two replicas (or two buckets) that saw overlapping users merge into the union's count."""
    a, b = SketchCell(PARAMS), SketchCell(PARAMS)
    a.add([10.0] * 1000, pseudonyms(0, 60_000), {u: 1 for u in pseudonyms(0, 100)}, {"f" * 32: 7})
    b.add([1000.0] * 1000, pseudonyms(40_000, 100_000), {u: 1 for u in pseudonyms(50, 150)}, {"f" * 32: 5, "e" * 32: 1})
    restored = SketchCell.from_bytes(b.to_bytes(), PARAMS)
    merger = SketchMerger(PARAMS)
    merger.add(a)
    merger.add(restored)
    users = merger.users()
    assert abs(users.estimate - 100_000) <= 3 * PARAMS.hll_relative_error * 100_000
    assert merger.impacted().estimate == pytest.approx(150, abs=2)
    p50, p95, p99 = merger.quantiles_ms((0.5, 0.95, 0.99))
    assert p50 is not None and p99 == 1000.0 and p95 == 1000.0
    assert merger.top(1)[0][:2] == ("f" * 32, 12)

    rolled = SketchCell(PARAMS)
    rolled.merge(a)
    rolled.merge(restored)
    again = SketchMerger(PARAMS)
    again.add(rolled)
    assert again.users() == users and again.impacted() == merger.impacted()


def test_kll_quantiles_are_within_the_stated_rank_error() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(mean=4.0, sigma=1.0, size=200_000)
    cells = [SketchCell(PARAMS) for _ in range(20)]
    for index, chunk in enumerate(np.array_split(values, 20)):
        cells[index].add(chunk.tolist(), [], {}, {})
    merger = SketchMerger(PARAMS)
    for cell in cells:
        merger.add(SketchCell.from_bytes(cell.to_bytes(), PARAMS))
    ordered = np.sort(values)
    for rank, value in zip((0.5, 0.95, 0.99), merger.quantiles_ms((0.5, 0.95, 0.99)), strict=True):
        assert value is not None
        true_rank = np.searchsorted(ordered, value) / ordered.size
        assert abs(true_rank - rank) <= PARAMS.kll_rank_error


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 8, b"\x01\x00\x00\x00" + b"\x00" * 12 + b"x", b"\x08\x00\x00\x00" + b"\x00" * 12 + b"garbage!"],
)
def test_bad_bytes_are_refused_with_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="sketch cell"):
        SketchCell.from_bytes(data, PARAMS)
