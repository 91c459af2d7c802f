"""The entries of the ``sli:`` section: success rules, task matches, tasks, dimensions, tiers and
loss detection, as frozen dataclasses, each with the reader that takes it from YAML.

Readers note problems in the `Problems` of the `Fields` they are given (field path, problem, fix)
and never raise; `processors.sli.config` assembles them into `SliConfig` and checks the whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from otel_impact.processors.config import Fields

HTTP_CLASS: Final = re.compile(r"[1-5]xx")
SPAN_KINDS: Final = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}


@dataclass(frozen=True)
class SuccessConfig:
    """When a task event is good. An explicit ``impact.task.outcome`` always wins.

    An event is bad when any of these holds: span status ERROR (``status_error``), an HTTP status
    code (``http.response.status_code``, else ``http.status_code``) in ``http_bad`` (classes like
    ``5xx`` or codes like ``429``), an ``error.type`` in ``error_types_bad`` (``"*"``: any), or a
    duration above ``latency_threshold_s``. An ``error.type`` in ``error_types_good`` makes the
    event good whatever else holds (e.g. a declined card is the customer's outcome, not ours).
    """

    status_error: bool = True
    http_bad: tuple[str, ...] = ("5xx",)
    error_types_bad: tuple[str, ...] = ()
    error_types_good: tuple[str, ...] = ()
    latency_threshold_s: float | None = None

    def is_bad_http(self, code: int) -> bool:
        return f"{code // 100}xx" in self.http_bad or str(code) in self.http_bad


MATCH_RULES: Final = ("service", "span_name", "http_route", "kind", "scope_name", "url_path")
"""The keys of a task's ``match``."""


@dataclass(frozen=True)
class TaskMatch:
    """Rules that make a span an event of a task without ``impact.task.name``.

    Every given field must match (lists are alternatives). ``service`` is the resource's
    ``service.name``; ``kind`` is ``server``, ``client``, ``internal``, ``producer`` or ``consumer``;
    ``scope_name`` the instrumentation scope's name (e.g. the browser's
    ``@opentelemetry/instrumentation-document-load``); ``url_path`` the path of the span's
    ``url.full`` (or older ``http.url``), as client spans such as the browser's fetches carry no
    ``http.route``: exact, or a prefix when it ends in ``*`` (``/api/cart/*``).
    """

    service: tuple[str, ...] = ()
    span_name: tuple[str, ...] = ()
    http_route: tuple[str, ...] = ()
    kind: tuple[str, ...] = ()
    scope_name: tuple[str, ...] = ()
    url_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskConfig:
    """One configured task. Unset fields take the section's defaults."""

    name: str
    match: TaskMatch | None = None
    success: SuccessConfig | None = None
    latency_thresholds_s: tuple[float, ...] | None = None
    value: float | None = None
    """Money at stake per failed event when the span carries no ``impact.task.value``."""


@dataclass(frozen=True)
class DimensionConfig:
    """A segment dimension: exactly one of ``attribute`` (span, else resource) or ``flag`` (a flag key)."""

    name: str
    attribute: str | None = None
    flag: str | None = None


@dataclass(frozen=True)
class TierConfig:
    """One resolution tier: buckets of ``width_s`` kept for ``keep_s``, then rolled up into the next."""

    width_s: int
    keep_s: int


@dataclass(frozen=True)
class LossDetectionConfig:
    """Telemetry loss: a task's event volume over ``window_s`` below ``drop_ratio`` of its
    average over the trailing ``baseline_s`` marks answers incomplete, once the baseline holds at
    least ``min_baseline_events`` per window."""

    window_s: int = 300
    baseline_s: int = 3600
    drop_ratio: float = 0.25
    min_baseline_events: int = 50


_Item = TypeVar("_Item")


def read_section(fields: Fields, key: str, read: Callable[[Fields], _Item], default: _Item) -> _Item:
    """``read`` over the mapping at ``key``, or ``default`` when it is not set."""
    return read(fields.take_section(key)) if fields.has(key) else default


def read_entries(
    fields: Fields, key: str, read: Callable[[Fields], _Item], default: tuple[_Item, ...]
) -> tuple[_Item, ...]:
    """``read`` over each mapping of the list at ``key``, or ``default`` when it is not set."""
    return tuple(read(entry) for entry in fields.take_entries(key)) if fields.has(key) else default


def read_success(fields: Fields) -> SuccessConfig:
    defaults = SuccessConfig()
    http_bad = fields.take_str_list("http_bad", defaults.http_bad, allow_single=True)
    for index, item in enumerate(http_bad):
        if not (HTTP_CLASS.fullmatch(item) or (item.isdigit() and 100 <= int(item) <= 599)):
            fields.problems.add(
                f"{fields.at('http_bad')}[{index}]",
                f"{item!r} is not an HTTP status class or code",
                "use a class such as 4xx or 5xx, or a code such as 429",
            )
    threshold = fields.take_duration("latency_threshold", None)
    if threshold is not None and threshold <= 0:
        fields.report("latency_threshold", "must be positive", "use e.g. 2s")
    success = SuccessConfig(
        status_error=fields.take_bool("status_error", defaults.status_error),
        http_bad=http_bad,
        error_types_bad=fields.take_str_list("error_types_bad", allow_single=True),
        error_types_good=fields.take_str_list("error_types_good", allow_single=True),
        latency_threshold_s=threshold,
    )
    fields.done()
    return success


def read_match(fields: Fields) -> TaskMatch:
    match = TaskMatch(
        service=fields.take_str_list("service", allow_single=True),
        span_name=fields.take_str_list("span_name", allow_single=True),
        http_route=fields.take_str_list("http_route", allow_single=True),
        kind=fields.take_str_list("kind", allow_single=True),
        scope_name=fields.take_str_list("scope_name", allow_single=True),
        url_path=fields.take_str_list("url_path", allow_single=True),
    )
    for index, path in enumerate(match.url_path):
        if not path.startswith("/") or "*" in path[:-1]:
            fields.problems.add(
                f"{fields.at('url_path')}[{index}]",
                f"{path[:80]!r} is not a URL path",
                "write a path such as /api/checkout, or /api/cart/* for every path under it",
            )
    for index, kind in enumerate(match.kind):
        if kind not in SPAN_KINDS:
            fields.problems.add(
                f"{fields.at('kind')}[{index}]", f"{kind!r} is not a span kind", f"use one of {', '.join(SPAN_KINDS)}"
            )
    fields.done()
    if not any(getattr(match, name) for name in MATCH_RULES):
        fields.problems.add(fields.path, "matches nothing", f"give {', '.join(MATCH_RULES[:-1])} or {MATCH_RULES[-1]}")
    return match


def read_task(fields: Fields) -> TaskConfig:
    task = TaskConfig(
        name=fields.take_str("name", "", if_missing="name the task, e.g. name: checkout"),
        match=read_section(fields, "match", read_match, None),
        success=read_section(fields, "success", read_success, None),
        latency_thresholds_s=fields.take_durations("latency_thresholds", ())
        if fields.has("latency_thresholds")
        else None,
        value=fields.take_float("value", None),
    )
    fields.done()
    return task


def read_dimension(fields: Fields) -> DimensionConfig:
    dimension = DimensionConfig(
        name=fields.take_str("name", "", if_missing="name the dimension, e.g. name: region"),
        attribute=fields.take_str("attribute", None),
        flag=fields.take_str("flag", None),
    )
    fields.done()
    if (dimension.attribute is None) == (dimension.flag is None):
        fields.problems.add(fields.path, "needs exactly one source", "give either attribute: <key> or flag: <flag key>")
    return dimension


def read_tier(fields: Fields) -> TierConfig:
    width = fields.take_duration("width", 0.0)
    keep = fields.take_duration("keep", 0.0)
    fields.done()
    if width <= 0 or keep <= 0:
        fields.problems.add(fields.path, "needs width and keep", "write e.g. {width: 1m, keep: 6h}")
    return TierConfig(int(width), int(keep))


def read_loss(fields: Fields) -> LossDetectionConfig:
    defaults = LossDetectionConfig()
    loss = LossDetectionConfig(
        window_s=int(fields.take_duration("window", defaults.window_s)),
        baseline_s=int(fields.take_duration("baseline", defaults.baseline_s)),
        drop_ratio=fields.take_float("drop_ratio", defaults.drop_ratio),
        min_baseline_events=fields.take_int("min_baseline_events", defaults.min_baseline_events),
    )
    fields.done()
    return loss
