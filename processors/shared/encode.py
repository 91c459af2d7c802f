"""A task's deltas as one flush: the keys it touches and the operations the apply script runs.

`FlushEncoder.encode` turns a `TaskDelta` into a `TaskFlush`: for every series, its count row
is added to its bucket in every count tier, its latency log-buckets, distinct users, impacted
users and top customers to its bucket in every sketch tier, and the task's per-minute volume
and counters are added. Rows of minutes that share a coarser bucket are summed first, so a
flush sends one increment per (bucket, field). Every key gets an absolute expiry (the end of
its bucket plus its tier's retention), the same whichever replica writes it.

Distinct users are sent once per (series, bucket of the finest sketch tier), with the list of
HyperLogLogs to add them to (that bucket's and the coarser tiers', the series' and the
task-wide ones): a user crosses the network once, and the script ``PFADD``s the same list into
each. (Merging the finest HyperLogLog into the others with ``PFMERGE`` instead was measured:
about a millisecond of Redis CPU per merge, forty times the cost of the adds.)

The operations travel as one JSON document (`OPS` lists them) that the Lua script in ``flush``
decodes with ``cjson``: one argument per flush instead of one per value keeps redis-py's
per-argument encoding off the writer's thread. A task's deltas that make more than
`MAX_FLUSH_WEIGHT` operations and members are split into several flushes, each with its own
sequence number and applied exactly once: a script runs atomically and blocks Redis while it
runs, so no replica's flush may hold it for long (a few milliseconds at this size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

from otel_impact.processors.durations import HOUR_NS, MINUTE_NS
from otel_impact.processors.sli.aggregates import COL_REVENUE
from otel_impact.processors.sli.config import SliConfig
from otel_impact.processors.sli.deltas import SeriesDelta, TaskDelta

from .cover import SharedTier, shared_tiers
from .keys import ALL_SERIES, SharedKeys, TaskKeys, series_id

__all__ = ["MAX_FLUSH_WEIGHT", "OPS", "TOP_CAP", "FlushEncoder", "SharedLayout", "TaskFlush"]

MAX_FLUSH_WEIGHT: Final = 20_000
"""Operations plus members (users of a PFADD, customers of a ZINCRBY) in one flush at most."""
TOP_CAP: Final = 100
"""Customers kept per (series, bucket) in the top-customers sorted sets; the rest are trimmed
and the largest trimmed count is kept as that bucket's error (space-saving)."""
ZERO_FIELD: Final = "z"
"""The latency field of zero durations."""

OPS: Final = {
    "H": "[H, key, field, integer]: HINCRBY",
    "F": "[F, key, field, float as text]: HINCRBYFLOAT",
    "S": "[S, key, field, value]: HSETNX",
    "P": "[P, [key, ...], [member, ...]]: PFADD the members into each key",
    "Z": "[Z, key, trimmed key, sid, {member: integer}]: ZINCRBY, a new member entering at the trimmed count",
    "T": "[T, key, trimmed key, sid, cap]: trim to cap, keeping the largest trimmed count in trimmed[sid]",
    "E": "[E, key, unix ms]: PEXPIREAT",
}
"""The apply script's operations; keys are 1-based indexes into the script's KEYS."""


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
    ops: list[list[Any]] = field(default_factory=list)
    document: bytes = b""
    """``ops`` as JSON (set by `FlushEncoder.encode`; ``ops`` is then emptied)."""

    @property
    def bytes(self) -> int:
        return len(self.document) + sum(map(len, self.keys)) + 64 * len(self.keys)


class _Ops:
    def __init__(self, flush: TaskFlush) -> None:
        self.flush = flush
        self._index: dict[str, int] = {}

    def key(self, name: str) -> int:
        index = self._index.get(name)
        if index is None:
            self.flush.keys.append(name)
            index = self._index[name] = len(self.flush.keys)
        return index

    def add(self, code: str, key: str, *values: Any) -> None:
        self.flush.ops.append([code, self.key(key), *values])


class FlushEncoder:
    """Encodes task deltas into flushes for one replica (sequence numbers per task)."""

    def __init__(self, keys: SharedKeys, layout: SharedLayout) -> None:
        self.keys = keys
        self.layout = layout
        self._sequences: dict[str, int] = {}

    def encode(self, task: str, delta: TaskDelta) -> list[TaskFlush]:
        """``delta`` as flushes of at most `MAX_FLUSH_WEIGHT` each, numbered in order (the events
        are counted on the first)."""
        task_keys = self.keys.task(task)
        flush = TaskFlush(task, 0, delta.events, [task_keys.applied])
        ops = _Ops(flush)
        volume: dict[int, int] = {}
        for values, minutes in delta.series.items():
            sid = series_id(values)
            ops.add("S", task_keys.series, sid, orjson.dumps(list(values)).decode())
            self._counts(ops, task_keys, sid, minutes)
            self._sketches(ops, task_keys, sid, minutes)
            for minute, series_delta in minutes.items():
                volume[minute] = volume.get(minute, 0) + series_delta.events
        expiring: dict[str, int] = {}
        for minute, events in volume.items():
            hour = minute * MINUTE_NS // HOUR_NS
            key = task_keys.volume(hour)
            ops.add("H", key, str(minute), events)
            expiring[key] = ((hour + 1) * HOUR_NS + self.layout.volume_keep_ns) // 1_000_000
        for counter, increment in delta.counters.items():
            ops.add("H", task_keys.meta, counter, increment)
        for key, at_ms in expiring.items():
            ops.add("E", key, at_ms)
        flushes = []
        for number, (keys, chunk) in enumerate(_split(flush.keys, flush.ops)):
            sequence = self._sequences.get(task, 0) + 1
            self._sequences[task] = sequence
            events = delta.events if number == 0 else 0
            flushes.append(TaskFlush(task, sequence, events, keys, document=orjson.dumps(chunk)))
        return flushes

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
                        ops.add("H", key, f"{sid}:{column}", int(value))
                ops.add("E", key, tier.expires_at_ms(bucket))

    def _sketches(self, ops: _Ops, task_keys: TaskKeys, sid: str, minutes: dict[int, SeriesDelta]) -> None:
        tiers = self.layout.sketch_tiers
        finest = tiers[0]
        merged_finest: dict[int, SeriesDelta] = {}
        for minute, series_delta in minutes.items():
            bucket = finest.bucket(minute * MINUTE_NS)
            into = merged_finest.get(bucket)
            if into is None:
                merged_finest[bucket] = _copy(series_delta)
            else:
                _merge(into, series_delta)
        for fine_bucket, series_delta in merged_finest.items():
            at_ns = fine_bucket * finest.width_ns
            for kind, members in (("users", series_delta.users), ("impacted", series_delta.bad_users)):
                if not members:
                    continue
                targets: list[int] = []
                expiries: list[tuple[str, int]] = []
                for tier_index, tier in enumerate(tiers):
                    bucket = tier.bucket(at_ns)
                    for target in (sid, ALL_SERIES):
                        key = getattr(task_keys, kind)(tier_index, bucket, target)
                        targets.append(ops.key(key))
                        expiries.append((key, tier.expires_at_ms(bucket)))
                ops.flush.ops.append(["P", targets, sorted(members)])
                for key, at_ms in expiries:
                    ops.add("E", key, at_ms)
            expo = series_delta.expo()
            for tier_index, tier in enumerate(tiers):
                bucket = tier.bucket(at_ns)
                expires = tier.expires_at_ms(bucket)
                latency = task_keys.latency(tier_index, bucket)
                for index, count in expo.items():
                    ops.add("H", latency, f"{sid}:{index}", count)
                if series_delta.zero_durations:
                    ops.add("H", latency, f"{sid}:{ZERO_FIELD}", series_delta.zero_durations)
                ops.add("E", latency, expires)
                if series_delta.top:
                    top = task_keys.top(tier_index, bucket, sid)
                    trimmed = task_keys.top_trimmed(tier_index, bucket)
                    ops.add("Z", top, ops.key(trimmed), sid, series_delta.top)
                    ops.add("T", top, ops.key(trimmed), sid, TOP_CAP)
                    ops.add("E", top, expires)
                    ops.add("E", trimmed, expires)


def _weight(op: list[Any]) -> int:
    if op[0] == "P":
        return 1 + len(op[2])
    if op[0] == "Z":
        return 1 + len(op[4])
    return 1


def _split(keys: list[str], ops: list[list[Any]]) -> list[tuple[list[str], list[list[Any]]]]:
    """The operations in chunks of at most `MAX_FLUSH_WEIGHT`, each with its own key list (the
    applied hash first) and its key indexes renumbered. A PFADD with more members than fit is
    split (adding is idempotent); every other operation stays whole."""
    chunks: list[tuple[list[str], list[list[Any]]]] = []
    current: list[list[Any]] = []
    weight = 0
    pieces: list[list[Any]] = []
    for op in ops:
        if op[0] == "P" and len(op[2]) > MAX_FLUSH_WEIGHT // 2:
            members = op[2]
            step = MAX_FLUSH_WEIGHT // 2
            pieces.extend(["P", op[1], members[i : i + step]] for i in range(0, len(members), step))
        else:
            pieces.append(op)
    for op in pieces:
        op_weight = _weight(op)
        if current and weight + op_weight > MAX_FLUSH_WEIGHT:
            chunks.append(_renumber(keys, current))
            current, weight = [], 0
        current.append(op)
        weight += op_weight
    if current or not chunks:
        chunks.append(_renumber(keys, current))
    return chunks


def _renumber(keys: list[str], ops: list[list[Any]]) -> tuple[list[str], list[list[Any]]]:
    index: dict[int, int] = {1: 1}
    chunk_keys = [keys[0]]

    def local(old: int) -> int:
        new = index.get(old)
        if new is None:
            chunk_keys.append(keys[old - 1])
            new = index[old] = len(chunk_keys)
        return new

    renumbered = []
    for op in ops:
        op = list(op)
        if op[0] == "P":
            op[1] = [local(target) for target in op[1]]
        else:
            op[1] = local(op[1])
            if op[0] in ("Z", "T"):
                op[2] = local(op[2])
        renumbered.append(op)
    return chunk_keys, renumbered


def _copy(delta: SeriesDelta) -> SeriesDelta:
    return SeriesDelta(
        delta.row.copy(),
        list(delta.expo_parts),
        delta.zero_durations,
        set(delta.users),
        set(delta.bad_users),
        dict(delta.top),
    )


def _merge(into: SeriesDelta, delta: SeriesDelta) -> None:
    into.row += delta.row
    into.expo_parts.extend(delta.expo_parts)
    into.zero_durations += delta.zero_durations
    into.users |= delta.users
    into.bad_users |= delta.bad_users
    for member, count in delta.top.items():
        into.top[member] = into.top.get(member, 0) + count
