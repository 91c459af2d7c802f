"""Answers over the shared state: the `ImpactQueries` contract, read from Redis.

`SharedQueries` answers like `SliQueries` but from what every replica flushed: counts and
latency log-buckets are summed inside Redis (`SUM_SCRIPT`, so an answer moves a few thousand
numbers, not every bucket), distinct and impacted users are ``PFCOUNT`` unions of HyperLogLogs,
top customers a ``ZUNION`` of trimmed sorted sets. Each window is read through its `cover`.

Every method blocks on Redis: call it off the event loop. When Redis cannot be read it raises
`SharedStateUnavailable`; the caller then answers from this replica's own state, flagged.

Accuracy: counts are exact; distinct users have Redis HyperLogLog's 0.81% standard error,
reported with bounds at 2 standard deviations; latency quantiles come from log-spaced buckets
(scale 3: each 9% wide) and are reported at the bucket's geometric middle, within 4.4%; a top
customer's count is at most ``max_error`` too high (space-saving over trimmed sets).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final

from otel_impact.processors.clock import Clock
from otel_impact.processors.durations import HOUR_NS, MINUTE_NS, SECOND_NS, format_duration
from otel_impact.processors.impact_queries import (
    Accuracy,
    Completeness,
    EventCounts,
    ImpactReport,
    PipelineLag,
    SegmentImpact,
    Telemetry,
)
from otel_impact.processors.sli.aggregates import COL_TOTAL, row_width
from otel_impact.processors.sli.config import SliConfig
from otel_impact.processors.sli.queries import (
    CustomerBadEvents,
    TopCustomers,
    completeness_of,
    event_counts,
    query_window,
    volume_check,
)
from otel_impact.processors.sli.segments import SegmentReader
from otel_impact.processors.sli.tasks import TaskState

from .connection import REDIS_ERRORS, SharedConnection
from .cover import cover
from .encode import SharedLayout
from .figures import HLL_RELATIVE_ERROR, LATENCY_RELATIVE_ERROR, Figures, add_row, hll_bounds
from .flush import SharedWriter
from .keys import ALL_SERIES, SharedKeys, TaskKeys

__all__ = ["SharedQueries", "SharedStateUnavailable"]

STALE_REPLICA_S: Final = 600
"""A replica silent for longer is taken as gone (scaled down, or dead and replaced)."""

SUM_SCRIPT = """
local sums, order = {}, {}
for k = 1, #KEYS do
  local fields = redis.call('HGETALL', KEYS[k])
  for j = 1, #fields, 2 do
    local name, value = fields[j], tonumber(fields[j + 1])
    local sum = sums[name]
    if sum == nil then order[#order + 1] = name; sums[name] = value else sums[name] = sum + value end
  end
end
local out = {}
for _, name in ipairs(order) do out[#out + 1] = name; out[#out + 1] = string.format('%.17g', sums[name]) end
return out
"""


COUNT_SCRIPT = """
local out, first = {}, 2
for group = 1, #ARGV do
  local size = tonumber(ARGV[group])
  if size == 0 then
    out[group] = 0
  elseif size <= 4000 then
    out[group] = redis.call('PFCOUNT', unpack(KEYS, first, first + size - 1))
  else
    redis.call('DEL', KEYS[1])
    for chunk = first, first + size - 1, 4000 do
      redis.call('PFMERGE', KEYS[1], unpack(KEYS, chunk, math.min(chunk + 3999, first + size - 1)))
    end
    out[group] = redis.call('PFCOUNT', KEYS[1])
    redis.call('DEL', KEYS[1])
  end
  first = first + size
end
return out
"""
"""``PFCOUNT`` of several unions at once: KEYS[1] is a scratch key (for unions of more keys than
a Lua call takes), then each group's keys; ARGV holds each group's size. In a script, so a
Cluster runs it on the task's node (a pipeline cannot send multi-key commands there)."""


class SharedStateUnavailable(Exception):
    """Redis cannot be read now; the message says why (without credentials)."""


class SharedQueries:
    """Read-only answers over the shared state (see the module docstring). Thread-safe."""

    def __init__(
        self,
        connection: SharedConnection,
        keys: SharedKeys,
        config: SliConfig,
        writer: SharedWriter,
        clock: Clock,
        flush_interval_s: float,
        local_lag: Callable[[str, int, int], PipelineLag | None] | None = None,
    ) -> None:
        """``local_lag(task, start, end)``: how late this replica's spans of ``task`` arrive (lag is
        a property of each replica's pipeline, not shared)."""
        self.local_lag = local_lag
        self.connection = connection
        self.keys = keys
        self.config = config
        self.layout = SharedLayout.of(config)
        self.reader = SegmentReader(config.dimensions)
        self.writer = writer
        self.clock = clock
        self.flush_interval_s = flush_interval_s
        self._sum: Any = None
        self._count: Any = None
        self._tasks: dict[str, TaskState] = {}

    # -- the contract ---------------------------------------------------------------------------

    def tasks(self) -> Sequence[str]:
        names = {task.name for task in self.config.tasks}
        names.update(str(name) for name in self._call(lambda client: client.smembers(self.keys.tasks)))
        return sorted(names)

    def dimensions(self, task: str) -> Sequence[str]:
        return self.reader.names

    def latency_thresholds(self, task: str) -> Sequence[float]:
        return self._task(task).thresholds_s

    def resolve_dimension(self, name: str) -> str:
        resolved = self.reader.aliases().get(name)
        if resolved is None:
            known = ", ".join(self.reader.names) or "none"
            raise ValueError(f"unknown dimension {name!r}; configured dimensions: {known}")
        return resolved

    def counts(
        self, task: str, start_ns: int, end_ns: int, *, by: Sequence[str] = (), where: Mapping[str, str] | None = None
    ) -> Mapping[tuple[str, ...], EventCounts]:
        state = self._task(task)
        start, end = query_window(start_ns, end_ns)
        keys = self.keys.task(task)
        series, sums = self._call(lambda client: (self._series(client, keys), self._counts(client, keys, start, end)))
        columns = row_width(len(state.thresholds_s))
        rows: dict[tuple[str, ...], list[float]] = {} if by else {(): [0.0] * columns}
        for key, sids in self._groups(series, by, where).items():
            row = rows.setdefault(key, [0.0] * columns)
            for sid in sids:
                add_row(row, sums, sid)
        return {key: event_counts(row, state.thresholds_s) for key, row in rows.items()}

    def impact(
        self,
        task: str,
        start_ns: int,
        end_ns: int,
        *,
        by: Sequence[str] = (),
        where: Mapping[str, str] | None = None,
        window: str | None = None,
    ) -> ImpactReport:
        state = self._task(task)
        start, end = query_window(start_ns, end_ns)
        group_by = tuple(self.resolve_dimension(name) for name in by) if by else self.reader.names
        keys = self.keys.task(task)
        now = self.clock.now_ns()
        sketch_cover = cover(self.layout.sketch_tiers, start, end, now)

        def read(client: Any) -> tuple[Any, ...]:
            series = self._series(client, keys)
            groups = self._groups(series, group_by, where)
            everything = [ALL_SERIES] if not where else sorted({sid for sids in groups.values() for sid in sids})
            unions = []
            for sids in [everything, *groups.values()]:
                unions.append([keys.users(t, b, sid) for t, b in sketch_cover.buckets for sid in sids])
                unions.append([keys.impacted(t, b, sid) for t, b in sketch_cover.buckets for sid in sids])
            results = self._union_counts(client, keys, unions)
            meta = client.hgetall(keys.meta)
            counts = self._counts(client, keys, start, end)
            latency = self._sum_hashes(client, [keys.latency(t, b) for t, b in sketch_cover.buckets])
            return groups, everything, results, meta, counts, latency

        groups, everything, results, raw_meta, counts, latency = self._call(read)
        meta = {str(k): int(float(v)) for k, v in raw_meta.items()}
        completeness = self._completeness(task, start, end)
        lower_only = not completeness.complete
        figures = []
        for index, sids in enumerate([everything, *groups.values()]):
            users, impacted = results[2 * index], results[2 * index + 1]
            figures.append(Figures(state, counts, latency, sids, users, impacted))
        whole = Figures(state, counts, latency, [s for sids in groups.values() for s in sids], 0, 0)
        whole.users, whole.impacted = figures[0].users, figures[0].impacted
        segments = [
            SegmentImpact(**group.figures(lower_only), segment=dict(zip(group_by, key, strict=True)))
            for key, group in zip(groups, figures[1:], strict=True)
            if group.row[COL_TOTAL]
        ]
        segments.sort(key=lambda s: (-s.events.bad, -s.events.total, sorted(s.segment.items())))
        return ImpactReport(
            **whole.figures(lower_only),
            task=task,
            window=window or format_duration((end - start) // SECOND_NS),
            start_ns=start,
            end_ns=end,
            telemetry=Telemetry(
                completeness.complete,
                completeness.reason,
                meta.get("late_clamped", 0),
                meta.get("future_clamped", 0),
                completeness.lag,
            ),
            estimates_are_lower_bounds=lower_only,
            overflow_events=meta.get("overflow_events", 0),
            accuracy=Accuracy(
                users_bounds="2 standard deviations (about 95%)",
                users_relative_error=round(HLL_RELATIVE_ERROR, 5),
                latency_rank_error=0.0,
                sketch_window_start_ns=min(sketch_cover.start_ns, start),
                latency_relative_error=LATENCY_RELATIVE_ERROR,
                source="shared state",
            ),
            dimensions=tuple(group_by),
            where=dict(where or {}),
            segments=tuple(segments),
        )

    def top_customers(
        self, task: str, start_ns: int, end_ns: int, *, limit: int = 10, where: Mapping[str, str] | None = None
    ) -> TopCustomers:
        self._task(task)
        start, end = query_window(start_ns, end_ns)
        keys = self.keys.task(task)
        sketch_cover = cover(self.layout.sketch_tiers, start, end, self.clock.now_ns())

        def read(client: Any) -> tuple[Any, ...]:
            series = self._series(client, keys)
            sids = sorted({sid for group in self._groups(series, (), where).values() for sid in group})
            if not sids:
                return [], 0, 0
            top_keys = [keys.top(t, b, sid) for t, b in sketch_cover.buckets for sid in sids]
            members = client.zunion(top_keys, withscores=True)
            pipe = client.pipeline(transaction=False)
            for t, b in sketch_cover.buckets:
                pipe.hmget(keys.top_trimmed(t, b), sids)
            trimmed = pipe.execute()
            error = sum(int(float(v)) for values in trimmed for v in values if v is not None)
            targets = [ALL_SERIES] if not where else sids
            impacted = [keys.impacted(t, b, sid) for t, b in sketch_cover.buckets for sid in targets]
            return members, error, self._union_counts(client, keys, [impacted])[0]

        members, max_error, impacted = self._call(read)
        ranked = sorted(((str(m), int(s)) for m, s in members), key=lambda item: (-item[1], item[0]))[:limit]
        return TopCustomers(
            task=task,
            start_ns=start,
            end_ns=end,
            customers=tuple(
                CustomerBadEvents(member, count, max(0, count - max_error), count) for member, count in ranked
            ),
            max_error=max_error,
            impacted_users=hll_bounds(impacted).whole(),
        )

    def telemetry_complete(self, task: str, at_ns: int) -> tuple[bool, str | None]:
        self._task(task)
        return self._volume_check(task, at_ns)

    def window_completeness(self, task: str, start_ns: int, end_ns: int) -> Completeness:
        self._task(task)
        start, end = query_window(start_ns, end_ns)
        return self._completeness(task, start, end)

    # -- reading --------------------------------------------------------------------------------

    def _call(self, read: Any) -> Any:
        try:
            return read(self.connection.get())
        except REDIS_ERRORS as error:
            raise SharedStateUnavailable(
                f"shared state unreachable ({self.connection.address.display()}: {type(error).__name__})"
            ) from None

    def _task(self, task: str) -> TaskState:
        state = self._tasks.get(task)
        if state is None:
            if task not in self.tasks():
                raise KeyError(task)
            state = self._tasks[task] = TaskState(task, self.config)
        return state

    def _series(self, client: Any, keys: TaskKeys) -> dict[str, tuple[str, ...]]:
        raw = client.hgetall(keys.series)
        return {_text(sid): tuple(json.loads(values)) for sid, values in raw.items()}

    def _counts(self, client: Any, keys: TaskKeys, start: int, end: int) -> dict[str, float]:
        count_cover = cover(self.layout.count_tiers, start, end, self.clock.now_ns())
        return self._sum_hashes(client, [keys.counts(t, b) for t, b in count_cover.buckets])

    def _union_counts(self, client: Any, keys: TaskKeys, unions: list[list[str]]) -> list[int]:
        """The estimated distinct count of each union of HyperLogLogs (one script call)."""
        if self._count is None:
            self._count = client.register_script(COUNT_SCRIPT)
        flat = [keys.scratch] + [key for union in unions for key in union]
        return [int(n) for n in self._count(keys=flat, args=[len(union) for union in unions], client=client)]

    def _sum_hashes(self, client: Any, hash_keys: list[str]) -> dict[str, float]:
        if not hash_keys:
            return {}
        if self._sum is None:
            self._sum = client.register_script(SUM_SCRIPT)
        flat = self._sum(keys=hash_keys, args=[], client=client)
        return {_text(flat[i]): float(flat[i + 1]) for i in range(0, len(flat), 2)}

    def _groups(
        self, series: Mapping[str, tuple[str, ...]], by: Sequence[str], where: Mapping[str, str] | None
    ) -> dict[tuple[str, ...], list[str]]:
        names = self.reader.names
        by_index = [names.index(self.resolve_dimension(name)) for name in by]
        filters = [(names.index(self.resolve_dimension(name)), value) for name, value in (where or {}).items()]
        groups: dict[tuple[str, ...], list[str]] = {}
        for sid, values in sorted(series.items()):
            if len(values) != len(names) or any(values[index] != value for index, value in filters):
                continue
            groups.setdefault(tuple(values[index] for index in by_index), []).append(sid)
        return groups

    def _volume_check(self, task: str, at_ns: int) -> tuple[bool, str | None]:
        loss = self.config.loss_detection
        first = at_ns // MINUTE_NS - (loss.window_s + loss.baseline_s) // 60
        keys = self.keys.task(task)
        hours = range(first * MINUTE_NS // HOUR_NS, at_ns // HOUR_NS + 1)

        def read(client: Any) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for hour in hours:
                pipe.hgetall(keys.volume(hour))
            return list(pipe.execute())

        volume = {int(m): int(v) for hour in self._call(read) for m, v in hour.items()}
        return volume_check(task, volume, loss, at_ns)

    def _completeness(self, task: str, start: int, end: int) -> Completeness:
        now = self.clock.now_ns()
        replicas = self._call(lambda client: client.hgetall(self.keys.replicas))
        covered_from, stale = now, 0
        late_after = (3 * self.flush_interval_s + 5) * SECOND_NS
        for raw in replicas.values():
            status = json.loads(raw)
            covered_from = min(covered_from, int(status.get("coverage_start_ns", now)))
            silent = now - int(status.get("last_flush_ns", now))
            if late_after < silent < STALE_REPLICA_S * SECOND_NS:
                stale += 1
        _, loss = self._volume_check(task, end)
        reason = loss
        writer = self.writer.status()
        if reason is None and writer.backlog_flushes:
            reason = f"shared state: this replica still holds {writer.backlog_flushes} unflushed deltas"
        if reason is None and writer.last_drop_ns is not None and start <= writer.last_drop_ns:
            reason = "shared state: this replica's buffer overflowed in this window; some events were not shared"
        if reason is None and stale:
            reason = f"shared state: {stale} replica(s) have not flushed for over {late_after // SECOND_NS} s"
        completeness = completeness_of(start, end, covered_from, now, reason)
        if self.local_lag is not None:
            completeness = replace(completeness, lag=self.local_lag(task, start, end))
        return completeness


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
