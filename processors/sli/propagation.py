"""Broken propagation per service edge: which callee services lose the customer their caller had.

The pre-filter hands the analysis every span of a sampled share of traces (``trace_sample``,
decided from the trace id's last 7 bytes by `prefilter.trace_sampled`, so every process and
batch agrees on a trace), not only task spans. `EdgeTracker` remembers, for a while, the span ids
of those spans with their service, task and whether they carry the customer. A span whose parent
is remembered and belongs to *another* service is the first span of a call into that service:
an edge ``caller → callee``, counted as a child with or without the customer when the parent
carried one (a parent without a customer had nothing to pass on, and is not counted). A child
that arrives before its parent (another batch: a parent ends, and is exported, after its
children) waits in a small pending map until the parent arrives.

A callee whose children often lack the customer while their parents had it drops the baggage:
a service that does not trust or pass on ``impact.*`` baggage, or a hop without instrumentation
that passes the trace context but not the baggage. A hop that passes neither starts a new trace:
the child has no parent to be found, so that edge is invisible here (attribution by service, in
``sli.attribution``, still shows the callee's events without a customer).

Bounds (what they miss): both maps are two generations of plain dicts, each generation at most
half of ``max_spans`` (and of the pending bound, ``max_spans // 4`` parents with at most
`MAX_CHILDREN_WAITING` children each); a generation is dropped when it is older than
``ttl / 2`` or full, so a span is remembered for at most ``ttl`` and at least ``ttl / 2`` unless
traffic fills the map first. Entries are fixed-size (an 8-byte span id and a shared tuple; service
and task names are interned, at most `MAX_NAMES` of each, longer names cut), so the entry bound
is a byte bound (see ``docs/performance.md`` for the bytes at the bound). Missed: a child whose
parent arrives more than ``ttl`` later or after a full map dropped it (counted as
``unresolved``), a parent dropped before its late child arrived, traces that are not sampled,
and pairs whose batches went to different analysis workers (``analysis.workers > 1``) or intake
processes: each has its own map. The misses do not depend on whether a child carries the
customer, so coverage is estimated from fewer pairs, not biased.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from otel_impact._attributes import TASK_NAME
from otel_impact.processors.config import Fields, Problems
from otel_impact.processors.durations import MINUTE_NS, SECOND_NS
from otel_impact.proto import prefilter, view

__all__ = [
    "MAX_CHILDREN_WAITING",
    "MAX_NAMES",
    "EdgeCounts",
    "EdgeReport",
    "EdgeTracker",
    "PropagationConfig",
    "read_propagation",
]

SPAN_ID_BYTES: Final = 8
TRACE_ID_BYTES: Final = prefilter.TRACE_ID_BYTES
MAX_CHILDREN_WAITING: Final = 64
"""Children kept waiting for one parent at most (more are counted as unresolved)."""
MAX_NAMES: Final = 1024
"""Service and task names interned at most; later ones count under `OTHER_NAME`."""
MAX_NAME_LENGTH: Final = 256
OTHER_NAME: Final = "_other"

EdgeCounts = dict[tuple[str, str, str, int], list[int]]
"""Children with and without the customer by (task, caller service, callee service, minute of arrival)."""


@dataclass(slots=True)
class EdgeReport:
    """What an `EdgeTracker` found since its last report; crosses process boundaries (pickled)."""

    counts: EdgeCounts = field(default_factory=dict)
    unresolved: int = 0
    """Children whose parent did not arrive while they waited, or that found no room to wait."""
    dropped_early: int = 0
    """Span ids forgotten before ``ttl / 2`` because the map was full."""

    def add(self, other: EdgeReport) -> None:
        """Add ``other``'s counts to this report (merging two analysis results)."""
        for key, counts in other.counts.items():
            held = self.counts.get(key)
            if held is None:
                self.counts[key] = list(counts)
            else:
                held[0] += counts[0]
                held[1] += counts[1]
        self.unresolved += other.unresolved
        self.dropped_early += other.dropped_early


@dataclass(frozen=True)
class PropagationConfig:
    """``sli.propagation``: the trace-sampled pass and the edge tracker's bounds.

    Example::

        sli:
          propagation: {enabled: true, trace_sample: 1/16, max_spans: 50000, ttl: 2m}
    """

    enabled: bool = True
    trace_sample: float = 1 / 16
    """The share of traces whose every span is analysed (0 < share <= 1)."""
    max_spans: int = 50_000
    """Span ids remembered at most (the pending children's parents: a quarter of it)."""
    ttl_s: float = 120.0
    """How long a span id is remembered at most (at least half of it, unless the map is full)."""

    @property
    def sample_below(self) -> int:
        """The pre-filter's threshold for `trace_sample` (0 when the tracker is off)."""
        return prefilter.sample_below(self.trace_sample) if self.enabled else 0

    def describe(self) -> str:
        """One line for ``check-config``."""
        if not self.enabled:
            return "propagation off"
        share = f"{self.trace_sample * 100:.4g}%"
        return f"propagation edges from {share} of traces, up to {self.max_spans} span ids for {self.ttl_s:g}s"

    def validate(self, problems: Problems, path: str) -> None:
        if not 0 < self.trace_sample <= 1:
            problems.add(f"{path}.trace_sample", f"{self.trace_sample:g} is not in (0, 1]", "use e.g. 1/16 or 0.0625")
        if not 1000 <= self.max_spans <= 10_000_000:
            problems.add(f"{path}.max_spans", f"{self.max_spans}", "use 1000 to 10000000 (default 50000)")
        if not 1 <= self.ttl_s <= 3600:
            problems.add(f"{path}.ttl", f"{self.ttl_s:g}s", "use 1s to 1h (default 2m)")


def read_propagation(fields: Fields) -> PropagationConfig:
    """``sli.propagation`` (its checks are in `PropagationConfig.validate`)."""
    defaults = PropagationConfig()
    config = PropagationConfig(
        enabled=fields.take_bool("enabled", defaults.enabled),
        trace_sample=fields.take_share("trace_sample", defaults.trace_sample, fix="write e.g. 1/16, 0.0625 or 6.25%"),
        max_spans=fields.take_int("max_spans", defaults.max_spans),
        ttl_s=fields.take_duration("ttl", defaults.ttl_s),
    )
    fields.done()
    return config


class _Generations:
    """Two dicts: entries go to the newer; when it is full or older than ``period_ns``, the older
    is dropped and the newer becomes the older. `dropped_early` counts entries dropped because the
    newer filled up before its time."""

    __slots__ = ("dropped_early", "half", "newer", "older", "period_ns", "started_ns")

    def __init__(self, limit: int, period_ns: int) -> None:
        self.half = max(1, limit // 2)
        self.period_ns = period_ns
        self.newer: dict[bytes, Any] = {}
        self.older: dict[bytes, Any] = {}
        self.started_ns = 0
        self.dropped_early = 0

    def turn(self, now_ns: int, *, full: bool = False) -> int:
        """Drop the older generation; returns how many entries it held."""
        dropped = len(self.older)
        if full:
            self.dropped_early += dropped
        self.older, self.newer = self.newer, {}
        self.started_ns = now_ns
        return dropped

    def __len__(self) -> int:
        return len(self.newer) + len(self.older)


class EdgeTracker:
    """Edges between services seen in one analyzer's sampled traces (see the module docstring).

    `see` is called by the analyzer for every span it reads, before anything else; it returns at
    once for a span of a trace that is not sampled. `take` hands over the counts since the last
    call. Not thread-safe: one per analyzer.
    """

    def __init__(self, config: PropagationConfig, user_attribute: str) -> None:
        below = config.sample_below
        # Trace ids compare by their last 7 bytes (as big-endian numbers: equal-length bytes
        # compare the same way); 8 bytes of 0xff are above any 7 bytes: every trace.
        self._below = b"\xff" * 8 if below >= prefilter.SAMPLE_ALL else below.to_bytes(7, "big")
        self._user_key = user_attribute
        period = round(config.ttl_s * SECOND_NS / 2)
        self.spans = _Generations(config.max_spans, period)
        self.pending = _Generations(max(2, config.max_spans // 4), period)
        self._now = 0
        self._minute = 0
        self._entries: dict[tuple[str, bytes | None, bool], tuple[str, str, bool]] = {}
        self._names: dict[bytes | str, str] = {}
        self.counts: EdgeCounts = {}
        self.unresolved = 0
        """Children whose parent never arrived while they waited (or that found no room to wait)."""
        self._reported = (0, 0)
        """``unresolved`` and the span map's ``dropped_early`` at the last `take`."""

    def see(self, span: Any, attrs: Any, service: str, now_ns: int) -> None:
        """Note ``span`` (of resource ``service``, arrived at ``now_ns``) if its trace is sampled."""
        trace_id = span.trace_id
        if trace_id[9:] >= self._below or len(trace_id) != TRACE_ID_BYTES:  # most spans stop here
            return
        span_id = span.span_id
        if len(span_id) != SPAN_ID_BYTES:
            return
        if now_ns != self._now:
            self._advance(now_ns)
        raw_task = attrs[TASK_NAME] if TASK_NAME in attrs else None  # noqa: SIM401 (faster)
        key = (service, raw_task, self._user_key in attrs)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entry(key)
        spans = self.spans
        newer = spans.newer
        if len(newer) >= spans.half:
            spans.turn(now_ns, full=True)
            newer = spans.newer
        newer[span_id] = entry
        pending = self.pending
        waiting = pending.newer.pop(span_id, None)
        if waiting is None:
            waiting = pending.older.pop(span_id, None)
        if waiting is not None:
            for child in waiting:  # the children's own (shared) entries
                if child[0] != entry[0]:
                    self._count(entry, child[0], child[2])
        parent_id = span.parent_span_id
        if len(parent_id) != SPAN_ID_BYTES:
            return  # a root, or an id that is not one
        parent = newer.get(parent_id) or spans.older.get(parent_id)
        if parent is not None:
            if parent[0] != entry[0]:
                self._count(parent, entry[0], entry[2])
            return
        self._wait(parent_id, entry, now_ns)

    def _wait(self, parent_id: bytes, entry: tuple[str, str, bool], now_ns: int) -> None:
        """Keep a child (its service and whether it has the customer) until its parent arrives."""
        pending = self.pending
        children = pending.newer.get(parent_id)
        if children is None:
            children = pending.older.pop(parent_id, None)
            if children is None:
                children = []
            if len(pending.newer) >= pending.half:
                self.unresolved += sum(len(c) for c in pending.older.values())
                pending.turn(now_ns, full=True)
            pending.newer[parent_id] = children
        if len(children) < MAX_CHILDREN_WAITING:
            children.append(entry)
        else:
            self.unresolved += 1

    def take(self) -> EdgeReport:
        """The edge counts and misses since the last call."""
        counts, self.counts = self.counts, {}
        unresolved, dropped = self._reported
        self._reported = (self.unresolved, self.spans.dropped_early)
        return EdgeReport(counts, self.unresolved - unresolved, self.spans.dropped_early - dropped)

    def held(self) -> tuple[int, int]:
        """Span ids remembered, and parents with children waiting."""
        return len(self.spans), len(self.pending)

    def _advance(self, now_ns: int) -> None:
        self._now = now_ns
        self._minute = now_ns // MINUTE_NS
        for generations in (self.spans, self.pending):
            elapsed = now_ns - generations.started_ns
            for _ in range(2 if elapsed >= 2 * generations.period_ns else 1 if elapsed >= generations.period_ns else 0):
                if generations is self.pending:
                    self.unresolved += sum(len(c) for c in generations.older.values())
                generations.turn(now_ns)

    def _count(self, parent: tuple[str, str, bool], child_service: str, child_customer: bool) -> None:
        caller, task, parent_customer = parent
        if caller == child_service or not parent_customer:
            return
        key = (task, caller, child_service, self._minute)
        counts = self.counts.get(key)
        if counts is None:
            counts = self.counts[key] = [0, 0]
        counts[0 if child_customer else 1] += 1

    def _entry(self, key: tuple[str, bytes | None, bool]) -> tuple[str, str, bool]:
        """The shared (service, task, has customer) tuple of a span (memoized for short names)."""
        service, raw_task, customer = key
        entry = (self._name(service), "" if raw_task is None else self._name(raw_task), customer)
        if len(self._entries) < MAX_NAMES and (raw_task is None or len(raw_task) <= MAX_NAME_LENGTH):
            self._entries[key] = entry
        return entry

    def _name(self, raw: bytes | str) -> str:
        """One string per distinct service or task name (decoded, cut to `MAX_NAME_LENGTH`)."""
        name = self._names.get(raw)
        if name is not None:
            return name
        if len(self._names) >= MAX_NAMES:
            return OTHER_NAME
        if len(raw) > 4 * MAX_NAME_LENGTH:
            return OTHER_NAME
        decoded = (view.decode_str(raw) or "") if isinstance(raw, bytes) else raw
        name = decoded[:MAX_NAME_LENGTH]
        self._names[raw] = name
        return name
