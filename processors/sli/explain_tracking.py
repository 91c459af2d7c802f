"""Explain tracking: per (attribute, value) counts of failing and passing task events, in time tiers.

Two halves, joined by `ExplainDelta` (plain data, pickled from analysis workers like the rest of
an `AnalysisResult`):

* `ExplainCollector` runs with the analyzer. The hot loop only appends ``(task, minute, bad, raw
  user, span attributes, resource pairs)`` for every failing event and for passing events kept at
  ``passing_sample_rate``; `ExplainCollector.resource` is asked once per ResourceSpans (memoised).
  Once per analysed result, `ExplainCollector.fold` reads the candidate attributes of the kept
  events (undecoded bytes, decoded once per distinct value) into one `ExplainDelta` per (task,
  minute); event totals come from the analyzer's pending groups, so unsampled passing events cost
  the hot loop nothing but one random draw.
* `ExplainTracking` lives in the `SliState` and folds deltas into one `TaskExplain` per task:
  buckets in the *sketch* tiers (1-minute buckets for the last hour, then hourly, then daily:
  windows of 5m to 35d), each holding failing and sampled-passing counts per value column, a
  small distinct-user sketch of the failing events per column (k minimum hashes), and a
  bottom-k sample of events per outcome for pairs of attributes (mergeable: an event's priority
  is a uniform draw, and a bucket keeps the ``pair_sample`` lowest).

Candidates: the configured dimensions' attributes and flag variants (``flag:<name>``, from
``impact.feature_flags``), ``sli.explain.attributes``, `DISCOVERED_CANDIDATES`, and, with
``auto_discover``, other attributes found on kept events whose values stay under
``max_values_per_key`` (at most ``max_auto_keys`` of them; a key that exceeds the cap is
rejected for good). Memory per task is bounded: columns by ``max_values_per_task`` (values past
it are dropped and counted), users by `USER_SKETCH_K` per column, samples by ``pair_sample``.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from otel_impact._attributes import TASK_NAME, TASK_OUTCOME, TASK_ROOT, TASK_VALUE
from otel_impact.processors.durations import MINUTE_NS
from otel_impact.proto import view

from .buckets import Layout
from .config import SliConfig
from .explain_config import DISCOVERED_CANDIDATES, ExplainConfig
from .explain_delta import ExplainDelta, Pair, merge_deltas
from .segments import FEATURE_FLAGS, MAX_VALUE_LENGTH

__all__ = [
    "NO_PAIRS",
    "OTHER",
    "USER_SKETCH_K",
    "ExplainBucket",
    "ExplainCollector",
    "ExplainDelta",
    "ExplainTracking",
    "Pair",
    "TaskExplain",
    "WindowCounts",
    "merge_deltas",
]

OTHER: Final = "(other)"
"""The value column taking a key's values past ``max_values_per_key`` (never reported)."""
USER_SKETCH_K: Final = 32
"""Distinct-user sketch size per column: exact up to this many users, estimated beyond."""
FLAG_PREFIX: Final = "flag:"
_MAX_RAW_VALUE: Final = MAX_VALUE_LENGTH + 8
"""Raw values longer than this are not candidates (an AnyValue header plus a label's length)."""
_MEMO_LIMIT: Final = 8192
_REJECTED_LIMIT: Final = 1024
_DISCOVER_EVERY: Final = 8
"""Kept events between two looks for new attribute keys (discovery reads every key of a span)."""
_NEVER: Final = frozenset({TASK_NAME, TASK_ROOT, TASK_OUTCOME, TASK_VALUE, FEATURE_FLAGS})

NO_PAIRS: Final[tuple[tuple[str, bytes], ...]] = ()
"""A resource without candidate values."""
Event = tuple[Any, int, bool, Any, Any, tuple[tuple[str, bytes], ...]]
"""What the hot loop appends: (task state, minute, bad, raw user or None, span attributes, resource pairs)."""


class ExplainCollector:
    """The analyzer's half: candidate keys, the per-resource memo, and `fold`."""

    def __init__(self, config: SliConfig, user_text: Callable[[bytes], str]) -> None:
        explain = config.explain
        self.config: ExplainConfig = explain
        self.rate = explain.passing_sample_rate
        self.random: Callable[[], float] = random.random
        self._user_text = user_text
        fixed = [d.attribute for d in config.dimensions if d.attribute is not None]
        fixed += [*explain.attributes, *DISCOVERED_CANDIDATES]
        never = _NEVER | {config.user_attribute}
        self.fixed_keys: tuple[str, ...] = tuple(dict.fromkeys(k for k in fixed if k not in never))
        self._flags = bool(config.dimensions and any(d.flag for d in config.dimensions)) or explain.auto_discover
        self.auto_keys: dict[str, set[bytes]] = {}
        """Discovered keys and their distinct raw values so far (a key past the cap is rejected)."""
        self.rejected: set[str] = set(never)
        self._span_keys: tuple[str, ...] = self.fixed_keys
        self._texts: dict[bytes, str] = {}
        self._flag_memo: dict[bytes, tuple[Pair, ...]] = {}
        self._resources: dict[tuple[Any, ...], tuple[tuple[str, bytes], ...]] = {}
        self._kept = 0
        self.dropped_values = 0
        """Values not counted: too long, or of a key rejected after it was first tracked."""

    # -- once per ResourceSpans ----------------------------------------------------------------

    def resource(self, attributes: Any) -> tuple[tuple[str, bytes], ...]:
        """The candidate (key, raw value) pairs of a resource (memoised by its attributes)."""
        memo_key = tuple(attributes.items())
        found = self._resources.get(memo_key)
        if found is None:
            pairs = []
            for key, raw in memo_key:
                if len(raw) <= _MAX_RAW_VALUE and (key in self.fixed_keys or self._discover(key, raw)):
                    pairs.append((key, raw))
            found = tuple(pairs)
            if len(self._resources) >= _MEMO_LIMIT:
                self._resources.clear()
            self._resources[memo_key] = found
        return found

    # -- once per analysed result --------------------------------------------------------------

    def fold(self, events: list[Event], pending: Iterator[Any]) -> dict[tuple[str, int], ExplainDelta]:
        """The kept ``events`` as deltas by (task name, minute), with totals from the analyzer's
        ``pending`` groups (objects with ``task``, ``minute``, ``durations_ns`` and ``bad``)."""
        deltas: dict[tuple[str, int], ExplainDelta] = {}
        for group in pending:
            task = group.task
            if task is None or not group.durations_ns:
                continue
            delta = deltas.get((task.name, group.minute))
            if delta is None:
                delta = deltas[(task.name, group.minute)] = ExplainDelta()
            delta.failing += group.bad
            delta.passing += len(group.durations_ns) - group.bad
        sample_size = self.config.pair_sample
        draw = self.random
        for task, minute, bad, raw_user, attrs, resource_pairs in events:
            delta = deltas.get((task.name, minute))
            if delta is None:  # not counted in a group (cannot happen unless the groups were cut)
                continue
            values = self._values(attrs, resource_pairs)
            counts = delta.counts
            column = 0 if bad else 1
            for pair in values:
                held = counts.get(pair)
                if held is None:
                    held = counts[pair] = [0, 0]
                held[column] += 1
            if bad:
                if raw_user is not None:
                    user = self._user_text(raw_user)
                    if user:
                        for pair in values:
                            users = delta.users.get(pair)
                            if users is None:
                                delta.users[pair] = {user}
                            elif len(users) < 4 * USER_SKETCH_K:
                                users.add(user)
            else:
                delta.passing_kept += 1
            if sample_size:
                delta.sample.append((draw(), bad, values))
        if sample_size:
            for delta in deltas.values():
                if len(delta.sample) > sample_size:
                    delta.sample = bottom_k(delta.sample, sample_size)
        return deltas

    def _values(self, attrs: Any, resource_pairs: tuple[tuple[str, bytes], ...]) -> tuple[Pair, ...]:
        """An event's candidate values as text: span attributes win over the resource's."""
        raw: dict[str, bytes] = dict(resource_pairs)
        for key in self._span_keys:
            if key in attrs:
                raw[key] = attrs[key]
        self._kept += 1
        if self.config.auto_discover and self._kept % _DISCOVER_EVERY == 1:
            for key, value in attrs.items():
                if key not in raw and self._discover(key, value):
                    raw[key] = value
        pairs: list[Pair] = []
        texts = self._texts
        for key, value in raw.items():
            if len(value) > _MAX_RAW_VALUE:
                self.dropped_values += 1
                continue
            if key in self.auto_keys and not self._note_value(key, value):
                continue
            text = texts.get(value)
            if text is None:
                text = _text(value)
                if len(texts) >= _MEMO_LIMIT:
                    texts.clear()
                texts[value] = text
            pairs.append((key, text))
        if self._flags and FEATURE_FLAGS in attrs:
            pairs.extend(self._flag_pairs(attrs[FEATURE_FLAGS]))
        return tuple(pairs)

    def _discover(self, key: str, raw: bytes) -> bool:
        """Whether ``key`` is (now) a tracked automatic key; starts tracking a new one while there is room."""
        if key in self.auto_keys:
            return True
        if not self.config.auto_discover or key in self.rejected or key in self.fixed_keys:
            return key in self.fixed_keys
        if len(self.auto_keys) >= self.config.max_auto_keys or len(raw) > _MAX_RAW_VALUE:
            return False
        self.auto_keys[key] = {raw}
        self._span_keys = (*self.fixed_keys, *self.auto_keys)
        return True

    def _note_value(self, key: str, raw: bytes) -> bool:
        """Whether ``raw`` keeps ``key`` under the value cap; rejects the key for good when not."""
        seen = self.auto_keys[key]
        if raw in seen:
            return True
        if len(seen) < self.config.max_values_per_key:
            seen.add(raw)
            return True
        del self.auto_keys[key]
        if len(self.rejected) < _REJECTED_LIMIT:
            self.rejected.add(key)
        self._span_keys = (*self.fixed_keys, *self.auto_keys)
        self._resources.clear()
        self.dropped_values += 1
        return False

    def _flag_pairs(self, raw: bytes) -> tuple[Pair, ...]:
        pairs = self._flag_memo.get(raw)
        if pairs is None:
            found: list[Pair] = []
            for item in view.decode_str_array(raw):
                flag, sep, variant = item.partition("=")
                if sep and flag and len(item) <= MAX_VALUE_LENGTH:
                    found.append((FLAG_PREFIX + flag, variant))
            pairs = tuple(found)
            if len(raw) <= 1024:
                if len(self._flag_memo) >= _MEMO_LIMIT:
                    self._flag_memo.clear()
                self._flag_memo[raw] = pairs
        return pairs


def bottom_k(sample: list[tuple[float, bool, Any]], size: int) -> list[tuple[float, bool, Any]]:
    """The ``size`` lowest-priority entries of each outcome in ``sample``."""
    sample.sort(key=lambda entry: entry[0])
    kept: list[tuple[float, bool, Any]] = []
    counts = [0, 0]
    for entry in sample:
        side = 0 if entry[1] else 1
        if counts[side] < size:
            counts[side] += 1
            kept.append(entry)
    return kept


def _text(raw: bytes) -> str:
    """An AnyValue as text (strings as they are, numbers and booleans spelled out)."""
    if raw and raw[0] == 0x0A and len(raw) > 1 and raw[1] < 0x80 and len(raw) == raw[1] + 2:
        return raw[2:].decode("utf-8", "replace")
    text = view.decode_str(raw)
    if text is not None:
        return text
    try:
        value = view.decode_any(raw)
    except Exception:
        return "(invalid)"
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)[:MAX_VALUE_LENGTH]


# -- the state's half -------------------------------------------------------------------------------


def user_hash(user: str) -> int:
    """A stable 64-bit hash of a user pseudonym (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(user.encode(), digest_size=8).digest(), "big")


class ExplainBucket:
    """One time bucket of one task: totals, value counts, failing-user sketches, the pair sample."""

    __slots__ = ("counts", "failing", "passing", "passing_kept", "sample", "users")

    def __init__(self) -> None:
        self.failing = 0
        self.passing = 0
        self.passing_kept = 0
        self.counts: npt.NDArray[np.int64] = np.zeros((2, 0), dtype=np.int64)
        self.users: dict[int, list[int]] = {}
        """Per column: the lowest `USER_SKETCH_K` user hashes, sorted."""
        self.sample: list[tuple[float, bool, int]] = []
        """(priority, bad, column bit mask), the ``pair_sample`` lowest priorities per outcome."""

    def grow(self, columns: int) -> None:
        if self.counts.shape[1] < columns:
            grown = np.zeros((2, columns), dtype=np.int64)
            grown[:, : self.counts.shape[1]] = self.counts
            self.counts = grown

    def merge(self, other: ExplainBucket, sample_size: int) -> None:
        self.failing += other.failing
        self.passing += other.passing
        self.passing_kept += other.passing_kept
        self.grow(other.counts.shape[1])
        self.counts[:, : other.counts.shape[1]] += other.counts
        for column, hashes in other.users.items():
            self.users[column] = merge_hashes(self.users.get(column, []), hashes)
        if other.sample:
            self.sample = bottom_k(self.sample + other.sample, sample_size)

    def approx_bytes(self) -> int:
        users = sum(56 + 40 * len(hashes) for hashes in self.users.values())
        return 120 + self.counts.nbytes + users + 90 * len(self.sample)


def merge_hashes(first: list[int], second: list[int]) -> list[int]:
    """The lowest `USER_SKETCH_K` distinct hashes of both, sorted."""
    return sorted(set(first).union(second))[:USER_SKETCH_K]


def distinct_estimate(hashes: list[int]) -> int:
    """Distinct users from a k-minimum-values sketch: exact below `USER_SKETCH_K` hashes."""
    if len(hashes) < USER_SKETCH_K:
        return len(hashes)
    return round((USER_SKETCH_K - 1) / ((hashes[-1] + 1) / 2**64))


@dataclass
class WindowCounts:
    """A task's explain counts summed over a window (see `TaskExplain.window`)."""

    start_ns: int
    """Where the (widened) window really starts."""
    failing: int
    passing: int
    passing_kept: int
    columns: list[Pair]
    counts: npt.NDArray[np.int64]
    """Shape (2, columns): failing and sampled passing events per column."""
    users: dict[int, list[int]]
    sample: list[tuple[float, bool, int]]
    """The window's uniform pair sample: every bucket event below the lowest full bucket's threshold."""


class TaskExplain:
    """One task's explain buckets in tiers (the sketch layout), and its value columns."""

    def __init__(self, layout: Layout, config: ExplainConfig) -> None:
        self.layout = layout
        self.config = config
        self.columns: dict[Pair, int] = {}
        self.names: list[Pair] = []
        self.per_key: dict[str, int] = {}
        self.dropped_values = 0
        """Values not given a column (the task's column cap was reached)."""
        self.stamps: list[list[int]] = [[] for _ in layout.slots]
        self.buckets: list[list[ExplainBucket | None]] = [[] for _ in layout.slots]

    def column(self, pair: Pair) -> int | None:
        """``pair``'s column, created while the caps allow (past a key's cap: its ``(other)`` column)."""
        index = self.columns.get(pair)
        if index is not None:
            return index
        key = pair[0]
        if self.per_key.get(key, 0) >= self.config.max_values_per_key:
            pair = (key, OTHER)
            index = self.columns.get(pair)
            if index is not None:
                return index
        if len(self.names) >= self.config.max_values_per_task:
            self.dropped_values += 1
            return None
        index = self.columns[pair] = len(self.names)
        self.names.append(pair)
        self.per_key[key] = self.per_key.get(key, 0) + 1
        return index

    def add(self, minute: int, delta: ExplainDelta) -> None:
        """Fold one delta into the bucket holding ``minute``."""
        bucket = self._bucket(0, minute * MINUTE_NS // self.layout.widths_ns[0])
        if bucket is None:
            return
        bucket.failing += delta.failing
        bucket.passing += delta.passing
        bucket.passing_kept += delta.passing_kept
        columns = {pair: self.column(pair) for pair in delta.counts}
        bucket.grow(len(self.names))
        counts = bucket.counts
        for pair, (failing, passing) in delta.counts.items():
            index = columns[pair]
            if index is not None:
                counts[0, index] += failing
                counts[1, index] += passing
        for pair, users in delta.users.items():
            index = columns.get(pair)
            if index is not None:
                hashes = sorted({user_hash(user) for user in users})[:USER_SKETCH_K]
                bucket.users[index] = merge_hashes(bucket.users.get(index, []), hashes)
        if delta.sample:
            entries = []
            for priority, bad, values in delta.sample:
                mask = 0
                for pair in values:
                    index = columns.get(pair)
                    if index is None:
                        index = self.columns.get(pair)
                    if index is not None:
                        mask |= 1 << index
                entries.append((priority, bad, mask))
            bucket.sample = bottom_k(bucket.sample + entries, self.config.pair_sample)

    def _tier(self, tier: int) -> tuple[list[int], list[ExplainBucket | None]]:
        if not self.stamps[tier]:
            self.stamps[tier] = [-1] * self.layout.slots[tier]
            self.buckets[tier] = [None] * self.layout.slots[tier]
        return self.stamps[tier], self.buckets[tier]

    def _bucket(self, tier: int, index: int) -> ExplainBucket | None:
        """The bucket for ``index`` of ``tier``, rolling older buckets into coarser tiers (as `SketchTiers`)."""
        layout = self.layout
        while tier < len(layout.slots):
            stamps, buckets = self._tier(tier)
            slot = index % layout.slots[tier]
            current = stamps[slot]
            if current == index:
                return buckets[slot]
            if current < index:
                old = buckets[slot]
                if old is not None and tier + 1 < len(layout.slots):
                    target = self._bucket(tier + 1, layout.coarser_index(tier, current))
                    if target is not None:
                        target.merge(old, self.config.pair_sample)
                bucket = buckets[slot] = ExplainBucket()
                stamps[slot] = index
                return bucket
            if tier + 1 < len(layout.slots):
                index = layout.coarser_index(tier, index)
            tier += 1
        return None

    def window(self, start_ns: int, end_ns: int) -> WindowCounts:
        """Counts over every bucket overlapping ``[start_ns, end_ns)``."""
        counts = np.zeros((2, len(self.names)), dtype=np.int64)
        failing = passing = kept = 0
        users: dict[int, list[int]] = {}
        samples: list[tuple[float, bool, int]] = []
        thresholds = {True: 1.0, False: 1.0}
        earliest = start_ns
        size = self.config.pair_sample
        for tier, width in enumerate(self.layout.widths_ns):
            low = start_ns // width
            high = -(-end_ns // width)
            for stamp, bucket in zip(self.stamps[tier], self.buckets[tier], strict=True):
                if bucket is None or not low <= stamp < high:
                    continue
                earliest = min(earliest, stamp * width)
                failing += bucket.failing
                passing += bucket.passing
                kept += bucket.passing_kept
                columns = bucket.counts.shape[1]
                counts[:, :columns] += bucket.counts
                for column, hashes in bucket.users.items():
                    users[column] = merge_hashes(users.get(column, []), hashes)
                samples.extend(bucket.sample)
                for bad in (True, False):
                    side = [entry[0] for entry in bucket.sample if entry[1] is bad]
                    if size and len(side) >= size:
                        thresholds[bad] = min(thresholds[bad], max(side))
        sample = [entry for entry in samples if entry[0] <= thresholds[entry[1]]]
        return WindowCounts(earliest, failing, passing, kept, list(self.names), counts, users, sample)

    def approx_bytes(self) -> int:
        size = 200 * len(self.names)
        for tier in self.buckets:
            size += 8 * len(tier) + sum(bucket.approx_bytes() for bucket in tier if bucket is not None)
        return size


class ExplainTracking:
    """Every task's `TaskExplain`, in the `SliState` (folded by `apply`, read by the explain query)."""

    def __init__(self, layout: Layout, config: ExplainConfig) -> None:
        self.layout = layout
        self.config = config
        self.tasks: dict[str, TaskExplain] = {}

    def apply(self, deltas: dict[tuple[str, int], ExplainDelta], known: Callable[[str], bool]) -> None:
        """Fold ``deltas`` in, for the tasks ``known`` accepts."""
        for (name, minute), delta in deltas.items():
            task = self.tasks.get(name)
            if task is None:
                if not known(name):
                    continue
                task = self.tasks[name] = TaskExplain(self.layout, self.config)
            task.add(minute, delta)

    def approx_bytes(self) -> int:
        return sum(task.approx_bytes() for task in self.tasks.values())
