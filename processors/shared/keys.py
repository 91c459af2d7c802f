"""Every Redis key of the shared state, named in one place.

All keys start with ``shared_state.key_prefix`` (``P``, default ``otel-impact``). A task's keys
share one Cluster hash slot through the hash tag ``{P:t:<task>}``, so the flush script and the
multi-key reads (``PFCOUNT`` over many buckets) of one task run on one node; different tasks
spread over the Cluster. Task names that are not plain (``[A-Za-z0-9_.:-]``) are written as a
digest, so a ``{`` or ``}`` in a name cannot break the tag.

Per task ``T`` (``tag = {P:t:T}``):

========================================= ======== ===================================================
key                                       type     holds
========================================= ======== ===================================================
``tag:series``                            hash     series id → JSON list of its segment values
``tag:meta``                              hash     task counters (late/future clamped, overflow)
``tag:applied``                           hash     replica → last flush sequence applied (exactly once)
``tag:c:<tier>:<bucket>``                 hash     ``<sid>:<column>`` → count (revenue as a float)
``tag:l:<tier>:<bucket>``                 hash     ``<sid>:<index>`` → durations in that log bucket
``tag:u:<tier>:<bucket>:<sid>``           HLL      distinct users (``sid`` ``*``: the whole task)
``tag:i:<tier>:<bucket>:<sid>``           HLL      distinct users with a bad event (impacted)
``tag:k:<tier>:<bucket>:<sid>``           zset     impacted customers by bad events (trimmed)
``tag:kx:<tier>:<bucket>``                hash     ``sid`` → the largest count trimmed off (error)
``tag:v:<hour>``                          hash     minute → task events (loss detection)
``tag:scratch``                           HLL      a query's union of very many HLLs (deleted at once)
========================================= ======== ===================================================

Global: ``P:tasks`` (set of task names), ``P:replicas`` (hash: replica → JSON status),
``P:epoch`` (a random token set once: when it changes, Redis lost its data), and the
leader's keys under the tag ``{P:leader}``: ``:lease``, ``:fence``, ``:alerts``, ``:timeline``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Final

__all__ = ["ALL_SERIES", "LeaderKeys", "SharedKeys", "TaskKeys", "series_id"]

ALL_SERIES: Final = "*"
"""The series id of a task's task-wide HyperLogLogs (every segment at once)."""

_PLAIN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def series_id(values: Sequence[str]) -> str:
    """The id every replica gives the series of segment ``values`` (no coordination needed)."""
    encoded = json.dumps(list(values), ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.blake2b(encoded, digest_size=6).hexdigest()


class TaskKeys:
    """The keys of one task (see the module docstring)."""

    __slots__ = ("applied", "meta", "scratch", "series", "tag")

    def __init__(self, prefix: str, task: str) -> None:
        name = task if _PLAIN.fullmatch(task) else "~" + hashlib.blake2b(task.encode(), digest_size=8).hexdigest()
        self.tag = f"{{{prefix}:t:{name}}}"
        self.series = f"{self.tag}:series"
        self.meta = f"{self.tag}:meta"
        self.applied = f"{self.tag}:applied"
        self.scratch = f"{self.tag}:scratch"

    def counts(self, tier: int, bucket: int) -> str:
        return f"{self.tag}:c:{tier}:{bucket}"

    def latency(self, tier: int, bucket: int) -> str:
        return f"{self.tag}:l:{tier}:{bucket}"

    def users(self, tier: int, bucket: int, sid: str) -> str:
        return f"{self.tag}:u:{tier}:{bucket}:{sid}"

    def impacted(self, tier: int, bucket: int, sid: str) -> str:
        return f"{self.tag}:i:{tier}:{bucket}:{sid}"

    def top(self, tier: int, bucket: int, sid: str) -> str:
        return f"{self.tag}:k:{tier}:{bucket}:{sid}"

    def top_trimmed(self, tier: int, bucket: int) -> str:
        return f"{self.tag}:kx:{tier}:{bucket}"

    def volume(self, hour: int) -> str:
        return f"{self.tag}:v:{hour}"


class LeaderKeys:
    """The keys of SLO evaluation's single leader: its lease, fencing counter and alert state."""

    __slots__ = ("alerts", "fence", "lease", "tag", "timeline")

    def __init__(self, prefix: str) -> None:
        self.tag = f"{{{prefix}:leader}}"
        self.lease = f"{self.tag}:lease"
        self.fence = f"{self.tag}:fence"
        self.alerts = f"{self.tag}:alerts"
        self.timeline = f"{self.tag}:timeline"


class SharedKeys:
    """The key names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.tasks = f"{prefix}:tasks"
        self.replicas = f"{prefix}:replicas"
        self.epoch = f"{prefix}:epoch"
        self.leader = LeaderKeys(prefix)
        self._tasks: dict[str, TaskKeys] = {}

    def task(self, name: str) -> TaskKeys:
        keys = self._tasks.get(name)
        if keys is None:
            if len(self._tasks) > 4096:  # bounded: task names are capped by sli.max_tasks anyway
                self._tasks.clear()
            keys = self._tasks[name] = TaskKeys(self.prefix, name)
        return keys
