"""The SLI hot loop: derive task events from a batch's spans and fold them into an `SliState`.

`SliAnalyzer.analyze(batch)` runs on the processor's event loop for every accepted trace
request. Its hot loop reads each span's attributes through the lean view (undecoded AnyValue
bytes), skips spans that are not task events after one or two key tests, and files each event
into a pending group per (task, segment, minute); the groups are folded into the series' buckets
and sketches once per batch, with the numpy work done for all groups at once (`BatchArrays`).
Nothing here raises on bad span data: odd values are counted or read as ``unknown``, a value
that does not decode is labelled ``(invalid)`` and counted (`SegmentReader.bad_values`), and a
span whose analysis still fails is counted (``errors``, ``bad_spans``) and skipped while the
rest of its batch is analysed.

Time: an event's time is its span's end. Ends older than ``lateness`` before the batch's arrival
are clamped to that bound, ends further than ``future_tolerance`` ahead are clamped to the
arrival time; both are counted per task (``late_clamped``, ``future_clamped``).

Caches: every raw value the analysis remembers is bounded by entries and by key size; the
table, the limits and the memos of plain values are in `value_memos`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, Final

from otel_impact._attributes import (
    ERROR_TYPE,
    MAX_TASK_NAME_LENGTH,
    PSEUDONYM_PATTERN,
    TASK_NAME,
    TASK_OUTCOME,
    TASK_ROOT,
    TASK_VALUE,
)
from otel_impact.processors.batch import TraceBatch
from otel_impact.processors.durations import MINUTE_NS
from otel_impact.proto import prefilter, view

from .aggregates import BatchArrays, PendingGroup, Series
from .explain_tracking import NO_PAIRS, Event, ExplainCollector
from .lag import UNKNOWN_SERVICE, lag_counts
from .propagation import EdgeTracker
from .results import AnalysisResult, GroupResult, add_counts
from .segments import MAX_VALUE_LENGTH
from .state import SliState
from .synthetic import SYNTHETIC, USER_AGENT_SYNTHETIC_TYPE, SyntheticSplit, is_synthetic
from .tasks import CompiledMatch, TaskState, compile_matches, scope_filter
from .value_memos import COMPOSITE_KEY_BYTES, MEMO_LIMIT, RAW_KEYS_LIMIT, TASK_KEY_BYTES, ValueMemos, key_bytes

__all__ = ["NOT_A_PSEUDONYM", "SliAnalyzer"]

logger = logging.getLogger("otel_impact.sli")

HTTP_STATUS: Final = "http.response.status_code"
HTTP_STATUS_OLD: Final = "http.status_code"
HTTP_ROUTE: Final = "http.route"
RPC_METHOD: Final = "rpc.method"
SERVICE_NAME: Final = "service.name"
STATUS_ERROR: Final = 2
# AnyValue bytes: bool false, and the strings "false", "success", "failure".
NOT_ROOT_ENCODINGS: Final = (b"\x10\x00", b"\x0a\x05false")
"""How ``impact.task.root=false`` looks on the wire (bool or string): an inherited task span,
which the analysis skips."""
_NOT_ROOT: Final = NOT_ROOT_ENCODINGS
TASK_SPANS_ONLY: Final = (TASK_NAME.encode(), (TASK_ROOT.encode(), NOT_ROOT_ENCODINGS))
"""`prefilter.filter_spans` arguments that keep the spans that can be task events: those with a
task name that are not inherited."""
_SUCCESS: Final = b"\x0a\x07success"
_FAILURE: Final = b"\x0a\x07failure"
_LOG_INTERVAL_S: Final = 60.0
"""The least time between two log lines about bad spans of one kind."""
NOT_A_PSEUDONYM: Final = "(not a pseudonym)"
"""Stands in the top-customers list for user values that are not pseudonyms: never listed raw."""

PendingGroups = dict[tuple[Any, ...], PendingGroup[TaskState]]
PendingLags = dict[tuple[str, str, int], list[int]]


class _Where:
    """One resource's task events of one task and route, while collecting: their lags, and how
    many lacked a customer (and were bad)."""

    __slots__ = ("bad_without", "lags", "without")

    def __init__(self) -> None:
        self.lags: list[int] = []
        self.without = 0
        self.bad_without = 0


"""Lags in nanoseconds by (task, service, minute of arrival), while collecting."""
ResourceContext = tuple[tuple[Any, ...], tuple[CompiledMatch, ...], str, bool]
"""A resource's segment values, task matches, service name, and whether it is synthetic."""


class SliAnalyzer:
    """Folds trace batches into ``state``. See the module docstring for the contract and the caches."""

    def __init__(self, state: SliState, *, synthetic: SliAnalyzer | None = None) -> None:
        config = state.config
        self.state = state
        self.config = config
        self.reader = state.reader
        self.batches = 0
        self.errors = 0
        """Spans, and batches, whose analysis failed (the batch is still forwarded; for a bad span
        the rest of its batch is still analysed)."""
        self.bad_spans = 0
        """Spans whose analysis failed (each also counts in ``errors``)."""
        self._last_logged: dict[str, float] = {}
        self._tasks_by_raw: dict[bytes, TaskState | None] = {}
        self._matches = compile_matches(config)
        self._scopes = scope_filter(self._matches)
        self.filters = prefilter.NATIVE and not self._matches
        """Whether `select` narrows a request down (the compiled pre-filter is there, and no task
        is matched by span name or route, which any span could be)."""
        self._resource_memo: dict[tuple[Any, ...], ResourceContext] = {}
        self.values = ValueMemos()
        self._lateness_ns = round(config.lateness_s * 1e9)
        self._future_ns = round(config.future_tolerance_s * 1e9)
        self._resource_keys = (
            SERVICE_NAME,
            *(k for k in self.reader.attribute_keys if k is not None),
            SYNTHETIC,
            USER_AGENT_SYNTHETIC_TYPE,
        )
        self.synthetic = synthetic or (None if state.synthetic is None else SliAnalyzer(state.synthetic))
        """Analyses the synthetic task events into ``state.synthetic`` (see `synthetic`)."""
        self._split = None if self.synthetic is None else SyntheticSplit()
        self.oversized = self.values.oversized
        """Values longer than their cache's key limit, by kind: read each time, never remembered."""
        self.explain = ExplainCollector(config, self.values.user_text) if config.explain.enabled else None
        self._raw_keys_held = 0
        """Entries added to the tasks' ``raw_keys`` since all were last emptied (an upper bound:
        pruning empties a task's memo without counting down)."""
        self._sample_below = config.propagation.sample_below
        self.edges = EdgeTracker(config.propagation, config.user_attribute) if self._sample_below else None
        """Service edges of the sampled traces (``sli.propagation``), when on."""

    def value_tally(self) -> dict[str, int]:
        """Values read but not usable as they were, by kind: ``oversized_<kind>`` (longer than its
        cache's key limit: not remembered; labels are also cut), and ``invalid_value`` (did not
        decode). Keys are fixed."""
        reader = self.reader
        return {
            **{f"oversized_{kind}": count for kind, count in self.oversized.items()},
            "oversized_label": reader.truncated_values,
            "invalid_value": reader.bad_values,
        }

    def select(self, data: bytes) -> bytes:
        """The part of the OTLP request ``data`` worth analysing: only its spans that can be task
        events and those of sampled traces (``sli.propagation``), when `filters` (``b""`` when none
        is), else ``data`` itself. Analysing the result gives the same answer as analysing ``data``.
        Raises ``DecodeError`` where `count_spans` would."""
        if not self.filters:
            return data
        key, unless = TASK_SPANS_ONLY
        return prefilter.filter_spans(data, key, unless, self._sample_below)[1]

    def absorb(
        self,
        *,
        errors: int = 0,
        bad_spans: int = 0,
        batches: int = 0,
        value_tally: dict[str, int] | None = None,
        previous_tally: dict[str, int] | None = None,
    ) -> None:
        """Add the counts of analysis done elsewhere (an analysis worker) to this analyzer's, so
        one set of figures covers both: ``errors``, ``bad_spans`` and ``batches`` are increments;
        ``value_tally`` is the worker's cumulative tally and ``previous_tally`` its last one."""
        self.errors += errors
        self.bad_spans += bad_spans
        self.batches += batches
        if value_tally is None:
            return
        previous = previous_tally or {}
        reader = self.reader
        for kind, count in value_tally.items():
            increment = count - previous.get(kind, 0)
            if not increment:
                continue
            if kind == "oversized_label":
                reader.truncated_values += increment
            elif kind == "invalid_value":
                reader.bad_values += increment
            elif kind.startswith("oversized_"):
                self.oversized[kind.removeprefix("oversized_")] += increment

    def forget_tasks(self) -> None:
        """Drop what the caches know of tasks (after the state's tasks were replaced)."""
        self._tasks_by_raw.clear()
        self._raw_keys_held = 0

    # -- hot path -------------------------------------------------------------------------------

    def analyze(self, batch: TraceBatch) -> None:
        """Fold one batch's task events into the state. Never raises: errors are counted and logged."""
        if not self.config.enabled:
            return
        result = self.results((batch,))
        try:
            self.state.apply(result)
        except Exception as error:  # a bug must not cost the batch its forwarding
            self.errors += 1
            self._log_once_a_minute(
                f"apply:{type(error).__name__}",
                f"SLI analysis failed to fold a batch of {batch.span_count} spans; the batch is still forwarded",
                error,
            )

    def results(self, batches: Iterable[TraceBatch]) -> AnalysisResult:
        """Analyse ``batches`` together into one `AnalysisResult` without changing the state's
        figures (only its shape: new tasks and series). Never raises: a batch that fails is
        counted in ``errors`` and logged, the others are still analysed.

        Events of several batches in the same (task, segment, minute) become one group, so
        analysing small batches together costs less than one by one.
        """
        result = AnalysisResult()
        pending: PendingGroups = {}
        lags: PendingLags = {}
        events: list[Event] | None = None if self.explain is None else []
        for batch in batches:
            try:
                self._collect(batch, pending, lags, result, events)
            except Exception as error:  # a bug must not cost the batch its forwarding
                self.errors += 1
                self._log_once_a_minute(
                    f"batch:{type(error).__name__}",
                    f"SLI analysis failed for a batch of {batch.span_count} spans; the batch is still forwarded",
                    error,
                )
            self.batches += 1
        if self._split is not None:
            self._analyze_synthetic(self._split.take(), result)
        try:
            result.groups = self._results(pending)
            result.lags = {key: lag_counts(values) for key, values in lags.items()}
            if self.edges is not None:
                result.edges = self.edges.take()
            if events is not None and self.explain is not None:
                result.explain = self.explain.fold(events, iter(pending.values()))
        except Exception as error:
            self.errors += 1
            self._log_once_a_minute(
                f"fold:{type(error).__name__}", "SLI analysis failed to fold a batch; it is still forwarded", error
            )
        return result

    def _analyze_synthetic(self, batches: list[TraceBatch], result: AnalysisResult) -> None:
        """Analyse the synthetic task events held from this call's batches into ``result.synthetic``."""
        synthetic = self.synthetic
        if not batches or synthetic is None:
            return
        errors, bad_spans = synthetic.errors, synthetic.bad_spans
        result.synthetic = synthetic.results(batches)
        self.errors += synthetic.errors - errors
        self.bad_spans += synthetic.bad_spans - bad_spans

    def _collect(
        self,
        batch: TraceBatch,
        pending: PendingGroups,
        lags: PendingLags,
        result: AnalysisResult,
        events: list[Event] | None = None,
    ) -> None:
        # Attributes are read as ``attrs[key] if key in attrs``: two container calls that cost
        # less together than one ``attrs.get`` (whose argument parsing dominates), and a missing
        # key costs only the ``in``. Events are grouped by (task, minute, *segment key).
        now = batch.received_ns
        low = now - self._lateness_ns
        high = now + self._future_ns
        key_of = self.reader.key
        user_key = self.config.user_attribute
        values = self.values
        http_memo = values.http
        status_memo = values.status
        untracked = 0
        edges = self.edges
        parsed = batch.view if batch.view is not None else view.parse_traces(self.select(batch.data))
        arrival_minute = now // MINUTE_NS
        scopes = self._scopes
        split = self._split
        explain, explain_resource = self.explain, NO_PAIRS
        draw, keep_passing = (explain.random, explain.rate) if explain is not None else (None, 0.0)
        for resource_spans in parsed.resource_spans:
            resource_values, matches, service, synthetic = self._resource_context(resource_spans.resource.attributes)
            if synthetic and split is not None:
                split.hold_resource(resource_spans)
                continue
            if events is not None and explain is not None:
                explain_resource = explain.resource(resource_spans.resource.attributes)
            resource_where: dict[tuple[TaskState, Any], _Where] = {}
            for scope_spans in resource_spans.scope_spans:
                scoped = matches if scopes is None or not matches else scopes.narrow(matches, scope_spans.scope)
                for span in scope_spans.spans:
                    try:  # free when nothing is raised (3.11+): a bad span costs only itself
                        attrs = span.attributes
                        if edges is not None:
                            edges.see(span, attrs, service, now)
                        if TASK_NAME in attrs:
                            if TASK_ROOT in attrs and attrs[TASK_ROOT] in _NOT_ROOT:
                                continue
                            task_ref: Any = attrs[TASK_NAME]
                        elif scoped:
                            task_ref = self._match(span, attrs, scoped)
                            if task_ref is None:
                                continue
                        else:
                            continue
                        if (
                            split is not None
                            and (SYNTHETIC in attrs or USER_AGENT_SYNTHETIC_TYPE in attrs)
                            and split.hold_span(resource_spans, scope_spans, span)
                        ):
                            continue
                        end = span.end_time_unix_nano
                        lag = now - end
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
                        if HTTP_ROUTE in attrs:
                            route = attrs[HTTP_ROUTE]
                        elif RPC_METHOD in attrs:
                            route = attrs[RPC_METHOD]
                        else:
                            route = None
                        where = resource_where.get((task, route))
                        if where is None:
                            where = resource_where[(task, route)] = _Where()
                        where.lags.append(lag)
                        if clamped:
                            counters = result.counters_of(task.name)
                            if clamped == 1:
                                counters.late_clamped += 1
                            else:
                                counters.future_clamped += 1
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
                                        code = values.status_code(status)
                                    bad = code == STATUS_ERROR
                            if not bad:
                                raw_http = attrs[HTTP_STATUS] if HTTP_STATUS in attrs else None  # noqa: SIM401
                                if not raw_http and HTTP_STATUS_OLD in attrs:
                                    raw_http = attrs[HTTP_STATUS_OLD]
                                if raw_http is not None:
                                    code = http_memo.get(raw_http)
                                    if code is None:
                                        code = values.http_code(raw_http)
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
                            group.no_customer += 1
                            where.without += 1
                        if bad:
                            group.bad += 1
                            value = view.decode_double(attrs.get(TASK_VALUE))
                            group.revenue += task.default_value if value is None or value != value else value
                            if raw_user is not None:
                                group.bad_users[raw_user] = group.bad_users.get(raw_user, 0) + 1
                            else:
                                group.bad_no_customer += 1
                                where.bad_without += 1
                        if events is not None and (bad or draw() < keep_passing):  # type: ignore[misc]
                            events.append((task, minute, bad, raw_user, attrs, explain_resource))
                    except Exception as error:
                        self._bad_span(error)
            for (task, route), where in resource_where.items():
                key = (task.name, service, arrival_minute)
                held = lags.get(key)
                if held is None:
                    lags[key] = where.lags
                else:
                    held.extend(where.lags)
                route_name = (view.decode_str(route) or "")[:MAX_VALUE_LENGTH]
                place = (task.name, service, route_name, arrival_minute)
                counts = (len(where.lags) - where.without, where.without, where.bad_without)
                before = result.attribution.get(place)
                result.attribution[place] = counts if before is None else add_counts(before, counts)
        result.untracked += untracked
        if split is not None:
            split.close_batch(batch)

    def _bad_span(self, error: Exception) -> None:
        """Count a span whose analysis raised; log it once a minute per kind (a traceback once)."""
        self.errors += 1
        self.bad_spans += 1
        self._log_once_a_minute(
            f"span:{type(error).__name__}",
            "SLI analysis skipped a span it could not read; the rest of its batch is analysed "
            "(counted in impact_sli_analysis_errors)",
            error,
        )

    def _log_once_a_minute(self, kind: str, message: str, error: Exception) -> None:
        """Log ``message`` at most once a minute per ``kind``; the first time with a traceback."""
        now = time.monotonic()
        last = self._last_logged.get(kind)
        if last is not None and now - last < _LOG_INTERVAL_S:
            return
        first = last is None
        if first and len(self._last_logged) >= MEMO_LIMIT:
            self._last_logged.clear()
        self._last_logged[kind] = now
        logger.warning("%s (%s: %s)", message, type(error).__name__, error, exc_info=error if first else None)

    def _group_for(self, task_ref: Any, key: object, minute: int, now: int) -> PendingGroup[TaskState]:
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

    def _results(self, pending: PendingGroups) -> list[GroupResult[Series]]:
        """The pending groups as `GroupResult`s: their users decoded, their arrays computed at once."""
        groups = [group for group in pending.values() if group.durations_ns]
        if not groups:
            return []
        batch = BatchArrays.of(groups)
        values = self.values
        user_text = values.user_texts
        results: list[GroupResult[Series]] = []
        for index, group in enumerate(groups):
            task, series = group.task, group.series
            assert task is not None and series is not None
            users = {user_text.get(raw) or values.user_text(raw) for raw in group.users}
            users.discard("")
            bad_users: dict[str, int] = {}
            top_keys: dict[str, int] = {}
            for raw, bad_count in group.bad_users.items():
                user = user_text.get(raw) or values.user_text(raw)
                if not user:
                    continue
                bad_users[user] = bad_users.get(user, 0) + bad_count
                top = user if PSEUDONYM_PATTERN.fullmatch(user) else NOT_A_PSEUDONYM
                top_keys[top] = top_keys.get(top, 0) + bad_count
            group.users, group.bad_users, group.top_keys = users, bad_users, top_keys
            results.append(batch.result(index, group, task.name, series.values))
        return results

    # -- cache misses: tasks, series, resources, values ------------------------------------------

    def _resource_context(self, attributes: Any) -> ResourceContext:
        """A resource's segment values, the task matches that apply to it, and its service name."""
        get = attributes.get
        memo_key = tuple(get(key) for key in self._resource_keys)
        context = self._resource_memo.get(memo_key)
        if context is None:
            service = view.decode_str(memo_key[0])
            matches = tuple(m for m in self._matches if m.applies_to_service(service))
            name = UNKNOWN_SERVICE if not service else service[:MAX_VALUE_LENGTH]
            context = (self.reader.resource_values(attributes), matches, name, is_synthetic(attributes))
            if key_bytes(memo_key) <= COMPOSITE_KEY_BYTES:
                if len(self._resource_memo) >= MEMO_LIMIT:
                    self._resource_memo.clear()
                self._resource_memo[memo_key] = context
            else:
                self.oversized["resource"] += 1
        return context

    def _match(self, span: Any, attrs: Any, matches: tuple[CompiledMatch, ...]) -> TaskState | None:
        kind = span.kind
        name = span.name
        route = None
        for match in matches:
            if match.http_routes and route is None:
                route = view.decode_str(attrs.get(HTTP_ROUTE))
            if match.matches(kind, name, route) and (match.url_paths is None or match.matches_url(attrs)):
                return self.state.tasks.get(match.task)
        return None

    def _task_for_raw(self, raw: bytes) -> TaskState | None:
        name = view.decode_str(raw)
        task = None
        state = self.state
        if name is not None and 0 < len(name) <= MAX_TASK_NAME_LENGTH:
            task = state.tasks.get(name)
            if task is None and self.config.auto_tasks and len(state.tasks) < self.config.max_tasks:
                task = state.ensure_task(name)
        if len(raw) <= TASK_KEY_BYTES:
            if len(self._tasks_by_raw) >= MEMO_LIMIT:
                self._tasks_by_raw.clear()
            self._tasks_by_raw[raw] = task
        else:
            self.oversized["task_name"] += 1
        return task

    def _series_for(self, task: TaskState, key: object, now: int) -> Series:
        state = self.state
        values = self.reader.decode(key)
        series = task.series.get(values)
        if series is None:
            series = state.new_series(task, values, now) if state.has_room(task) else state.overflow_series(task, now)
        if key_bytes(key) <= COMPOSITE_KEY_BYTES:
            if self._raw_keys_held >= RAW_KEYS_LIMIT:
                for each in state.tasks.values():
                    each.raw_keys.clear()
                self._raw_keys_held = 0
            elif len(task.raw_keys) >= MEMO_LIMIT:
                self._raw_keys_held -= len(task.raw_keys)
                task.raw_keys.clear()
            task.raw_keys[key] = series
            self._raw_keys_held += 1
        else:
            self.oversized["segment"] += 1
        return series
