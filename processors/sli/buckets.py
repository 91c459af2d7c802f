"""Time buckets in resolution tiers, rolled up as they age.

Each series keeps its data in a few tiers, e.g. (defaults for counts) 1-minute buckets for 6
hours, 10-minute buckets for 3 days and 1-hour buckets for 35 days. A tier is a ring of slots:
bucket *i* lives in slot ``i % slots``. Writing a newer bucket into an occupied slot first
*moves* the old bucket into the next tier (counts add, sketches merge), so every event is held
in exactly one bucket at any time and memory per series is fixed by the layout. A bucket too
old for the last tier is dropped (past retention).

A query over ``[start, end)`` sums every bucket that overlaps it. Inside the first tier that
is exact to the minute; where the window's start lies in an older tier, the window is widened
to that tier's bucket edge (e.g. to the hour for a 30-day window): never narrowed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from otel_impact.processors.durations import SECOND_NS

from .config import TierConfig
from .sketches import SketchCell, SketchParams

__all__ = ["CountTiers", "Layout", "SketchTiers"]

Row = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Layout:
    """Bucket widths (ns) and slot counts, fine to coarse."""

    widths_ns: tuple[int, ...]
    slots: tuple[int, ...]

    @classmethod
    def from_tiers(cls, tiers: tuple[TierConfig, ...]) -> Layout:
        return cls(
            tuple(tier.width_s * SECOND_NS for tier in tiers),
            tuple(tier.keep_s // tier.width_s for tier in tiers),
        )

    @property
    def retention_ns(self) -> int:
        return self.widths_ns[-1] * self.slots[-1]

    def coarser_index(self, tier: int, index: int) -> int:
        """The index in tier ``tier + 1`` of bucket ``index`` of tier ``tier``."""
        return index * self.widths_ns[tier] // self.widths_ns[tier + 1]


class CountTiers:
    """Exact per-bucket counts of one series: a row of float64 columns per bucket.

    Columns are the task's count row (``aggregates.row_width``). float64 holds counts exactly up
    to 2**53. ``saved_columns_accepted`` are the row widths `load` also accepts from older
    checkpoints (the columns they lack start at zero).
    """

    __slots__ = ("accepted", "columns", "dirty", "expired", "layout", "stamps", "values")

    def __init__(self, layout: Layout, columns: int, *, saved_columns_accepted: tuple[int, ...] = ()) -> None:
        self.layout = layout
        self.columns = columns
        self.accepted = frozenset((columns, *saved_columns_accepted))
        self.stamps: list[npt.NDArray[np.int64] | None] = [None] * len(layout.slots)
        self.values: list[npt.NDArray[np.float64] | None] = [None] * len(layout.slots)
        self.dirty: set[tuple[int, int]] = set()
        self.expired = 0.0
        """Events that fell past retention (total column), for accounting."""

    def _tier(self, tier: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        stamps = self.stamps[tier]
        values = self.values[tier]
        if stamps is None or values is None:
            stamps = self.stamps[tier] = np.full(self.layout.slots[tier], -1, dtype=np.int64)
            values = self.values[tier] = np.zeros((self.layout.slots[tier], self.columns), dtype=np.float64)
        return stamps, values

    def add(self, start_ns: int, row: Row) -> None:
        """Add ``row`` to the bucket holding time ``start_ns``."""
        self._place(0, start_ns // self.layout.widths_ns[0], row)

    def _place(self, tier: int, index: int, row: Row) -> None:
        layout = self.layout
        while tier < len(layout.slots):
            stamps, values = self._tier(tier)
            slot = index % layout.slots[tier]
            current = int(stamps[slot])
            if current == index:
                bucket = values[slot]
                bucket += row  # in place: ``values[slot] += row`` would also copy the row back
                self.dirty.add((tier, slot))
                return
            if current < index:
                if current >= 0 and tier + 1 < len(layout.slots):
                    self._place(tier + 1, layout.coarser_index(tier, current), values[slot].copy())
                elif current >= 0:
                    self.expired += float(values[slot][0])
                stamps[slot] = index
                values[slot] = row
                self.dirty.add((tier, slot))
                return
            if tier + 1 < len(layout.slots):
                index = layout.coarser_index(tier, index)
            tier += 1
        self.expired += float(row[0])

    def sum(self, start_ns: int, end_ns: int) -> Row:
        """Column sums over every bucket overlapping ``[start_ns, end_ns)``."""
        total = np.zeros(self.columns, dtype=np.float64)
        for tier, width in enumerate(self.layout.widths_ns):
            stamps = self.stamps[tier]
            values = self.values[tier]
            if stamps is None or values is None:
                continue
            low = start_ns // width
            high = -(-end_ns // width)
            mask = (stamps >= low) & (stamps < high)
            if mask.any():
                total += values[mask].sum(axis=0)
        return total

    def earliest_start_ns(self, start_ns: int, end_ns: int) -> int:
        """Where the widened window really starts: the earliest overlapping bucket's start."""
        earliest = start_ns
        for tier, width in enumerate(self.layout.widths_ns):
            stamps = self.stamps[tier]
            if stamps is None:
                continue
            low = start_ns // width
            high = -(-end_ns // width)
            inside = stamps[(stamps >= low) & (stamps < high)]
            if inside.size:
                earliest = min(earliest, int(inside.min()) * width)
        return earliest

    def take_dirty(self) -> list[tuple[int, int, int, bytes]]:
        """``(tier, slot, stamp, row bytes)`` of buckets changed since the last call."""
        out = []
        for tier, slot in sorted(self.dirty):
            stamps, values = self._tier(tier)
            out.append((tier, slot, int(stamps[slot]), values[slot].tobytes()))
        self.dirty.clear()
        return out

    def load(self, tier: int, slot: int, stamp: int, row: bytes) -> None:
        """Restore one bucket from a checkpoint; raises ``ValueError`` if it does not fit."""
        if not 0 <= tier < len(self.layout.slots) or not 0 <= slot < self.layout.slots[tier]:
            raise ValueError(f"bucket ({tier}, {slot}) is outside the layout")
        if len(row) % 8 or len(row) // 8 not in self.accepted or stamp % self.layout.slots[tier] != slot:
            raise ValueError(f"bucket ({tier}, {slot}) has the wrong shape")
        stamps, values = self._tier(tier)
        stamps[slot] = stamp
        saved = np.frombuffer(row, dtype=np.float64)
        values[slot] = 0.0
        values[slot][: saved.size] = saved  # a row saved before the attribution columns: they start at 0

    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.stamps if a is not None) + sum(a.nbytes for a in self.values if a is not None)


class SketchTiers:
    """The sketch cells of one series, per bucket, in tiers like `CountTiers`."""

    __slots__ = ("cells", "dirty", "layout", "params", "stamps")

    def __init__(self, layout: Layout, params: SketchParams) -> None:
        self.layout = layout
        self.params = params
        self.stamps: list[list[int]] = [[] for _ in layout.slots]
        self.cells: list[list[SketchCell | None]] = [[] for _ in layout.slots]
        self.dirty: set[tuple[int, int]] = set()

    def _tier(self, tier: int) -> tuple[list[int], list[SketchCell | None]]:
        if not self.stamps[tier]:
            self.stamps[tier] = [-1] * self.layout.slots[tier]
            self.cells[tier] = [None] * self.layout.slots[tier]
        return self.stamps[tier], self.cells[tier]

    def cell_for(self, start_ns: int) -> SketchCell | None:
        """The cell to update for time ``start_ns`` (``None`` only if it is past retention)."""
        return self._cell(0, start_ns // self.layout.widths_ns[0])

    def _cell(self, tier: int, index: int) -> SketchCell | None:
        layout = self.layout
        while tier < len(layout.slots):
            stamps, cells = self._tier(tier)
            slot = index % layout.slots[tier]
            current = stamps[slot]
            if current == index:
                self.dirty.add((tier, slot))
                return cells[slot]
            if current < index:
                old = cells[slot]
                if old is not None and tier + 1 < len(layout.slots):
                    target = self._cell(tier + 1, layout.coarser_index(tier, current))
                    if target is not None:
                        target.merge(old)
                cell = SketchCell(self.params)
                stamps[slot] = index
                cells[slot] = cell
                self.dirty.add((tier, slot))
                return cell
            if tier + 1 < len(layout.slots):
                index = layout.coarser_index(tier, index)
            tier += 1
        return None

    def overlapping(self, start_ns: int, end_ns: int) -> Iterator[tuple[int, SketchCell]]:
        """``(bucket start ns, cell)`` for every bucket overlapping ``[start_ns, end_ns)``."""
        for tier, width in enumerate(self.layout.widths_ns):
            low = start_ns // width
            high = -(-end_ns // width)
            for stamp, cell in zip(self.stamps[tier], self.cells[tier], strict=True):
                if cell is not None and low <= stamp < high:
                    yield stamp * width, cell

    def take_dirty(self) -> list[tuple[int, int, int, bytes]]:
        out = []
        for tier, slot in sorted(self.dirty):
            cell = self.cells[tier][slot]
            if cell is not None:
                out.append((tier, slot, self.stamps[tier][slot], cell.to_bytes()))
        self.dirty.clear()
        return out

    def load(self, tier: int, slot: int, stamp: int, data: bytes) -> None:
        if not 0 <= tier < len(self.layout.slots) or not 0 <= slot < self.layout.slots[tier]:
            raise ValueError(f"sketch bucket ({tier}, {slot}) is outside the layout")
        if stamp % self.layout.slots[tier] != slot:
            raise ValueError(f"sketch bucket ({tier}, {slot}) has the wrong stamp")
        stamps, cells = self._tier(tier)
        stamps[slot] = stamp
        cells[slot] = SketchCell.from_bytes(data, self.params)

    def approx_bytes(self) -> int:
        size = 0
        for tier in range(len(self.layout.slots)):
            size += 16 * len(self.stamps[tier])
            size += sum(cell.approx_bytes() + 72 for cell in self.cells[tier] if cell is not None)
        return size
