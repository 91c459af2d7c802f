"""The SLI engine: a `BatchAnalyzer` that turns task spans into per-segment SLI state.

``analyze(batch)`` runs on the processor's event loop for every accepted trace request. Its hot
loop reads each span's attributes through the lean view (undecoded AnyValue bytes), skips
spans that are not task events after one or two key tests, and files each event into a pending
group per (task, segment, minute); the groups are folded into the series' buckets and sketches
once per batch, with the numpy work done for all groups at once (`BatchArrays`). Nothing here
raises on bad span data: odd values are counted or read as ``unknown``.

Time: an event's time is its span's end. Ends older than ``lateness`` before the batch's arrival
are clamped to that bound, ends further than ``future_tolerance`` ahead are clamped to the
arrival time; both are counted per task (``late_clamped``, ``future_clamped``).

The caller drives housekeeping: ``tick()`` every second or so (checkpoints every
``checkpoint_interval``, prunes old state) and ``close()`` at shutdown (final checkpoint). There
is no hidden thread.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from otel_impact._attributes import TASK_NAME, TASK_OUTCOME, TASK_ROOT, TASK_VALUE
from otel_impact.processors.batch import TraceBatch
from otel_impact.processors.clock import Clock, SystemClock
from otel_impact.processors.durations import MINUTE_NS
from otel_impact.proto import view

from .aggregates import BatchArrays, PendingGroup, Series, histogram_bounds
from .buckets import Layout
from .config import SliConfig
from .segments import SegmentReader, _text
from .sketches import SketchParams
from .store import StateStore
from .tasks import OVERFLOW, CompiledMatch, TaskState, compile_matches

__all__ = ["NOT_A_PSEUDONYM", "SliEngine"]

logger = logging.getLogger("otel_impact.sli")

HTTP_STATUS: Final = "http.response.status_code"
HTTP_STATUS_OLD: Final = "http.status_code"
ERROR_TYPE: Final = "error.type"
HTTP_ROUTE: Final = "http.route"
SERVICE_NAME: Final = "service.name"
STATUS_ERROR: Final = 2
# AnyValue bytes: bool false, and the strings "false", "success", "failure".
_NOT_ROOT_BOOL: Final = b"\x10\x00"
_NOT_ROOT_STR: Final = b"\x0a\x05false"
_NOT_ROOT: Final = (_NOT_ROOT_BOOL, _NOT_ROOT_STR)
_SUCCESS: Final = b"\x0a\x07success"
_FAILURE: Final = b"\x0a\x07failure"
_MEMO_LIMIT: Final = 4096
_USER_MEMO_LIMIT: Final = 16384
"""Distinct user values whose text is remembered (about 4 MB); the memo is emptied when full."""
PSEUDONYM: Final = re.compile(r"[0-9a-f]{32}")
NOT_A_PSEUDONYM: Final = "(not a pseudonym)"
"""Stands in the top-customers list for user values that are not pseudonyms: never listed raw."""


class SliEngine:
    """Derives user-task SLIs from trace batches. See the module docstring for the contract."""

    name = "sli"

    def __init__(self, config: SliConfig, *, clock: Clock | None = None, state_dir: str | Path | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.reader = SegmentReader(config.dimensions)
        self.sketch_params = SketchParams(config.hll_lg_k, config.kll_k, config.top_customers_lg_map)
        self.count_layout = Layout.from_tiers(config.count_tiers)
        self.sketch_layout = Layout.from_tiers(config.sketch_tiers)
        self.tasks: dict[str, TaskState] = {}
        self.series_count = 0
        self.untracked_task_events = 0
        self.batches = 0
        self.task_events = 0
        self.errors = 0
        self._next_series_id = 1
        self._tasks_by_raw: dict[bytes, TaskState | None] = {}
        self._matches = compile_matches(config)
        self._resource_memo: dict[tuple[Any, ...], tuple[tuple[Any, ...], tuple[CompiledMatch, ...]]] = {}
        self._http_memo: dict[bytes, int] = {}
        self._status_memo: dict[bytes, int] = {}
        self._user_texts: dict[bytes, str] = {}
        self._touched: set[Series] = set()
        self._lateness_ns = round(config.lateness_s * 1e9)
        self._future_ns = round(config.future_tolerance_s * 1e9)
        self._resource_keys = (SERVICE_NAME, *(k for k in self.reader.attribute_keys if k is not None))
        self.coverage_start_ns = self.clock.now_ns()
        self._last_checkpoint = self.clock.monotonic()
        self._last_prune = self._last_checkpoint
        self.store: StateStore | None = None
        for task in config.tasks:
            self.ensure_task(task.name)
        if state_dir is not None:
            self.store = StateStore.open(Path(state_dir), fingerprint=self.state_fingerprint())
            self.store.restore_into(self)

    # -- hot path -------------------------------------------------------------------------------

    def analyze(self, batch: TraceBatch) -> None:
        """Fold one batch's task events in. Never raises: errors are counted and logged once."""
        if not self.config.enabled:
            return
        try:
            pending = self._collect(batch)
            self._fold(pending)
        except Exception:  # a bug must not cost the batch its forwarding
            self.errors += 1
            logger.exception(
                "SLI analysis failed for a batch of %d spans; the batch is still forwarded", batch.span_count
            )
        self.batches += 1

    def _collect(self, batch: TraceBatch) -> dict[tuple[Any, ...], PendingGroup]:
        # Attributes are read as ``attrs[key] if key in attrs``: two container calls that cost
        # less together than one ``attrs.get`` (whose argument parsing dominates), and a missing
        # key costs only the ``in``. Events are grouped by (task, minute, *segment key).
        now = batch.received_ns
        low = now - self._lateness_ns
        high = now + self._future_ns
        pending: dict[tuple[Any, ...], PendingGroup] = {}
        key_of = self.reader.key
        user_key = self.config.user_attribute
        http_memo = self._http_memo
        status_memo = self._status_memo
        untracked = 0
        for resource_spans in batch.view.resource_spans:
            resource_values, matches = self._resource_context(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attrs = span.attributes
                    if TASK_NAME in attrs:
                        if TASK_ROOT in attrs and attrs[TASK_ROOT] in _NOT_ROOT:
                            continue
                        task_ref: Any = attrs[TASK_NAME]
                    elif matches:
                        task_ref = self._match(span, attrs, matches)
                        if task_ref is None:
                            continue
                    else:
                        continue
                    end = span.end_time_unix_nano
                    duration = end - span.start_time_unix_nano
                    if duration < 0:
                        duration = 0
                    clamped = 0
                    if end < low:
                        end, clamped = low, 1
                    elif end > high:
                        end, clamped = now, 2
                    minute = end // MINUTE_NS
                    pending_key = key_of(attrs, span, resource_values, task_ref, minute)
                    group = pending.get(pending_key)
                    if group is None:
                        group = pending[pending_key] = self._group_for(task_ref, pending_key[2:], minute, now)
                    task = group.task
                    if task is None:
                        untracked += 1
                        continue
                    if clamped:
                        if clamped == 1:
                            task.late_clamped += 1
                        else:
                            task.future_clamped += 1
                    raw_outcome = attrs[TASK_OUTCOME] if TASK_OUTCOME in attrs else None  # noqa: SIM401 (faster)
                    if raw_outcome == _FAILURE:
                        bad = True
                    elif raw_outcome == _SUCCESS:
                        bad = False
                    else:
                        bad = False
                        if task.status_error:
                            status = span.status
                            if status:
                                code = status_memo.get(status)
                                if code is None:
                                    code = self._status_code(status)
                                bad = code == STATUS_ERROR
                        if not bad:
                            raw_http = attrs[HTTP_STATUS] if HTTP_STATUS in attrs else None  # noqa: SIM401
                            if not raw_http and HTTP_STATUS_OLD in attrs:
                                raw_http = attrs[HTTP_STATUS_OLD]
                            if raw_http is not None:
                                code = http_memo.get(raw_http)
                                if code is None:
                                    code = self._http_code(raw_http)
                                bad = code in task.http_bad_codes
                            if not bad and task.slow_ns is not None and duration > task.slow_ns:
                                bad = True
                        if task.has_error_rules:
                            decided = task.bad_error_type(view.decode_str(attrs.get(ERROR_TYPE)))
                            if decided is not None:
                                bad = decided
                    group.durations_ns.append(duration)
                    if user_key in attrs:
                        raw_user = attrs[user_key]
                        group.users.add(raw_user)
                    else:
                        raw_user = None
                    if bad:
                        group.bad += 1
                        value = view.decode_double(attrs.get(TASK_VALUE))
                        group.revenue += task.default_value if value is None or value != value else value
                        if raw_user is not None:
                            group.bad_users[raw_user] = group.bad_users.get(raw_user, 0) + 1
        self.untracked_task_events += untracked
        return pending

    def _group_for(self, task_ref: Any, key: object, minute: int, now: int) -> PendingGroup:
        """A new pending group for a (task, segment key, minute) first seen in this batch."""
        if isinstance(task_ref, TaskState):
            task: TaskState | None = task_ref
        else:
            task = self._tasks_by_raw.get(task_ref)
            if task is None and task_ref not in self._tasks_by_raw:
                task = self._task_for_raw(task_ref)
        if task is None:
            return PendingGroup(None, None, minute)
        series = task.raw_keys.get(key)
        if series is None:
            series = self._series_for(task, key, now)
        return PendingGroup(task, series, minute)

    def _fold(self, pending: dict[tuple[Any, ...], PendingGroup]) -> None:
        groups = [group for group in pending.values() if group.durations_ns]
        if not groups:
            return
        batch = BatchArrays.of(groups)
        user_text = self._user_texts
        offset = 0
        for index, group in enumerate(groups):
            task, series = group.task, group.series
            assert task is not None and series is not None
            count = len(group.durations_ns)
            users = {user_text.get(raw) or self._user_text(raw) for raw in group.users}
            users.discard("")
            bad_users: dict[str, int] = {}
            top_keys: dict[str, int] = {}
            for raw, bad_count in group.bad_users.items():
                user = user_text.get(raw) or self._user_text(raw)
                if not user:
                    continue
                bad_users[user] = bad_users.get(user, 0) + bad_count
                top = user if PSEUDONYM.fullmatch(user) else NOT_A_PSEUDONYM
                top_keys[top] = top_keys.get(top, 0) + bad_count
            group.users, group.bad_users, group.top_keys = users, bad_users, top_keys
            series.fold(group, batch, index)
            offset += count
            task.volume[group.minute] = task.volume.get(group.minute, 0) + count
            if series is task.overflow_series:
                task.overflow_events += count
            self._touched.add(series)
        self.task_events += offset

    # -- tasks, series, resources ---------------------------------------------------------------

    def _resource_context(self, attributes: Any) -> tuple[tuple[Any, ...], tuple[CompiledMatch, ...]]:
        get = attributes.get
        memo_key = tuple(get(key) for key in self._resource_keys)
        context = self._resource_memo.get(memo_key)
        if context is None:
            service = view.decode_str(memo_key[0])
            matches = tuple(m for m in self._matches if m.applies_to_service(service))
            context = (self.reader.resource_values(attributes), matches)
            if len(self._resource_memo) >= _MEMO_LIMIT:
                self._resource_memo.clear()
            self._resource_memo[memo_key] = context
        return context

    def _match(self, span: Any, attrs: Any, matches: tuple[CompiledMatch, ...]) -> TaskState | None:
        kind = span.kind
        name = span.name
        route = None
        for match in matches:
            if match.http_routes and route is None:
                route = view.decode_str(attrs.get(HTTP_ROUTE))
            if match.matches(kind, name, route):
                return self.tasks.get(match.task)
        return None

    def _user_text(self, raw: bytes) -> str:
        """A user attribute's value as text (memoized: the same customers come back batch after batch)."""
        if raw and raw[0] == 0x0A and len(raw) > 1 and raw[1] < 0x80 and len(raw) == raw[1] + 2:
            text = raw[2:].decode("utf-8", "replace")
        else:
            text = _text(raw) if raw else ""
        if len(self._user_texts) >= _USER_MEMO_LIMIT:
            self._user_texts.clear()
        self._user_texts[raw] = text
        return text

    def _status_code(self, raw: bytes) -> int:
        code = view.status_code(raw)
        if len(self._status_memo) < _MEMO_LIMIT:
            self._status_memo[raw] = code
        return code

    def _http_code(self, raw: bytes) -> int:
        code = view.decode_int(raw)
        if code is None:
            text = view.decode_str(raw)
            code = int(text) if text is not None and text.isdigit() and len(text) <= 3 else 0
        if len(self._http_memo) < _MEMO_LIMIT:
            self._http_memo[raw] = code
        return code

    def _task_for_raw(self, raw: bytes) -> TaskState | None:
        name = view.decode_str(raw)
        task = None
        if name is not None and 0 < len(name) <= 64:
            task = self.tasks.get(name)
            if task is None and self.config.auto_tasks and len(self.tasks) < self.config.max_tasks:
                task = self.ensure_task(name)
        if task is not None or len(self._tasks_by_raw) < _MEMO_LIMIT:
            self._tasks_by_raw[raw] = task
        return task

    def ensure_task(self, name: str) -> TaskState:
        """The task named ``name``, created if new (configured tasks, restored tasks, auto tasks)."""
        task = self.tasks.get(name)
        if task is None:
            task = self.tasks[name] = TaskState(name, self.config)
        return task

    def _series_for(self, task: TaskState, key: object, now: int) -> Series:
        values = self.reader.decode(key)
        series = task.series.get(values)
        if series is None:
            if len(task.series) >= self.config.max_series_per_task or self.series_count >= self.config.max_series_total:
                series = self.overflow_series(task, now)
            else:
                series = self.new_series(task, values, now)
        if len(task.raw_keys) >= _MEMO_LIMIT:
            task.raw_keys.clear()
        task.raw_keys[key] = series
        return series

    def new_series(
        self, task: TaskState, values: tuple[str, ...], created_ns: int, series_id: int | None = None
    ) -> Series:
        if series_id is None:
            series_id = self._next_series_id
        self._next_series_id = max(self._next_series_id, series_id + 1)
        series = Series(
            series_id,
            task.name,
            values,
            thresholds_s=task.thresholds_s,
            histogram_bounds_s=histogram_bounds(task.thresholds_s),
            count_layout=self.count_layout,
            sketch_layout=self.sketch_layout,
            sketch_params=self.sketch_params,
            created_ns=created_ns,
        )
        if values == self.overflow_values:
            task.overflow_series = series
        else:
            task.series[values] = series
            self.series_count += 1
        return series

    @property
    def overflow_values(self) -> tuple[str, ...]:
        return tuple(OVERFLOW for _ in self.reader.names)

    def overflow_series(self, task: TaskState, now: int) -> Series:
        if task.overflow_series is None:
            self.new_series(task, self.overflow_values, now)
            logger.warning(
                "task %r reached its series cap (%d per task, %d in total); new segments go to the %s segment",
                task.name,
                self.config.max_series_per_task,
                self.config.max_series_total,
                OVERFLOW,
            )
        assert task.overflow_series is not None
        return task.overflow_series

    def all_series(self, task: TaskState) -> Iterator[Series]:
        yield from task.series.values()
        if task.overflow_series is not None:
            yield task.overflow_series

    # -- housekeeping ---------------------------------------------------------------------------

    def tick(self) -> None:
        """Periodic work, driven by the caller (e.g. every second): pruning and due checkpoints."""
        monotonic = self.clock.monotonic()
        if monotonic - self._last_prune >= 60:
            self._last_prune = monotonic
            self.prune(self.clock.now_ns())
        if self.store is not None and monotonic - self._last_checkpoint >= self.config.checkpoint_interval_s:
            self.checkpoint()

    def prune(self, now_ns: int) -> None:
        """Forget per-minute volumes older than loss detection needs, and series idle past retention."""
        loss = self.config.loss_detection
        oldest_minute = (now_ns - self._lateness_ns) // MINUTE_NS - (loss.window_s + loss.baseline_s) // 60 - 2
        retention = self.count_layout.retention_ns
        for task in self.tasks.values():
            for minute in [m for m in task.volume if m < oldest_minute]:
                del task.volume[minute]
            idle = [values for values, series in task.series.items() if series.last_ns < now_ns - retention]
            for values in idle:
                series = task.series.pop(values)
                self.series_count -= 1
                task.raw_keys.clear()
                self._touched.discard(series)
                if self.store is not None:
                    self.store.forget_series(series.id)

    def checkpoint(self) -> None:
        """Write what changed since the last checkpoint (no-op without a state dir)."""
        self._last_checkpoint = self.clock.monotonic()
        if self.store is None:
            return
        touched, self._touched = self._touched, set()
        self.store.save(self, touched)

    def close(self) -> None:
        """Final checkpoint and close the state file. Safe to call twice."""
        if self.store is not None:
            self.checkpoint()
            self.store.close()
            self.store = None

    def reset_state(self) -> None:
        """Drop all derived state (a checkpoint that did not restore) and start afresh."""
        self.tasks = {}
        self.series_count = 0
        self.untracked_task_events = self.task_events = 0
        self._tasks_by_raw.clear()
        self._touched.clear()
        self.coverage_start_ns = self.clock.now_ns()
        for task in self.config.tasks:
            self.ensure_task(task.name)

    def rebuild_volumes(self) -> None:
        """Recompute each task's per-minute volumes from its first count tier (after a restore)."""
        minute_tier_width = self.count_layout.widths_ns[0]
        for task in self.tasks.values():
            task.volume = {}
            for series in self.all_series(task):
                stamps, values = series.counts.stamps[0], series.counts.values[0]
                if stamps is None or values is None:
                    continue
                for stamp, total in zip(stamps.tolist(), values[:, 0].tolist(), strict=True):
                    if stamp >= 0 and total:
                        minute = stamp * minute_tier_width // MINUTE_NS
                        task.volume[minute] = task.volume.get(minute, 0) + int(total)

    def state_fingerprint(self) -> str:
        """What shapes the saved state; a checkpoint with another fingerprint is not loaded."""
        config = self.config
        parts = [
            ",".join(f"{d.name}={d.attribute or ''}/{d.flag or ''}" for d in config.dimensions),
            ",".join(map(repr, config.latency_thresholds_s)),
            ";".join(
                f"{t.name}:{t.latency_thresholds_s!r}" for t in config.tasks if t.latency_thresholds_s is not None
            ),
            repr(config.count_tiers),
            repr(config.sketch_tiers),
            f"{config.hll_lg_k}/{config.kll_k}/{config.top_customers_lg_map}",
        ]
        return "|".join(parts)

    def approx_bytes(self) -> int:
        """Approximate memory held by all series."""
        return sum(series.approx_bytes() for task in self.tasks.values() for series in self.all_series(task))
