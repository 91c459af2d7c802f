"""Mergeable, serializable sketches for one series x time bucket (Apache DataSketches).

A `SketchCell` holds:

* ``users``: HyperLogLog (HLL_4, ``lg_k`` from config) of distinct users;
* ``impacted``: HyperLogLog of distinct users with at least one bad event;
* ``latency``: KLL quantile sketch (``kll_doubles``; ``kll_floats`` costs 12x per scalar update)
  of durations in milliseconds;
* ``top``: frequent-items sketch of bad events per impacted customer (pseudonyms only).

Cells merge (HLL union, KLL merge, frequent-items merge), so buckets roll up into coarser ones
and replicas can combine theirs; `SketchCell.to_bytes` / `from_bytes` use DataSketches' own
formats (HLLs in their updatable form, which keeps their internal order, so a restored cell
answers exactly as before: a union's estimate over sparse HLLs depends on coupon order). Empty
parts stay ``None`` until first used, which keeps quiet buckets small.

Merging KLL sketches is randomized (their compaction is), so latency quantiles of the same
window may differ between two queries by up to the stated rank error.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import datasketches as ds
import numpy as np
import numpy.typing as npt

from otel_impact.processors.impact_queries import Bounds

__all__ = ["SketchCell", "SketchMerger", "SketchParams"]

HLL_TYPE: Final = ds.tgt_hll_type.HLL_4
BOUND_STD_DEVS: Final = 2
"""HLL bounds are reported at 2 standard deviations (about 95%)."""

_HEADER = struct.Struct("<4I")


@dataclass(frozen=True)
class SketchParams:
    hll_lg_k: int = 12
    kll_k: int = 200
    top_lg_map: int = 7

    @property
    def kll_rank_error(self) -> float:
        """Normalized rank error of a single quantile, as DataSketches states it (about 1.3% at k=200)."""
        return float(ds.kll_doubles_sketch.get_normalized_rank_error(self.kll_k, False))

    @property
    def hll_relative_error(self) -> float:
        """HLL relative standard error at one standard deviation (about 1.6% at lg_k=12)."""
        return float(1.04 / (1 << self.hll_lg_k) ** 0.5)


class SketchCell:
    """The sketches of one series in one time bucket."""

    __slots__ = ("impacted", "latency", "params", "top", "users")

    def __init__(self, params: SketchParams) -> None:
        self.params = params
        self.users: Any = None
        self.impacted: Any = None
        self.latency: Any = None
        self.top: Any = None

    def add(
        self,
        durations_ms: npt.NDArray[np.float64] | list[float],
        users: Iterable[str],
        bad_users: Mapping[str, int],
        top_keys: Mapping[str, int],
    ) -> None:
        """Add one batch's events: their durations, the users seen, and the users with bad events.

        ``top_keys`` is what goes into the heavy-hitters sketch (pseudonyms, with bad-event counts).
        """
        if len(durations_ms):
            if self.latency is None:
                self.latency = ds.kll_doubles_sketch(self.params.kll_k)
            self.latency.update(np.asarray(durations_ms, dtype=np.float64))
        if users:
            if self.users is None:
                self.users = ds.hll_sketch(self.params.hll_lg_k, HLL_TYPE)
            update = self.users.update
            for user in users:
                update(user)
        if bad_users:
            if self.impacted is None:
                self.impacted = ds.hll_sketch(self.params.hll_lg_k, HLL_TYPE)
            update = self.impacted.update
            for user in bad_users:
                update(user)
        if top_keys:
            if self.top is None:
                self.top = ds.frequent_strings_sketch(self.params.top_lg_map)
            for key, count in top_keys.items():
                self.top.update(key, count)

    def merge(self, other: SketchCell) -> None:
        """Fold ``other`` into this cell (roll-up of buckets)."""
        self.users = _union_hll(self.params.hll_lg_k, self.users, other.users)
        self.impacted = _union_hll(self.params.hll_lg_k, self.impacted, other.impacted)
        if other.latency is not None:
            if self.latency is None:
                self.latency = ds.kll_doubles_sketch(self.params.kll_k)
            self.latency.merge(other.latency)
        if other.top is not None:
            if self.top is None:
                self.top = ds.frequent_strings_sketch(self.params.top_lg_map)
            self.top.merge(other.top)

    def to_bytes(self) -> bytes:
        parts = (
            b"" if self.users is None else self.users.serialize_updatable(),
            b"" if self.impacted is None else self.impacted.serialize_updatable(),
            b"" if self.latency is None else self.latency.serialize(),
            b"" if self.top is None else self.top.serialize(),
        )
        return _HEADER.pack(*(len(part) for part in parts)) + b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes, params: SketchParams) -> SketchCell:
        """Rebuild a cell; raises ``ValueError`` on bytes that are not a cell."""
        if len(data) < _HEADER.size:
            raise ValueError("sketch cell too short")
        lengths = _HEADER.unpack_from(data)
        if _HEADER.size + sum(lengths) != len(data):
            raise ValueError("sketch cell lengths do not add up")
        cell = cls(params)
        offset = _HEADER.size
        blobs = []
        for length in lengths:
            blobs.append(data[offset : offset + length])
            offset += length
        try:
            if blobs[0]:
                cell.users = ds.hll_sketch.deserialize(blobs[0])
            if blobs[1]:
                cell.impacted = ds.hll_sketch.deserialize(blobs[1])
            if blobs[2]:
                cell.latency = ds.kll_doubles_sketch.deserialize(blobs[2])
            if blobs[3]:
                cell.top = ds.frequent_strings_sketch.deserialize(blobs[3])
        except Exception as error:  # DataSketches raises RuntimeError/ValueError on bad input
            raise ValueError(f"sketch cell does not deserialize: {error}") from None
        return cell

    def approx_bytes(self) -> int:
        """Approximate memory held by the sketches (their updatable sizes)."""
        size = 0
        for hll in (self.users, self.impacted):
            if hll is not None:
                size += hll.get_updatable_serialization_bytes()
        if self.latency is not None:
            size += 16 + 8 * self.latency.num_retained
        if self.top is not None:
            size += self.top.get_serialized_size_bytes()
        return size


def _union_hll(lg_k: int, mine: Any, theirs: Any) -> Any:
    if theirs is None:
        return mine
    union = ds.hll_union(lg_k)
    if mine is not None:
        union.update(mine)
    union.update(theirs)
    return union.get_result(HLL_TYPE)


class SketchMerger:
    """Merges many cells for one answer (a window, a segment group) without touching them."""

    def __init__(self, params: SketchParams) -> None:
        self.params = params
        self._users = ds.hll_union(params.hll_lg_k)
        self._impacted = ds.hll_union(params.hll_lg_k)
        self._latency = ds.kll_doubles_sketch(params.kll_k)
        self._top = ds.frequent_strings_sketch(params.top_lg_map)
        self._any_users = self._any_impacted = False

    def add(self, cell: SketchCell) -> None:
        if cell.users is not None:
            self._users.update(cell.users)
            self._any_users = True
        if cell.impacted is not None:
            self._impacted.update(cell.impacted)
            self._any_impacted = True
        if cell.latency is not None:
            self._latency.merge(cell.latency)
        if cell.top is not None:
            self._top.merge(cell.top)

    def users(self) -> Bounds:
        return _bounds(self._users) if self._any_users else Bounds(0, 0, 0)

    def impacted(self) -> Bounds:
        return _bounds(self._impacted) if self._any_impacted else Bounds(0, 0, 0)

    def quantiles_ms(self, ranks: tuple[float, ...]) -> list[float | None]:
        if self._latency.is_empty():
            return [None for _ in ranks]
        return [float(self._latency.get_quantile(rank)) for rank in ranks]

    def top(self, limit: int) -> list[tuple[str, int, int, int]]:
        """Up to ``limit`` heaviest keys as ``(key, estimate, lower, upper)``, no false negatives."""
        if self._top.is_empty():
            return []
        items = self._top.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)
        return [(str(key), int(est), int(low), int(high)) for key, est, low, high in items[:limit]]

    @property
    def top_error_bound(self) -> int:
        """Max error of any heavy-hitter count (the sketch's epsilon x total weight)."""
        return 0 if self._top.is_empty() else int(self._top.epsilon * self._top.total_weight + 0.5)


def _bounds(union: Any) -> Bounds:
    return Bounds(
        float(union.get_estimate()),
        float(union.get_lower_bound(BOUND_STD_DEVS)),
        float(union.get_upper_bound(BOUND_STD_DEVS)),
    )
