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

Caches hold no attacker-sized bytes: every memo is bounded by entries and by key bytes (as in
`value_memos`; values longer than a label are never candidates), and what outlives a fold is
counts, column masks and user hashes.

Candidates: the configured dimensions' attributes and flag variants (``flag:<name>``, from
``impact.feature_flags``), ``sli.explain.attributes``, `DISCOVERED_CANDIDATES`, and, with
``auto_discover``, other attributes found on kept events whose values stay under
``max_values_per_key`` (at most ``max_auto_keys`` of them; a key that exceeds the cap is
rejected for good). Memory per task is bounded: columns by ``max_values_per_task`` (values past
it are dropped and counted), failing users by `USER_SKETCH_K` per bucket, samples by ``pair_sample``.
"""

from __future__ import annotations

import hashlib
import random
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt

from otel_impact._attributes import IDENTITY_ATTRIBUTES, TASK_NAME, TASK_OUTCOME, TASK_ROOT, TASK_VALUE
from otel_impact.processors.durations import MINUTE_NS
from otel_impact.proto import view

from .buckets import Layout
from .config import SliConfig
from .explain_config import DISCOVERED_CANDIDATES, ExplainConfig
from .explain_delta import ExplainDelta, Pair, RawPair, RawPairs, SampleEntry, Signature, merge_deltas
from .segments import FEATURE_FLAGS, MAX_VALUE_LENGTH
from .value_memos import COMPOSITE_KEY_BYTES, VALUE_KEY_BYTES, key_bytes

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
FLAG_PREFIX: Final = "flag:"
_MAX_RAW_VALUE: Final = MAX_VALUE_LENGTH + 8
"""Raw values longer than this are not candidates (an AnyValue header plus a label's length)."""
_MEMO_LIMIT: Final = 8192
"""Entries of each memo here (emptied when full)."""
_MEMO_KEY_BYTES: Final = COMPOSITE_KEY_BYTES
"""The most raw bytes a memo key may hold: a longer key is worked out each time, not remembered."""
_REJECTED_LIMIT: Final = 1024
_DISCOVER_EVERY: Final = 8
"""Kept events between two looks for new attribute keys (discovery reads every key of a span)."""
_NEVER: Final = frozenset({TASK_NAME, TASK_ROOT, TASK_OUTCOME, TASK_VALUE, FEATURE_FLAGS, *IDENTITY_ATTRIBUTES})
"""Never compared: the task's own fields, and attributes naming a person, session or client (a
value shared by many failures would otherwise be shown as a finding)."""

MIN_RATE: Final = 0.001
"""The lowest share of passing events kept, however busy the task."""
USER_SKETCH_K: Final = 64
"""Failing users kept per bucket: the lowest hashes of a k-minimum-values sketch (exact below it)."""
NO_PAIRS: Final[RawPairs] = ()
"""A resource without candidate values."""
_Entry = TypeVar("_Entry", bound=tuple[Any, ...])
Event = tuple[Any, int, bool, Any, Any, RawPairs]
"""What the hot loop appends: (task state, minute, bad, raw user or None, span attributes, resource pairs)."""


class _Work:
    """One task-minute's kept events while folding: counts by signature."""

    __slots__ = ("failing", "kept", "passing", "sample", "users")

    def __init__(self) -> None:
        self.failing: dict[Signature, int] = {}
        self.passing: dict[Signature, int] = {}
        self.kept = 0
        self.users: list[tuple[int, Signature]] = []
        self.sample: list[tuple[float, bool, Signature]] = []


def raw_pairs(signature: Signature) -> RawPairs:
    """A signature's (key, raw value) pairs: its resource's, then its span's."""
    keys, values, resource_pairs = signature
    found = [(key, value) for key, value in zip(keys, values, strict=True) if value is not None]
    return (*resource_pairs, *found)


class ExplainCollector:
    """The analyzer's half: candidate keys, the per-resource memo, the sampling rate, and `fold`.

    ``rate`` is the share of passing events the hot loop keeps (``random() < rate``). After
    each fold it is set so that about ``passing_per_batch`` passing events are kept per analysed
    result, at most ``passing_sample_rate`` and at least `MIN_RATE`; every kept passing event
    counts with weight ``1 / rate`` (the rate it was kept at).
    """

    def __init__(self, config: SliConfig, user_text: Callable[[bytes], str]) -> None:
        explain = config.explain
        self.config: ExplainConfig = explain
        self.max_rate = explain.passing_sample_rate
        self.rate = explain.passing_sample_rate
        self.random: Callable[[], float] = random.random
        self._user_text = user_text
        fixed = [d.attribute for d in config.dimensions if d.attribute is not None]
        fixed += [*explain.attributes, *DISCOVERED_CANDIDATES]
        never = _NEVER | {config.user_attribute}
        self.fixed_keys: frozenset[str] = frozenset(k for k in fixed if k not in never)
        self.auto_keys: dict[str, set[bytes]] = {}
        """Discovered keys and their distinct raw values so far (a key past the cap is rejected)."""
        self.rejected: set[str] = set(never)
        self._flags = any(d.flag for d in config.dimensions) or explain.auto_discover
        self.span_keys: tuple[str, ...] = (FEATURE_FLAGS,) if self._flags else ()
        """The keys read on every kept span: candidates seen on spans so far (and the flags)."""
        self._span_key_set: set[str] = set(self.span_keys)
        self._judged: set[str] = set()
        """Span keys already looked at by `_learn` (emptied when full, or when a key is rejected)."""
        self._admitted: dict[RawPair, bool] = {}
        self._admitted_pairs: dict[Signature, RawPairs] = {}
        self._user_hashes: dict[bytes, int] = {}
        self._resources: dict[tuple[Any, ...], RawPairs] = {}
        self._countdown = 0
        self.dropped_values = 0
        """Values not counted: too long, or of a key rejected after it was first tracked."""

    # -- once per ResourceSpans ----------------------------------------------------------------

    def resource(self, attributes: Any) -> RawPairs:
        """The candidate (key, raw value) pairs of a resource (memoised by its attributes)."""
        memo_key = tuple(attributes.items())
        found = self._resources.get(memo_key)
        if found is None:
            found = tuple((key, raw) for key, raw in memo_key if len(raw) <= _MAX_RAW_VALUE and self._candidate(key))
            if key_bytes(memo_key) <= _MEMO_KEY_BYTES:
                if len(self._resources) >= _MEMO_LIMIT:
                    self._resources.clear()
                self._resources[memo_key] = found
        return found

    def _candidate(self, key: str) -> bool:
        """Whether ``key`` is compared: a fixed candidate, or an automatic one while there is room."""
        if key in self.fixed_keys or key in self.auto_keys:
            return True
        if not self.config.auto_discover or key in self.rejected or len(self.auto_keys) >= self.config.max_auto_keys:
            return False
        self.auto_keys[key] = set()
        return True

    # -- once per analysed result --------------------------------------------------------------

    def fold(self, events: list[Event], pending: Iterator[Any]) -> dict[tuple[str, int], ExplainDelta]:
        """The kept ``events`` as deltas by (task name, minute), with totals from the analyzer's
        ``pending`` groups (objects with ``task``, ``minute``, ``durations_ns`` and ``bad``)."""
        deltas: dict[tuple[str, int], ExplainDelta] = {}
        passing_total = 0
        for group in pending:
            task = group.task
            if task is None or not group.durations_ns:
                continue
            delta = deltas.get((task.name, group.minute))
            if delta is None:
                delta = deltas[(task.name, group.minute)] = ExplainDelta()
            delta.failing += group.bad
            passing = len(group.durations_ns) - group.bad
            delta.passing += passing
            passing_total += passing
        rate = self.rate
        draw = self.random
        sampling = self.config.pair_sample > 0
        work: dict[tuple[str, int], _Work] = {}
        for task, minute, bad, raw_user, attrs, resource_pairs in events:
            key = (task.name, minute)
            held = work.get(key)
            if held is None:
                held = work[key] = _Work()
            if bad or not self._countdown:
                self._learn(attrs)
            keys = self.span_keys
            signature = (keys, tuple(map(attrs.get, keys)), resource_pairs)
            if bad:
                counts = held.failing
                if raw_user is not None:
                    held.users.append((self._user_hash(raw_user), signature))
            else:
                self._countdown = (self._countdown or _DISCOVER_EVERY) - 1
                counts = held.passing
                held.kept += 1
            counts[signature] = counts.get(signature, 0) + 1
            if sampling:
                held.sample.append((draw() if bad else draw() * rate, bad, signature))
        for key, held in work.items():
            delta = deltas.get(key)
            if delta is not None:  # always, unless the groups were cut
                self._fill(delta, held, rate)
        if passing_total:
            wanted = self.config.passing_per_batch / passing_total
            self.rate = min(self.max_rate, max(MIN_RATE, wanted))
        return deltas

    def _fill(self, delta: ExplainDelta, held: _Work, rate: float) -> None:
        """Add one task-minute's kept events to ``delta`` (values still undecoded)."""
        counts = delta.counts
        admitted = self._admitted_pairs
        weight = 1.0 / rate
        for column, by_signature, scale in ((0, held.failing, 1.0), (1, held.passing, weight)):
            for signature, count in by_signature.items():
                pairs = admitted.get(signature)
                if pairs is None:
                    pairs = self._admitted_of(signature)
                amount = count * scale
                for raw_pair in pairs:
                    found = counts.get(raw_pair)
                    if found is None:
                        found = counts[raw_pair] = [0.0, 0.0]
                    found[column] += amount
        if held.kept:
            delta.passing_kept += held.kept
            delta.passing_weight += held.kept * weight
            delta.min_rate = min(delta.min_rate, rate)
        users = delta.users
        for user, signature in held.users:
            before = users.get(user)
            users[user] = (signature,) if before is None else (*before, signature)
        if held.sample:
            # As signatures: the state reads only the entries that enter its buckets' samples.
            delta.sample.extend(bottom_k(held.sample, self.config.pair_sample))

    def _admitted_of(self, signature: Signature) -> RawPairs:
        """The counted (key, raw value) pairs of ``signature`` (remembered while keys stay tracked)."""
        pairs = tuple(pair for pair in raw_pairs(signature) if self._admit(pair))
        if key_bytes(signature[1]) <= _MEMO_KEY_BYTES:  # the resource pairs are bounded already
            if len(self._admitted_pairs) >= _MEMO_LIMIT:
                self._admitted_pairs.clear()
            self._admitted_pairs[signature] = pairs
        return pairs

    def _learn(self, attrs: Any) -> None:
        """Start reading the candidate keys of ``attrs`` not read yet (a look at every key)."""
        judged = self._judged
        for key in attrs:
            if key in judged:
                continue
            if len(judged) >= _REJECTED_LIMIT:
                judged.clear()
            judged.add(key)
            if key not in self._span_key_set and self._candidate(key):
                self._span_key_set.add(key)
                self.span_keys = (*self.span_keys, key)

    def _admit(self, raw_pair: RawPair) -> bool:
        """Whether a value is counted: not too long, and of a key still tracked under its cap."""
        found = self._admitted.get(raw_pair)
        if found is not None:
            return found
        key, raw = raw_pair
        if len(raw) > _MAX_RAW_VALUE:
            self.dropped_values += 1
            return False
        tracked = key in self.fixed_keys or key == FEATURE_FLAGS
        found = self._note_value(key, raw) if key in self.auto_keys else tracked
        if found:
            if len(self._admitted) >= _MEMO_LIMIT:
                self._admitted.clear()
            self._admitted[raw_pair] = True
        return found

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
        self.span_keys = tuple(k for k in self.span_keys if k != key)
        self._span_key_set.discard(key)
        self._resources.clear()
        self._admitted.clear()
        self._admitted_pairs.clear()
        self._judged.clear()
        self.dropped_values += 1
        return False

    def _user_hash(self, raw: bytes) -> int:
        found = self._user_hashes.get(raw)
        if found is None:
            found = user_hash(self._user_text(raw))
            if len(raw) <= VALUE_KEY_BYTES:
                if len(self._user_hashes) >= _MEMO_LIMIT:
                    self._user_hashes.clear()
                self._user_hashes[raw] = found
        return found


def bottom_k(sample: list[_Entry], size: int) -> list[_Entry]:
    """The ``size`` lowest-priority entries of each outcome in ``sample`` (entries: priority, bad, ...)."""
    sample.sort(key=_PRIORITY)
    kept: list[_Entry] = []
    counts = [0, 0]
    for entry in sample:
        side = 0 if entry[1] else 1
        if counts[side] < size:
            counts[side] += 1
            kept.append(entry)
    return kept


def flag_pairs(raw: bytes) -> tuple[Pair, ...]:
    """``impact.feature_flags`` (``key=variant`` strings) as (``flag:<key>``, variant) pairs."""
    found: list[Pair] = []
    for item in view.decode_str_array(raw):
        flag, sep, variant = item.partition("=")
        if sep and flag and len(item) <= MAX_VALUE_LENGTH:
            found.append((FLAG_PREFIX + flag, variant))
    return tuple(found)


_PRIORITY: Final = itemgetter(0)


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


def user_hash(user: str) -> int:
    """A stable 64-bit hash of a user pseudonym (the same in every process)."""
    return int.from_bytes(hashlib.blake2b(user.encode(), digest_size=8).digest(), "big")


# -- the state's half -------------------------------------------------------------------------------


class ExplainBucket:
    """One time bucket of one task: totals, value counts, failing users, the pair sample."""

    __slots__ = (
        "failing",
        "failing_row",
        "limits",
        "min_rate",
        "passing",
        "passing_kept",
        "passing_row",
        "passing_weight",
        "sample",
        "user_limit",
        "users",
    )

    def __init__(self) -> None:
        self.failing = 0
        self.passing = 0
        self.passing_kept = 0
        self.passing_weight = 0.0
        self.min_rate = 1.0
        self.failing_row = array("d")
        """Failing events per column."""
        self.passing_row = array("d")
        """Weighted sampled passing events per column."""
        self.users: dict[int, int] = {}
        """Failing users: hash -> bit mask of the columns of their failing events; every hash
        below ``user_limit`` seen in this bucket (a k-minimum-values sketch, see `trim_users`)."""
        self.user_limit = _HASH_SPACE
        self.sample: list[tuple[float, bool, int]] = []
        """(priority, bad, column bit mask), the ``pair_sample`` lowest priorities per outcome."""
        self.limits = [2.0, 2.0]
        """The highest sample priority of failing, passing events once that side is full (else 2)."""

    def grow(self, columns: int) -> None:
        missing = columns - len(self.failing_row)
        if missing > 0:
            self.failing_row.extend(array("d", bytes(8 * missing)))
            self.passing_row.extend(array("d", bytes(8 * missing)))

    def set_sample(self, entries: list[tuple[float, bool, int]], size: int) -> None:
        """Keep the ``size`` lowest priorities per outcome of ``entries``."""
        self.sample = kept = bottom_k(entries, size)
        limits = self.limits
        limits[0] = limits[1] = 2.0
        counts = [0, 0]
        for priority, bad, _ in kept:  # ascending: the size-th of a side is its highest
            side = 0 if bad else 1
            counts[side] += 1
            if counts[side] == size:
                limits[side] = priority

    def merge(self, other: ExplainBucket, sample_size: int) -> None:
        self.failing += other.failing
        self.passing += other.passing
        self.passing_kept += other.passing_kept
        self.passing_weight += other.passing_weight
        self.min_rate = min(self.min_rate, other.min_rate)
        self.grow(len(other.failing_row))
        for mine, theirs in ((self.failing_row, other.failing_row), (self.passing_row, other.passing_row)):
            for index, value in enumerate(theirs):
                if value:
                    mine[index] += value
        self.users, self.user_limit = merge_users(self.users, self.user_limit, other.users, other.user_limit)
        if other.sample:
            self.set_sample(self.sample + other.sample, sample_size)

    def approx_bytes(self) -> int:
        users = sum(100 + mask.bit_length() // 8 for mask in self.users.values())
        rows = 16 * len(self.failing_row) + 128
        return 300 + rows + users + 120 * len(self.sample)


_HASH_SPACE: Final = 2**64


def trim_users(users: dict[int, int], limit: int) -> tuple[dict[int, int], int]:
    """At most `USER_SKETCH_K` users: the lowest hashes, and the new limit (the next hash)."""
    if len(users) <= USER_SKETCH_K:
        return users, limit
    order = sorted(users)
    limit = order[USER_SKETCH_K]
    return {user: users[user] for user in order[:USER_SKETCH_K]}, limit


def merge_users(
    first: dict[int, int], first_limit: int, second: dict[int, int], second_limit: int
) -> tuple[dict[int, int], int]:
    """Two failing-user sketches as one (masks of a user seen in both are joined)."""
    limit = min(first_limit, second_limit)
    merged = {user: mask for user, mask in first.items() if user < limit}
    for user, mask in second.items():
        if user < limit:
            merged[user] = merged.get(user, 0) | mask
    return trim_users(merged, limit)


def users_by_column(users: dict[int, int], limit: int) -> dict[int, int]:
    """Distinct failing users per column estimated from a sketch (exact while it holds everyone)."""
    found: dict[int, int] = {}
    for mask in users.values():
        while mask:
            low = mask & -mask
            column = low.bit_length() - 1
            found[column] = found.get(column, 0) + 1
            mask ^= low
    if limit >= _HASH_SPACE:
        return found
    scale = _HASH_SPACE / limit
    return {column: round(count * scale) for column, count in found.items()}


@dataclass
class WindowCounts:
    """A task's explain counts summed over a window (see `TaskExplain.window`)."""

    start_ns: int
    """Where the (widened) window really starts."""
    failing: int
    passing: int
    passing_kept: int
    passing_weight: float
    columns: list[Pair]
    counts: npt.NDArray[np.float64]
    """Shape (2, columns): failing events and weighted sampled passing events per column."""
    users: dict[int, int]
    """Distinct failing users per column (estimates)."""
    sample: list[tuple[float, bool, int]]
    """The window's uniform pair sample (see `TaskExplain.window`)."""


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
        self._raw_columns: dict[RawPair, tuple[int, ...]] = {}
        self._masks: dict[Signature, int] = {}
        """Column masks of event signatures seen (emptied when a column is added, or when full)."""

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
        self._masks.clear()  # a remembered mask may lack the new column
        self.names.append(pair)
        self.per_key[key] = self.per_key.get(key, 0) + 1
        return index

    def columns_of(self, raw_pair: RawPair, *, create: bool) -> tuple[int, ...]:
        """The columns of an undecoded value (flags give one per variant), created when ``create``."""
        found = self._raw_columns.get(raw_pair)
        if found is not None:
            return found
        key, raw = raw_pair
        pairs = flag_pairs(raw) if key == FEATURE_FLAGS else ((key, _text(raw)),)
        indexes = []
        for pair in pairs:
            index = self.column(pair) if create else self.columns.get(pair)
            if index is not None:
                indexes.append(index)
        found = tuple(indexes)
        if create and len(found) == len(pairs):
            if len(self._raw_columns) >= _MEMO_LIMIT:
                self._raw_columns.clear()
            self._raw_columns[raw_pair] = found
        return found

    def _mask(self, signatures: Iterable[Signature]) -> int:
        """The column bit mask of events' undecoded values (values without a column count for none)."""
        mask = 0
        masks = self._masks
        for signature in signatures:
            found = masks.get(signature)
            if found is None:
                found = 0
                for raw_pair in raw_pairs(signature):
                    for index in self.columns_of(raw_pair, create=False):
                        found |= 1 << index
                if key_bytes(signature) <= _MEMO_KEY_BYTES:
                    if len(masks) >= _MEMO_LIMIT:
                        masks.clear()
                    masks[signature] = found
            mask |= found
        return mask

    def add(self, minute: int, delta: ExplainDelta) -> None:
        """Fold one delta into the bucket holding ``minute``."""
        bucket = self._bucket(0, minute * MINUTE_NS // self.layout.widths_ns[0])
        if bucket is None:
            return
        bucket.failing += delta.failing
        bucket.passing += delta.passing
        bucket.passing_kept += delta.passing_kept
        bucket.passing_weight += delta.passing_weight
        bucket.min_rate = min(bucket.min_rate, delta.min_rate)
        raw_columns = self._raw_columns
        found_columns = []
        for raw_pair, counted in delta.counts.items():
            found = raw_columns.get(raw_pair)
            if found is None:
                found = self.columns_of(raw_pair, create=True)
            found_columns.append((found, counted))
        bucket.grow(len(self.names))
        failing_row, passing_row = bucket.failing_row, bucket.passing_row
        for found, (bad, good) in found_columns:
            for index in found:
                if bad:
                    failing_row[index] += bad
                passing_row[index] += good
        if delta.users:
            users, limit = bucket.users, bucket.user_limit
            for user, values in delta.users.items():
                if user < limit:
                    users[user] = users.get(user, 0) | self._mask(values)
            if len(users) > 2 * USER_SKETCH_K:
                bucket.users, bucket.user_limit = trim_users(users, limit)
        if delta.sample:
            self._add_sample(bucket, delta.sample)

    def _add_sample(self, bucket: ExplainBucket, sample: list[SampleEntry]) -> None:
        """Add the entries of ``sample`` that can enter ``bucket``'s bottom-k sample."""
        failing_limit, passing_limit = bucket.limits
        entries = [
            (priority, bad, self._mask((event,)))
            for priority, bad, event in sample
            if priority < (failing_limit if bad else passing_limit)
        ]
        if entries:
            bucket.set_sample(bucket.sample + entries, self.config.pair_sample)

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
        """Counts over every bucket overlapping ``[start_ns, end_ns)``.

        The pair sample is uniform over the window's events: failing events below the lowest
        threshold of a full bucket (the ``pair_sample``-th priority), passing events below that
        and below every sampling rate (a passing event kept at rate ``r`` got a priority uniform
        in ``[0, r)``, so below ``t <= r`` each passing event is in with the same chance ``t``).
        """
        counts = np.zeros((2, len(self.names)), dtype=np.float64)
        failing = passing = kept = 0
        weight = 0.0
        lowest_rate = 1.0
        users: dict[int, int] = {}
        user_limit = _HASH_SPACE
        samples: list[tuple[float, bool, int]] = []
        thresholds = {True: 1.0, False: 1.0}
        earliest = start_ns
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
                weight += bucket.passing_weight
                lowest_rate = min(lowest_rate, bucket.min_rate)
                columns = len(bucket.failing_row)
                if columns:
                    counts[0, :columns] += np.frombuffer(bucket.failing_row, dtype=np.float64)
                    counts[1, :columns] += np.frombuffer(bucket.passing_row, dtype=np.float64)
                if bucket.users:
                    users, user_limit = merge_users(users, user_limit, bucket.users, bucket.user_limit)
                samples.extend(bucket.sample)
                failing_limit, passing_limit = bucket.limits
                thresholds[True] = min(thresholds[True], failing_limit)
                thresholds[False] = min(thresholds[False], passing_limit)
        thresholds[False] = min(thresholds[False], lowest_rate)
        sample = [entry for entry in samples if entry[0] <= thresholds[entry[1]]]
        by_column = users_by_column(users, user_limit)
        return WindowCounts(earliest, failing, passing, kept, weight, list(self.names), counts, by_column, sample)

    def approx_bytes(self) -> int:
        size = 200 * len(self.names) + 150 * len(self._raw_columns)
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
