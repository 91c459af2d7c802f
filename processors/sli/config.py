"""The ``sli:`` config section: tasks, success rules, segment dimensions, limits and time layout.

Plain frozen dataclasses, checked in one place (`SliConfig.validate`). `SliConfig.from_mapping`
reads the section as parsed from YAML (a mapping of plain values) and raises
`ConfigurationError` naming the field path (``sli.tasks[0].success.http_bad[1]``), the problem
and the fix. Durations accept ``300ms``, ``5m``, ``1h30m``, ``7d`` or a number of seconds.

Example::

    sli:
      dimensions:
        - {name: tier, attribute: impact.customer.tier}
        - {name: region, attribute: cloud.region}
        - {name: new_checkout, flag: new_checkout}
      tasks:
        - name: checkout
          value: 40.0
          latency_thresholds: [300ms, 1s]
          success: {http_bad: [5xx, "429"], latency_threshold: 2s}
        - name: search
          match: {service: [search-api], http_route: ["/api/search"], kind: [server]}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from otel_impact._exceptions import ConfigurationError
from otel_impact.processors.durations import parse_duration

__all__ = [
    "DimensionConfig",
    "LossDetectionConfig",
    "SliConfig",
    "SuccessConfig",
    "TaskConfig",
    "TaskMatch",
    "TierConfig",
]

SECTION: Final = "sli"
NAME_PATTERN: Final = re.compile(r"[a-z_][a-z0-9_]*")
TASK_NAME_PATTERN: Final = re.compile(r"[\w.:/-]{1,64}")
HTTP_CLASS: Final = re.compile(r"[1-5]xx")
SPAN_KINDS: Final = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
RESERVED_DIMENSIONS: Final = frozenset({"task", "outcome", "threshold", "window", "bound", "le"})


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


@dataclass(frozen=True)
class TaskMatch:
    """Rules that make a span an event of a task without ``impact.task.name``.

    Every given field must match (lists are alternatives). ``service`` is the resource's
    ``service.name``; ``kind`` is ``server``, ``client``, ``internal``, ``producer`` or ``consumer``.
    """

    service: tuple[str, ...] = ()
    span_name: tuple[str, ...] = ()
    http_route: tuple[str, ...] = ()
    kind: tuple[str, ...] = ()


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
    """Telemetry loss (F1): a task's event volume over ``window_s`` below ``drop_ratio`` of its
    average over the trailing ``baseline_s`` marks answers incomplete, once the baseline holds at
    least ``min_baseline_events`` per window."""

    window_s: int = 300
    baseline_s: int = 3600
    drop_ratio: float = 0.25
    min_baseline_events: int = 50


DEFAULT_COUNT_TIERS: Final = (TierConfig(60, 6 * 3600), TierConfig(600, 3 * 86_400), TierConfig(3600, 35 * 86_400))
DEFAULT_SKETCH_TIERS: Final = (TierConfig(60, 3600), TierConfig(3600, 2 * 86_400), TierConfig(86_400, 35 * 86_400))


@dataclass(frozen=True)
class SliConfig:
    """The SLI engine's settings (top-level ``sli:`` section)."""

    enabled: bool = True
    auto_tasks: bool = True
    """Count any span carrying ``impact.task.name`` as a task event, configured or not."""
    max_tasks: int = 100
    user_attribute: str = "impact.customer.hash"
    dimensions: tuple[DimensionConfig, ...] = (DimensionConfig("tier", attribute="impact.customer.tier"),)
    tasks: tuple[TaskConfig, ...] = ()
    default_success: SuccessConfig = field(default_factory=SuccessConfig)
    latency_thresholds_s: tuple[float, ...] = (0.3, 1.0)
    max_series_per_task: int = 200
    max_series_total: int = 1000
    lateness_s: float = 300.0
    future_tolerance_s: float = 60.0
    count_tiers: tuple[TierConfig, ...] = DEFAULT_COUNT_TIERS
    sketch_tiers: tuple[TierConfig, ...] = DEFAULT_SKETCH_TIERS
    hll_lg_k: int = 12
    kll_k: int = 200
    top_customers_lg_map: int = 7
    loss_detection: LossDetectionConfig = field(default_factory=LossDetectionConfig)
    checkpoint_interval_s: float = 5.0
    metrics_windows_s: tuple[int, ...] = (300, 3600)
    """Windows of the users / impacted-users gauges on ``/metrics`` and in OTLP metrics."""

    def task(self, name: str) -> TaskConfig | None:
        return next((task for task in self.tasks if task.name == name), None)

    def success_for(self, task: TaskConfig | None) -> SuccessConfig:
        return task.success if task is not None and task.success is not None else self.default_success

    def thresholds_for(self, task: TaskConfig | None) -> tuple[float, ...]:
        if task is not None and task.latency_thresholds_s is not None:
            return task.latency_thresholds_s
        return self.latency_thresholds_s

    def validate(self) -> SliConfig:
        """Check every cross-field rule; raise `ConfigurationError` naming the field and the fix."""
        _positive_int(self.max_tasks, "sli.max_tasks")
        _positive_int(self.max_series_per_task, "sli.max_series_per_task")
        _positive_int(self.max_series_total, "sli.max_series_total")
        if self.max_series_total < self.max_series_per_task:
            raise ConfigurationError(
                "sli.max_series_total",
                f"{self.max_series_total} is below max_series_per_task ({self.max_series_per_task})",
                "raise max_series_total or lower max_series_per_task",
            )
        if not self.user_attribute:
            raise ConfigurationError("sli.user_attribute", "is empty", "name the attribute holding the pseudonym")
        _validate_dimensions(self.dimensions)
        names: set[str] = set()
        for index, task in enumerate(self.tasks):
            path = f"sli.tasks[{index}]"
            if not TASK_NAME_PATTERN.fullmatch(task.name):
                raise ConfigurationError(
                    f"{path}.name",
                    f"{task.name!r} is not a task name",
                    "use 1-64 letters, digits, '.', '_', ':', '/', '-'",
                )
            if task.name in names:
                raise ConfigurationError(f"{path}.name", f"task {task.name!r} is defined twice", "merge the entries")
            names.add(task.name)
            if task.latency_thresholds_s is not None:
                _thresholds(task.latency_thresholds_s, f"{path}.latency_thresholds")
            if task.value is not None and task.value < 0:
                raise ConfigurationError(f"{path}.value", "is negative", "give the money at stake, 0 or more")
        _thresholds(self.latency_thresholds_s, "sli.latency_thresholds")
        _validate_tiers(self.count_tiers, "sli.count_tiers")
        _validate_tiers(self.sketch_tiers, "sli.sketch_tiers")
        for label, value, low, high in (
            ("sli.hll_lg_k", self.hll_lg_k, 4, 21),
            ("sli.kll_k", self.kll_k, 8, 65_535),
            ("sli.top_customers_lg_map", self.top_customers_lg_map, 3, 16),
        ):
            if not low <= value <= high:
                raise ConfigurationError(label, f"{value} is out of range", f"use {low} to {high}")
        loss = self.loss_detection
        if loss.window_s < 60 or loss.window_s % 60 or loss.baseline_s < loss.window_s or loss.baseline_s % 60:
            raise ConfigurationError(
                "sli.loss_detection",
                f"window {loss.window_s}s / baseline {loss.baseline_s}s are not whole minutes with baseline >= window",
                "use e.g. window: 5m, baseline: 1h",
            )
        if not 0 < loss.drop_ratio < 1:
            raise ConfigurationError(
                "sli.loss_detection.drop_ratio", f"{loss.drop_ratio} is not in (0, 1)", "use e.g. 0.25"
            )
        if self.lateness_s < 0 or self.future_tolerance_s < 0:
            raise ConfigurationError("sli.lateness", "a negative time", "use a duration such as 5m")
        if self.lateness_s > self.count_tiers[0].keep_s / 2:
            raise ConfigurationError(
                "sli.lateness", "is more than half the first count tier's keep", "lower lateness or keep more"
            )
        if self.checkpoint_interval_s <= 0:
            raise ConfigurationError("sli.checkpoint_interval", "must be positive", "use a duration such as 5s")
        for seconds in self.metrics_windows_s:
            if seconds < 60 or seconds % 60 or seconds > self.count_tiers[-1].keep_s:
                raise ConfigurationError(
                    "sli.metrics_windows",
                    f"{seconds}s is not a whole number of minutes within retention",
                    "use e.g. 5m, 1h",
                )
        return self

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> SliConfig:
        """Read the ``sli:`` section (``None`` or ``{}`` gives the defaults) and validate it."""
        if raw is None:
            return cls().validate()
        reader = _Reader(raw, SECTION)
        defaults = cls()
        config = cls(
            enabled=reader.boolean("enabled", defaults.enabled),
            auto_tasks=reader.boolean("auto_tasks", defaults.auto_tasks),
            max_tasks=reader.integer("max_tasks", defaults.max_tasks),
            user_attribute=reader.text("user_attribute", defaults.user_attribute),
            dimensions=reader.items("dimensions", _read_dimension, defaults.dimensions),
            tasks=reader.items("tasks", _read_task, ()),
            default_success=reader.section("default_success", _read_success, defaults.default_success),
            latency_thresholds_s=reader.durations("latency_thresholds", defaults.latency_thresholds_s),
            max_series_per_task=reader.integer("max_series_per_task", defaults.max_series_per_task),
            max_series_total=reader.integer("max_series_total", defaults.max_series_total),
            lateness_s=reader.duration("lateness", defaults.lateness_s),
            future_tolerance_s=reader.duration("future_tolerance", defaults.future_tolerance_s),
            count_tiers=reader.items("count_tiers", _read_tier, defaults.count_tiers),
            sketch_tiers=reader.items("sketch_tiers", _read_tier, defaults.sketch_tiers),
            hll_lg_k=reader.integer("hll_lg_k", defaults.hll_lg_k),
            kll_k=reader.integer("kll_k", defaults.kll_k),
            top_customers_lg_map=reader.integer("top_customers_lg_map", defaults.top_customers_lg_map),
            loss_detection=reader.section("loss_detection", _read_loss, defaults.loss_detection),
            checkpoint_interval_s=reader.duration("checkpoint_interval", defaults.checkpoint_interval_s),
            metrics_windows_s=tuple(int(s) for s in reader.durations("metrics_windows", defaults.metrics_windows_s)),
        )
        reader.reject_unknown()
        return config.validate()

    def with_changes(self, **changes: Any) -> SliConfig:
        """A validated copy with some fields replaced (for tests and the loader's overrides)."""
        return replace(self, **changes).validate()


# -- reading --------------------------------------------------------------------------------------


class _Reader:
    """Reads typed fields from one mapping, remembering which keys it used."""

    def __init__(self, raw: object, path: str) -> None:
        if not isinstance(raw, Mapping):
            raise ConfigurationError(path, f"is a {type(raw).__name__}, not a mapping", "write key: value pairs here")
        self.raw: Mapping[str, Any] = raw
        self.path = path
        self.used: set[str] = set()

    def _get(self, key: str) -> Any:
        self.used.add(key)
        return self.raw.get(key)

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def reject_unknown(self) -> None:
        unknown = sorted(set(map(str, self.raw)) - self.used)
        if unknown:
            raise ConfigurationError(
                f"{self.path}.{unknown[0]}",
                "is not a known field",
                f"remove it or fix its spelling (known: {', '.join(sorted(self.used))})",
            )

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigurationError(self.at(key), f"{value!r} is not true or false", "write true or false")
        return value

    def integer(self, key: str, default: int) -> int:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(self.at(key), f"{value!r} is not a whole number", "write a whole number")
        return value

    def number(self, key: str, default: float | None) -> float | None:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigurationError(self.at(key), f"{value!r} is not a number", "write a number such as 0.25")
        return float(value)

    def text(self, key: str, default: str) -> str:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ConfigurationError(self.at(key), f"{value!r} is not a string", "write a string")
        return value

    def optional_str(self, key: str) -> str | None:
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            raise ConfigurationError(self.at(key), f"{value!r} is not a non-empty string", "write a name")
        return value

    def strs(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, str | int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise ConfigurationError(self.at(key), f"{value!r} is not a list", "write a list such as [a, b]")
        out = []
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str | int):
                raise ConfigurationError(f"{self.at(key)}[{index}]", f"{item!r} is not a string", "write a string")
            out.append(str(item))
        return tuple(out)

    def duration(self, key: str, default: float) -> float:
        value = self._get(key)
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as error:
            raise ConfigurationError(self.at(key), str(error), "write e.g. 300ms, 5m or 1h") from None

    def optional_duration(self, key: str) -> float | None:
        if self.raw.get(key) is None:
            self.used.add(key)
            return None
        return self.duration(key, 0.0)

    def durations(self, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        value = self._get(key)
        if value is None:
            return tuple(float(v) for v in default)
        if not isinstance(value, list):
            raise ConfigurationError(self.at(key), f"{value!r} is not a list", "write a list such as [300ms, 1s]")
        out = []
        for index, item in enumerate(value):
            try:
                out.append(parse_duration(item))
            except ValueError as error:
                raise ConfigurationError(f"{self.at(key)}[{index}]", str(error), "write e.g. 300ms or 1s") from None
        return tuple(out)

    def items(self, key: str, read: Any, default: tuple[Any, ...]) -> tuple[Any, ...]:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, list):
            raise ConfigurationError(
                self.at(key), f"is a {type(value).__name__}, not a list", "write a list of entries"
            )
        return tuple(read(_Reader(item, f"{self.at(key)}[{index}]")) for index, item in enumerate(value))

    def section(self, key: str, read: Any, default: Any) -> Any:
        value = self._get(key)
        return default if value is None else read(_Reader(value, self.at(key)))


def _read_success(reader: _Reader) -> SuccessConfig:
    defaults = SuccessConfig()
    http_bad = reader.strs("http_bad", defaults.http_bad)
    for index, item in enumerate(http_bad):
        if not (HTTP_CLASS.fullmatch(item) or (item.isdigit() and 100 <= int(item) <= 599)):
            raise ConfigurationError(
                f"{reader.at('http_bad')}[{index}]",
                f"{item!r} is not an HTTP status class or code",
                "use a class such as 4xx or 5xx, or a code such as 429",
            )
    threshold = reader.optional_duration("latency_threshold")
    success = SuccessConfig(
        status_error=reader.boolean("status_error", defaults.status_error),
        http_bad=http_bad,
        error_types_bad=reader.strs("error_types_bad", ()),
        error_types_good=reader.strs("error_types_good", ()),
        latency_threshold_s=threshold,
    )
    if threshold is not None and threshold <= 0:
        raise ConfigurationError(reader.at("latency_threshold"), "must be positive", "use e.g. 2s")
    reader.reject_unknown()
    return success


def _read_match(reader: _Reader) -> TaskMatch:
    match = TaskMatch(
        service=reader.strs("service", ()),
        span_name=reader.strs("span_name", ()),
        http_route=reader.strs("http_route", ()),
        kind=reader.strs("kind", ()),
    )
    for index, kind in enumerate(match.kind):
        if kind not in SPAN_KINDS:
            raise ConfigurationError(
                f"{reader.at('kind')}[{index}]", f"{kind!r} is not a span kind", f"use one of {', '.join(SPAN_KINDS)}"
            )
    reader.reject_unknown()
    if not any((match.service, match.span_name, match.http_route, match.kind)):
        raise ConfigurationError(reader.path, "matches nothing", "give service, span_name, http_route or kind")
    return match


def _read_task(reader: _Reader) -> TaskConfig:
    name = reader.optional_str("name")
    if name is None:
        raise ConfigurationError(reader.at("name"), "is missing", "name the task, e.g. name: checkout")
    thresholds = (
        reader.durations("latency_thresholds", ()) if reader.raw.get("latency_thresholds") is not None else None
    )
    reader.used.add("latency_thresholds")
    task = TaskConfig(
        name=name,
        match=reader.section("match", _read_match, None),
        success=reader.section("success", _read_success, None),
        latency_thresholds_s=thresholds,
        value=reader.number("value", None),
    )
    reader.reject_unknown()
    return task


def _read_dimension(reader: _Reader) -> DimensionConfig:
    name = reader.optional_str("name")
    if name is None:
        raise ConfigurationError(reader.at("name"), "is missing", "name the dimension, e.g. name: region")
    dimension = DimensionConfig(name=name, attribute=reader.optional_str("attribute"), flag=reader.optional_str("flag"))
    reader.reject_unknown()
    if (dimension.attribute is None) == (dimension.flag is None):
        raise ConfigurationError(
            reader.path, "needs exactly one source", "give either attribute: <key> or flag: <flag key>"
        )
    return dimension


def _read_tier(reader: _Reader) -> TierConfig:
    width = reader.duration("width", 0.0)
    keep = reader.duration("keep", 0.0)
    reader.reject_unknown()
    if width <= 0 or keep <= 0:
        raise ConfigurationError(reader.path, "needs width and keep", "write e.g. {width: 1m, keep: 6h}")
    return TierConfig(int(width), int(keep))


def _read_loss(reader: _Reader) -> LossDetectionConfig:
    defaults = LossDetectionConfig()
    ratio = reader.number("drop_ratio", defaults.drop_ratio)
    loss = LossDetectionConfig(
        window_s=int(reader.duration("window", defaults.window_s)),
        baseline_s=int(reader.duration("baseline", defaults.baseline_s)),
        drop_ratio=defaults.drop_ratio if ratio is None else ratio,
        min_baseline_events=reader.integer("min_baseline_events", defaults.min_baseline_events),
    )
    reader.reject_unknown()
    return loss


# -- checks ---------------------------------------------------------------------------------------


def _positive_int(value: int, path: str) -> None:
    if value < 1:
        raise ConfigurationError(path, f"{value} is below 1", "use a positive whole number")


def _thresholds(values: tuple[float, ...], path: str) -> None:
    if len(values) > 8:
        raise ConfigurationError(path, f"{len(values)} thresholds", "keep at most 8 (each costs memory per bucket)")
    for index, value in enumerate(values):
        if value <= 0:
            raise ConfigurationError(f"{path}[{index}]", "must be positive", "use e.g. 300ms")
    if len(set(values)) != len(values):
        raise ConfigurationError(path, "has duplicates", "list each threshold once")


def _validate_dimensions(dimensions: tuple[DimensionConfig, ...]) -> None:
    if len(dimensions) > 6:
        raise ConfigurationError("sli.dimensions", f"{len(dimensions)} dimensions", "keep at most 6")
    seen: set[str] = set()
    for index, dimension in enumerate(dimensions):
        path = f"sli.dimensions[{index}]"
        if not NAME_PATTERN.fullmatch(dimension.name) or dimension.name in RESERVED_DIMENSIONS:
            raise ConfigurationError(
                f"{path}.name",
                f"{dimension.name!r} cannot be a label name",
                "use lowercase letters, digits and '_' (not task, outcome, threshold, window, bound or le)",
            )
        if dimension.name in seen:
            raise ConfigurationError(
                f"{path}.name", f"{dimension.name!r} is used twice", "give each dimension its own name"
            )
        seen.add(dimension.name)
        if (dimension.attribute is None) == (dimension.flag is None):
            raise ConfigurationError(path, "needs exactly one source", "give either attribute or flag")


def _validate_tiers(tiers: tuple[TierConfig, ...], path: str) -> None:
    if not tiers:
        raise ConfigurationError(path, "is empty", "give at least one tier, e.g. [{width: 1m, keep: 35d}]")
    if tiers[0].width_s != 60:
        raise ConfigurationError(f"{path}[0].width", f"{tiers[0].width_s}s", "the first tier's width must be 1m")
    for index, tier in enumerate(tiers):
        if tier.keep_s % tier.width_s or tier.keep_s < tier.width_s:
            raise ConfigurationError(
                f"{path}[{index}]", "keep is not a multiple of width", "e.g. {width: 10m, keep: 3d}"
            )
        if tier.keep_s // tier.width_s > 5000:
            raise ConfigurationError(
                f"{path}[{index}]", "holds more than 5000 buckets", "use a wider width or a shorter keep"
            )
        if index:
            previous = tiers[index - 1]
            if tier.width_s % previous.width_s or tier.keep_s <= previous.keep_s:
                raise ConfigurationError(
                    f"{path}[{index}]",
                    "must be coarser than the tier before (width a multiple of it) and keep longer",
                    "order tiers from fine to coarse",
                )
    if tiers[-1].keep_s < 35 * 86_400:
        raise ConfigurationError(
            f"{path}[{len(tiers) - 1}].keep", "is below 35d", "the last tier must keep 35d (windows up to 35d)"
        )
