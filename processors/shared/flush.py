"""The shared-state writer: applies each replica's deltas to Redis exactly once.

Every flush interval the event loop hands the deltas it buffered (`DeltaBuffer.take`) to
`SharedWriter.flush`, which runs on the writer's own thread. Each task's deltas become one
`TaskFlush` with the next sequence number of this replica for that task, and one call of the
apply script (`APPLY_SCRIPT`): the script does nothing if the task's ``applied`` hash already
records that sequence for this replica, else runs every operation and records it, atomically.
A flush whose reply was lost (a timeout, a dropped connection) is retried as it was, so it is
applied exactly once; later deltas wait behind it, in order, in a bounded backlog.

While Redis is unreachable the backlog grows up to ``buffer_max_bytes``; a flush that does not
fit is dropped and its events counted (``dropped_events``, with the time of the last drop so
that answers over that time say they are incomplete). On recovery the backlog is applied in
order. Intake never waits for any of this.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from otel_impact.processors.clock import Clock
from otel_impact.processors.sli.deltas import TaskDelta

from .connection import REDIS_ERRORS, SharedConnection
from .encode import FlushEncoder, TaskFlush
from .keys import SharedKeys

__all__ = ["APPLY_SCRIPT", "SharedWriter", "WriterStatus"]

logger = logging.getLogger("otel_impact.shared")

APPLIED_KEEP_MS = 40 * 86_400_000
"""How long a task's applied-sequence hash outlives its last flush (longer than any bucket)."""

APPLY_SCRIPT = """
local replica = ARGV[1]
local sequence = tonumber(ARGV[2])
local done = tonumber(redis.call('HGET', KEYS[1], replica) or '0')
if done >= sequence then return 0 end
for _, op in ipairs(cjson.decode(ARGV[4])) do
  local code, key = op[1], KEYS[op[2]]
  if code == 'H' then
    redis.call('HINCRBY', key, op[3], op[4])
  elseif code == 'F' then
    redis.call('HINCRBYFLOAT', key, op[3], op[4])
  elseif code == 'S' then
    redis.call('HSETNX', key, op[3], op[4])
  elseif code == 'P' then
    local members = op[3]
    for _, target in ipairs(op[2]) do
      for first = 1, #members, 1000 do
        redis.call('PFADD', KEYS[target], unpack(members, first, math.min(first + 999, #members)))
      end
    end
  elseif code == 'Z' then
    local trimmed, sid = KEYS[op[3]], op[4]
    local entry = tonumber(redis.call('HGET', trimmed, sid) or '0')
    for member, increment in pairs(op[5]) do
      if entry > 0 and not redis.call('ZSCORE', key, member) then increment = increment + entry end
      redis.call('ZINCRBY', key, increment, member)
    end
  elseif code == 'T' then
    local trimmed, sid, cap = KEYS[op[3]], op[4], op[5]
    local size = redis.call('ZCARD', key)
    if size > cap then
      local cut = redis.call('ZRANGE', key, size - cap - 1, size - cap - 1, 'WITHSCORES')
      redis.call('ZREMRANGEBYRANK', key, 0, size - cap - 1)
      local largest = tonumber(cut[2])
      if largest > tonumber(redis.call('HGET', trimmed, sid) or '0') then
        redis.call('HSET', trimmed, sid, tostring(largest))
      end
    end
  elseif code == 'E' then
    redis.call('PEXPIREAT', key, op[3])
  else
    return redis.error_reply('unknown operation ' .. tostring(code))
  end
end
redis.call('HSET', KEYS[1], replica, sequence)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


@dataclass(frozen=True)
class WriterStatus:
    """What ``/readyz``, ``/metrics`` and the answers say of the writer."""

    reachable: bool
    last_flush_age_s: float | None
    backlog_bytes: int
    backlog_flushes: int
    dropped_events: int
    last_drop_ns: int | None
    flushes: int
    failed_flushes: int
    duplicate_flushes: int
    last_error: str | None


class SharedWriter:
    """Applies task deltas to Redis (see the module docstring). `flush` runs on one thread."""

    def __init__(
        self,
        connection: SharedConnection,
        keys: SharedKeys,
        encoder: FlushEncoder,
        replica: str,
        *,
        max_bytes: int,
        clock: Clock,
        coverage_start_ns: int,
    ) -> None:
        self.connection = connection
        self.keys = keys
        self.encoder = encoder
        self.replica = replica
        self.max_bytes = max_bytes
        self.clock = clock
        self.coverage_start_ns = coverage_start_ns
        self._backlog: deque[TaskFlush] = deque()
        self._backlog_bytes = 0
        self._lock = threading.Lock()
        self._script: Any = None
        self._epoch: str | None = None
        self._reachable = True
        self._last_ok: float | None = None
        self._last_error: str | None = None
        self._last_logged = 0.0
        self.dropped_events = 0
        self.last_drop_ns: int | None = None
        self.flushes = 0
        self.failed_flushes = 0
        self.duplicate_flushes = 0

    # -- the writer's thread ---------------------------------------------------------------------

    def flush(self, deltas: Mapping[str, TaskDelta], dropped_before: int = 0) -> None:
        """Queue ``deltas`` (one flush per task) and apply the backlog in order, until it is
        empty or Redis fails. ``dropped_before`` counts events the buffer could not hold."""
        if dropped_before:
            self._count_dropped(dropped_before)
        with self._lock:
            fresh = not self._backlog
        for task, delta in deltas.items():
            flushes = self.encoder.encode(task, delta)
            size = sum(flush.bytes for flush in flushes)
            with self._lock:
                # A task's flushes go whole or not at all. They always go when nothing waited
                # before this call (the delta buffer bounds them already); behind a backlog
                # (Redis unreachable) they must fit under the bound.
                keep = fresh or self._backlog_bytes + size <= self.max_bytes
                if keep:
                    self._backlog.extend(flushes)
                    self._backlog_bytes += size
            if not keep:
                self._count_dropped(delta.events)
        self._apply_backlog(list(deltas))

    def _apply_backlog(self, tasks: list[str]) -> None:
        try:
            client = self.connection.get()
            if self._script is None:
                self._script = client.register_script(APPLY_SCRIPT)
            while True:
                with self._lock:
                    if not self._backlog:
                        break
                    flush = self._backlog[0]
                applied = self._script(
                    keys=flush.keys, args=[self.replica, flush.sequence, APPLIED_KEEP_MS, flush.document], client=client
                )
                with self._lock:
                    self._backlog.popleft()
                    self._backlog_bytes -= flush.bytes
                self.flushes += 1
                if not applied:
                    self.duplicate_flushes += 1
            self._heartbeat(client, tasks)
        except REDIS_ERRORS as error:
            self.failed_flushes += 1
            self._failed(error)
            return
        if not self._reachable:
            logger.warning("shared state %s is reachable again; buffered deltas applied", self._where())
        self._reachable = True
        self._last_ok = time.monotonic()
        self._last_error = None

    def _heartbeat(self, client: Any, tasks: list[str]) -> None:
        if tasks:
            client.sadd(self.keys.tasks, *tasks)
        token = secrets.token_hex(8)
        epoch = client.set(self.keys.epoch, token, nx=True, get=True) or token  # SET NX GET: Redis 7
        if self._epoch is not None and epoch != self._epoch:
            # The shared state was emptied (a Redis restart without persistence, a flush): it
            # holds only what arrived since, so this replica's coverage starts again now.
            self.coverage_start_ns = self.clock.now_ns()
            logger.warning(
                "shared state %s lost its data (its epoch changed): answers cover only what arrives from now on",
                self._where(),
            )
        self._epoch = epoch
        status = {"last_flush_ns": self.clock.now_ns(), "coverage_start_ns": self.coverage_start_ns}
        client.hset(self.keys.replicas, self.replica, json.dumps(status))

    def leave(self) -> None:
        """At shutdown, after the last flush: take this replica off the replicas hash."""
        try:
            if not self._backlog:
                self.connection.get().hdel(self.keys.replicas, self.replica)
        except REDIS_ERRORS as error:
            logger.warning("could not deregister from the shared state %s: %s", self._where(), error)

    def _failed(self, error: BaseException) -> None:
        self._last_error = f"{type(error).__name__}: {error}"
        now = time.monotonic()
        if self._reachable or now - self._last_logged >= 60:
            self._last_logged = now
            logger.warning(
                "shared state %s unreachable (%s); deltas are buffered (%d bytes) and applied on recovery",
                self._where(),
                self._last_error,
                self._backlog_bytes,
            )
        self._reachable = False

    def _count_dropped(self, events: int) -> None:
        if not events:
            return
        self.dropped_events += events
        self.last_drop_ns = self.clock.now_ns()
        logger.warning(
            "shared-state buffer full (%d bytes): %d events were left out of the shared state", self.max_bytes, events
        )

    def _where(self) -> str:
        return self.connection.address.display()

    # -- any thread --------------------------------------------------------------------------------

    def status(self) -> WriterStatus:
        last_ok = self._last_ok
        with self._lock:
            backlog_bytes, backlog_flushes = self._backlog_bytes, len(self._backlog)
        return WriterStatus(
            reachable=self._reachable,
            last_flush_age_s=None if last_ok is None else round(time.monotonic() - last_ok, 3),
            backlog_bytes=backlog_bytes,
            backlog_flushes=backlog_flushes,
            dropped_events=self.dropped_events,
            last_drop_ns=self.last_drop_ns,
            flushes=self.flushes,
            failed_flushes=self.failed_flushes,
            duplicate_flushes=self.duplicate_flushes,
            last_error=self._last_error,
        )
