"""A task's deltas as one flush: the keys it touches and the operations the apply script runs.

`FlushEncoder.encode` turns a `TaskDelta` into a `TaskFlush`: for every series, its count row
is added to its bucket in every count tier, its latency log-buckets, distinct users, impacted
users and top customers to its bucket in every sketch tier, and the task's per-minute volume
and counters are added. Rows of minutes that share a coarser bucket are summed first, so a
flush sends one increment per (bucket, field). Every key gets an absolute expiry (the end of
its bucket plus its tier's retention), the same whichever replica writes it.

The operations are a flat list of strings the Lua script in ``flush`` reads (see `OPS`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from otel_impact.processors.durations import HOUR_NS, MINUTE_NS
from otel_impact.processors.sli.aggregates import COL_REVENUE
from otel_impact.processors.sli.config import SliConfig
from otel_impact.processors.sli.deltas import SeriesDelta, TaskDelta

from .cover import SharedTier, shared_tiers
from .keys import ALL_SERIES, SharedKeys, TaskKeys, series_id

__all__ = ["OPS", "TOP_CAP", "FlushEncoder", "SharedLayout", "TaskFlush"]

TOP_CAP: Final = 100
"""Customers kept per (series, bucket) in the top-customers sorted sets; the rest are trimmed
and the largest trimmed count is kept as that bucket's error (space-saving)."""
PFADD_CHUNK: Final = 1000
"""Members per PFADD operation (a Lua ``unpack`` has a stack limit)."""
ZERO_FIELD: Final = "z"
"""The latency field of zero durations."""

OPS: Final = {
    "H": "HINCRBY key field integer",
    "F": "HINCRBYFLOAT key field float",
    "S": "HSETNX key field value",
    "P": "PFADD key count member...",
    "Z": "ZINCRBY key (entering at the bucket's trimmed count) trimmed-key sid member integer",
    "T": "trim key to TOP_CAP, keep the largest trimmed count in trimmed-key[sid]",
    "E": "PEXPIREAT key unix-ms",
}
"""The apply script's operations (each: code, key index into KEYS, arguments)."""


@dataclass(frozen=True)
class SharedLayout:
    """The shared state's tiers, derived from the SLI config (every replica derives the same)."""

    count_tiers: tuple[SharedTier, ...]
    sketch_tiers: tuple[SharedTier, ...]
    volume_keep_ns: int

    @classmethod
    def of(cls, config: SliConfig) -> SharedLayout:
        count = shared_tiers(config.count_tiers, add_day=True)
        return cls(count, shared_tiers(config.sketch_tiers, add_day=False), count[0].keep_ns)


@dataclass
class TaskFlush:
    """One task's flush: ``keys[0]`` is the task's applied-sequence hash; ``args`` the operations."""

    task: str
    sequence: int
    events: int
    keys: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    bytes: int = 0


class _Ops:
    def __init__(self, flush: TaskFlush) -> None:
        self.flush = flush
        self._index: dict[str, int] = {}

    def key(self, name: str) -> str:
        index = self._index.get(name)
        if index is None:
            self.flush.keys.append(name)
            index = self._index[name] = len(self.flush.keys)
        return str(index)

    def add(self, code: str, key: str, *values: str) -> None:
        self.flush.args.extend((code, self.key(key), *values))


class FlushEncoder:
    """Encodes task deltas into flushes for one replica (sequence numbers per task)."""

    def __init__(self, keys: SharedKeys, layout: SharedLayout) -> None:
        self.keys = keys
        self.layout = layout
        self._sequences: dict[str, int] = {}

    def encode(self, task: str, delta: TaskDelta) -> TaskFlush:
        sequence = self._sequences.get(task, 0) + 1
        self._sequences[task] = sequence
        task_keys = self.keys.task(task)
        flush = TaskFlush(task, sequence, delta.events, [task_keys.applied])
        ops = _Ops(flush)
        volume: dict[int, int] = {}
        for values, minutes in delta.series.items():
            sid = series_id(values)
            ops.add("S", task_keys.series, sid, json.dumps(list(values), ensure_ascii=False))
            self._counts(ops, task_keys, sid, minutes)
            self._sketches(ops, task_keys, sid, minutes)
            for minute, series_delta in minutes.items():
                volume[minute] = volume.get(minute, 0) + series_delta.events
        expiring: dict[str, int] = {}
        for minute, events in volume.items():
            hour = minute * MINUTE_NS // HOUR_NS
            key = task_keys.volume(hour)
            ops.add("H", key, str(minute), str(events))
            expiring[key] = ((hour + 1) * HOUR_NS + self.layout.volume_keep_ns) // 1_000_000
        for counter, increment in delta.counters.items():
            ops.add("H", task_keys.meta, counter, str(increment))
        for key, at_ms in expiring.items():
            ops.add("E", key, str(at_ms))
        flush.bytes = 64 * len(flush.keys) + sum(len(arg) + 8 for arg in flush.args) + sum(map(len, flush.keys))
        return flush

    def _counts(self, ops: _Ops, task_keys: TaskKeys, sid: str, minutes: dict[int, SeriesDelta]) -> None:
        for tier_index, tier in enumerate(self.layout.count_tiers):
            rows: dict[int, npt.NDArray[np.float64]] = {}
            for minute, series_delta in minutes.items():
                bucket = tier.bucket(minute * MINUTE_NS)
                row = rows.get(bucket)
                rows[bucket] = series_delta.row.copy() if row is None else row + series_delta.row
            for bucket, row in rows.items():
                key = task_keys.counts(tier_index, bucket)
                for column, value in enumerate(row.tolist()):
                    if not value:
                        continue
                    if column == COL_REVENUE:
                        ops.add("F", key, f"{sid}:{column}", repr(float(value)))
                    else:
                        ops.add("H", key, f"{sid}:{column}", str(int(value)))
                ops.add("E", key, str(tier.expires_at_ms(bucket)))

    def _sketches(self, ops: _Ops, task_keys: TaskKeys, sid: str, minutes: dict[int, SeriesDelta]) -> None:
        for tier_index, tier in enumerate(self.layout.sketch_tiers):
            merged: dict[int, SeriesDelta] = {}
            for minute, series_delta in minutes.items():
                bucket = tier.bucket(minute * MINUTE_NS)
                into = merged.get(bucket)
                if into is None:
                    merged[bucket] = _copy(series_delta)
                else:
                    _merge(into, series_delta)
            for bucket, series_delta in merged.items():
                expires = str(tier.expires_at_ms(bucket))
                latency = task_keys.latency(tier_index, bucket)
                for index, count in series_delta.expo.items():
                    ops.add("H", latency, f"{sid}:{index}", str(count))
                if series_delta.zero_durations:
                    ops.add("H", latency, f"{sid}:{ZERO_FIELD}", str(series_delta.zero_durations))
                ops.add("E", latency, expires)
                for target in (sid, ALL_SERIES):
                    _pfadd(ops, task_keys.users(tier_index, bucket, target), series_delta.users, expires)
                    _pfadd(ops, task_keys.impacted(tier_index, bucket, target), series_delta.bad_users, expires)
                if series_delta.top:
                    top = task_keys.top(tier_index, bucket, sid)
                    trimmed = task_keys.top_trimmed(tier_index, bucket)
                    trimmed_index = ops.key(trimmed)
                    for member, count in series_delta.top.items():
                        ops.add("Z", top, trimmed_index, sid, member, str(count))
                    ops.add("T", top, trimmed_index, sid, str(TOP_CAP))
                    ops.add("E", top, expires)
                    ops.add("E", trimmed, expires)


def _pfadd(ops: _Ops, key: str, members: Iterable[str], expires: str) -> None:
    listed = list(members)
    if not listed:
        return
    for start in range(0, len(listed), PFADD_CHUNK):
        chunk = listed[start : start + PFADD_CHUNK]
        ops.add("P", key, str(len(chunk)), *chunk)
    ops.add("E", key, expires)


def _copy(delta: SeriesDelta) -> SeriesDelta:
    return SeriesDelta(
        delta.row.copy(),
        dict(delta.expo),
        delta.zero_durations,
        set(delta.users),
        set(delta.bad_users),
        dict(delta.top),
    )


def _merge(into: SeriesDelta, delta: SeriesDelta) -> None:
    into.row += delta.row
    for index, count in delta.expo.items():
        into.expo[index] = into.expo.get(index, 0) + count
    into.zero_durations += delta.zero_durations
    into.users |= delta.users
    into.bad_users |= delta.bad_users
    for member, count in delta.top.items():
        into.top[member] = into.top.get(member, 0) + count
