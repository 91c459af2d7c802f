"""The ``sli:`` config section: tasks, success rules, segment dimensions, limits and time layout.

Plain frozen dataclasses, checked in one place (`SliConfig.validate`). `parse_sli_section` reads
the section as parsed from YAML (a mapping of plain values) and notes every problem in the shared
`Problems`, naming the field path (``sli.tasks[0].success.http_bad[1]``), the problem and the fix;
`SliConfig.from_mapping` does the same for the section alone and raises `ConfigurationErrors`
listing them all. Durations accept ``300ms``, ``5m``, ``1h30m``, ``7d`` or a number of seconds.

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

from otel_impact._attributes import MAX_TASK_NAME_LENGTH
from otel_impact.processors.config import Fields, Problems

from .config_entries import (
    SPAN_KINDS,
    DimensionConfig,
    LossDetectionConfig,
    SuccessConfig,
    TaskConfig,
    TaskMatch,
    TierConfig,
    read_dimension,
    read_entries,
    read_loss,
    read_section,
    read_success,
    read_task,
    read_tier,
)
from .explain_config import ExplainConfig, read_explain
from .propagation import PropagationConfig, read_propagation

__all__ = [
    "SPAN_KINDS",
    "DimensionConfig",
    "LossDetectionConfig",
    "SliConfig",
    "SuccessConfig",
    "TaskConfig",
    "TaskMatch",
    "TierConfig",
    "parse_sli_section",
]

SECTION: Final = "sli"
NAME_PATTERN: Final = re.compile(r"[a-z_][a-z0-9_]*")
TASK_NAME_PATTERN: Final = re.compile(rf"[\w.:/-]{{1,{MAX_TASK_NAME_LENGTH}}}")
RESERVED_DIMENSIONS: Final = frozenset({"task", "outcome", "threshold", "window", "bound", "le"})


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
    delay_threshold_s: float = 60.0
    """Answers say ``telemetry.delayed`` while the p99 pipeline lag of the last 5 minutes exceeds it."""
    count_tiers: tuple[TierConfig, ...] = DEFAULT_COUNT_TIERS
    sketch_tiers: tuple[TierConfig, ...] = DEFAULT_SKETCH_TIERS
    hll_lg_k: int = 12
    kll_k: int = 200
    top_customers_lg_map: int = 7
    loss_detection: LossDetectionConfig = field(default_factory=LossDetectionConfig)
    checkpoint_interval_s: float = 5.0
    metrics_windows_s: tuple[int, ...] = (300, 3600)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    """What explain tracking compares and its caps (``sli.explain``, see `explain_config`)."""
    otlp_metrics_interval_s: float | None = None
    """When set, the derived series are also sent to every downstream as OTLP metrics this often."""
    """Windows of the users / impacted-users gauges on ``/metrics`` and in OTLP metrics."""
    propagation: PropagationConfig = field(default_factory=PropagationConfig)
    """The trace-sampled pass and service edges that lose the customer (``sli.propagation``)."""

    def task(self, name: str) -> TaskConfig | None:
        return next((task for task in self.tasks if task.name == name), None)

    def success_for(self, task: TaskConfig | None) -> SuccessConfig:
        return task.success if task is not None and task.success is not None else self.default_success

    def thresholds_for(self, task: TaskConfig | None) -> tuple[float, ...]:
        if task is not None and task.latency_thresholds_s is not None:
            return task.latency_thresholds_s
        return self.latency_thresholds_s

    def validate(self, problems: Problems, path: str = SECTION) -> None:
        """Note every broken cross-field rule in ``problems``, naming the field and the fix."""
        _positive_int(problems, self.max_tasks, f"{path}.max_tasks")
        _positive_int(problems, self.max_series_per_task, f"{path}.max_series_per_task")
        _positive_int(problems, self.max_series_total, f"{path}.max_series_total")
        if self.max_series_total < self.max_series_per_task:
            problems.add(
                f"{path}.max_series_total",
                f"{self.max_series_total} is below max_series_per_task ({self.max_series_per_task})",
                "raise max_series_total or lower max_series_per_task",
            )
        if not self.user_attribute:
            problems.add(f"{path}.user_attribute", "is empty", "name the attribute holding the pseudonym")
        _validate_dimensions(problems, self.dimensions, f"{path}.dimensions")
        names: set[str] = set()
        for index, task in enumerate(self.tasks):
            where = f"{path}.tasks[{index}]"
            if not TASK_NAME_PATTERN.fullmatch(task.name):
                problems.add(
                    f"{where}.name",
                    f"{task.name!r} is not a task name",
                    f"use 1-{MAX_TASK_NAME_LENGTH} letters, digits, '.', '_', ':', '/', '-'",
                )
            if task.name in names:
                problems.add(f"{where}.name", f"task {task.name!r} is defined twice", "merge the entries")
            names.add(task.name)
            if task.latency_thresholds_s is not None:
                _thresholds(problems, task.latency_thresholds_s, f"{where}.latency_thresholds")
            if task.value is not None and task.value < 0:
                problems.add(f"{where}.value", "is negative", "give the money at stake, 0 or more")
        _thresholds(problems, self.latency_thresholds_s, f"{path}.latency_thresholds")
        count_tiers_valid = _validate_tiers(problems, self.count_tiers, f"{path}.count_tiers")
        _validate_tiers(problems, self.sketch_tiers, f"{path}.sketch_tiers")
        for label, value, low, high in (
            ("hll_lg_k", self.hll_lg_k, 4, 21),
            ("kll_k", self.kll_k, 8, 65_535),
            ("top_customers_lg_map", self.top_customers_lg_map, 3, 16),
        ):
            if not low <= value <= high:
                problems.add(f"{path}.{label}", f"{value} is out of range", f"use {low} to {high}")
        loss = self.loss_detection
        if loss.window_s < 60 or loss.window_s % 60 or loss.baseline_s < loss.window_s or loss.baseline_s % 60:
            problems.add(
                f"{path}.loss_detection",
                f"window {loss.window_s}s / baseline {loss.baseline_s}s are not whole minutes with baseline >= window",
                "use e.g. window: 5m, baseline: 1h",
            )
        if not 0 < loss.drop_ratio < 1:
            problems.add(f"{path}.loss_detection.drop_ratio", f"{loss.drop_ratio} is not in (0, 1)", "use e.g. 0.25")
        if self.lateness_s < 0 or self.future_tolerance_s < 0:
            problems.add(f"{path}.lateness", "a negative time", "use a duration such as 5m")
        # Checked against the count tiers only when those are valid: otherwise they were just named.
        if count_tiers_valid and self.lateness_s > self.count_tiers[0].keep_s / 2:
            problems.add(
                f"{path}.lateness", "is more than half the first count tier's keep", "lower lateness or keep more"
            )
        if self.otlp_metrics_interval_s is not None and self.otlp_metrics_interval_s < 1:
            problems.add(
                f"{path}.otlp_metrics_interval", "must be at least 1s", "use e.g. 60s, or leave it out to send none"
            )
        if not 1 <= self.delay_threshold_s <= 86400:
            problems.add(f"{path}.delay_threshold", f"{self.delay_threshold_s:g}s", "use 1s to 24h (default 60s)")
        self.propagation.validate(problems, f"{path}.propagation")
        if self.checkpoint_interval_s <= 0:
            problems.add(f"{path}.checkpoint_interval", "must be positive", "use a duration such as 5s")
        self.explain.validate(problems, f"{path}.explain")
        retention = self.count_tiers[-1].keep_s if count_tiers_valid else None
        for seconds in self.metrics_windows_s:
            if seconds < 60 or seconds % 60 or (retention is not None and seconds > retention):
                problems.add(
                    f"{path}.metrics_windows",
                    f"{seconds}s is not a whole number of minutes within retention",
                    "use e.g. 5m, 1h",
                )

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> SliConfig:
        """Read the ``sli:`` section alone (``None`` or ``{}`` gives the defaults) and validate it.

        Raises `ConfigurationErrors` listing every problem (see `parse_sli_section`).
        """
        problems = Problems()
        config = parse_sli_section(raw, SECTION, problems)
        problems.raise_if_any()
        return config

    def with_changes(self, **changes: Any) -> SliConfig:
        """A validated copy with some fields replaced (for tests); raises `ConfigurationErrors`."""
        config = replace(self, **changes)
        problems = Problems()
        config.validate(problems)
        problems.raise_if_any()
        return config


def parse_sli_section(raw: object, path: str, problems: Problems) -> SliConfig:
    """Read and validate the ``sli:`` section (``None`` gives the defaults), noting every problem in ``problems``."""
    fields = Fields(raw, path, problems)
    defaults = SliConfig()
    config = SliConfig(
        enabled=fields.take_bool("enabled", defaults.enabled),
        auto_tasks=fields.take_bool("auto_tasks", defaults.auto_tasks),
        max_tasks=fields.take_int("max_tasks", defaults.max_tasks),
        user_attribute=fields.take_str("user_attribute", defaults.user_attribute),
        dimensions=read_entries(fields, "dimensions", read_dimension, defaults.dimensions),
        tasks=read_entries(fields, "tasks", read_task, ()),
        default_success=read_section(fields, "default_success", read_success, defaults.default_success),
        latency_thresholds_s=fields.take_durations("latency_thresholds", defaults.latency_thresholds_s),
        max_series_per_task=fields.take_int("max_series_per_task", defaults.max_series_per_task),
        max_series_total=fields.take_int("max_series_total", defaults.max_series_total),
        lateness_s=fields.take_duration("lateness", defaults.lateness_s),
        future_tolerance_s=fields.take_duration("future_tolerance", defaults.future_tolerance_s),
        delay_threshold_s=fields.take_duration("delay_threshold", defaults.delay_threshold_s),
        count_tiers=read_entries(fields, "count_tiers", read_tier, defaults.count_tiers),
        sketch_tiers=read_entries(fields, "sketch_tiers", read_tier, defaults.sketch_tiers),
        hll_lg_k=fields.take_int("hll_lg_k", defaults.hll_lg_k),
        kll_k=fields.take_int("kll_k", defaults.kll_k),
        top_customers_lg_map=fields.take_int("top_customers_lg_map", defaults.top_customers_lg_map),
        loss_detection=read_section(fields, "loss_detection", read_loss, defaults.loss_detection),
        checkpoint_interval_s=fields.take_duration("checkpoint_interval", defaults.checkpoint_interval_s),
        metrics_windows_s=tuple(int(s) for s in fields.take_durations("metrics_windows", defaults.metrics_windows_s)),
        otlp_metrics_interval_s=fields.take_duration("otlp_metrics_interval", None),
        propagation=read_section(fields, "propagation", read_propagation, defaults.propagation),
        explain=read_section(fields, "explain", read_explain, defaults.explain),
    )
    fields.done()
    config.validate(problems, path)
    return config


# -- checks ---------------------------------------------------------------------------------------


def _positive_int(problems: Problems, value: int, path: str) -> None:
    if value < 1:
        problems.add(path, f"{value} is below 1", "use a positive whole number")


def _thresholds(problems: Problems, values: tuple[float, ...], path: str) -> None:
    if len(values) > 8:
        problems.add(path, f"{len(values)} thresholds", "keep at most 8 (each costs memory per bucket)")
    for index, value in enumerate(values):
        if value <= 0:
            problems.add(f"{path}[{index}]", "must be positive", "use e.g. 300ms")
    if len(set(values)) != len(values):
        problems.add(path, "has duplicates", "list each threshold once")


def _validate_dimensions(problems: Problems, dimensions: tuple[DimensionConfig, ...], path: str) -> None:
    if len(dimensions) > 6:
        problems.add(path, f"{len(dimensions)} dimensions", "keep at most 6")
    seen: set[str] = set()
    for index, dimension in enumerate(dimensions):
        where = f"{path}[{index}]"
        if not NAME_PATTERN.fullmatch(dimension.name) or dimension.name in RESERVED_DIMENSIONS:
            problems.add(
                f"{where}.name",
                f"{dimension.name!r} cannot be a label name",
                "use lowercase letters, digits and '_' (not task, outcome, threshold, window, bound or le)",
            )
        elif dimension.name in seen:
            problems.add(f"{where}.name", f"{dimension.name!r} is used twice", "give each dimension its own name")
        seen.add(dimension.name)
        if (dimension.attribute is None) == (dimension.flag is None):
            problems.add(where, "needs exactly one source", "give either attribute or flag")


def _validate_tiers(problems: Problems, tiers: tuple[TierConfig, ...], path: str) -> bool:
    """Note what is wrong with ``tiers``; True when nothing is."""
    if not tiers:
        problems.add(path, "is empty", "give at least one tier, e.g. [{width: 1m, keep: 35d}]")
        return False
    valid = tiers[0].width_s == 60
    if not valid:
        problems.add(f"{path}[0].width", f"{tiers[0].width_s}s", "the first tier's width must be 1m")
    for index, tier in enumerate(tiers):
        if tier.width_s <= 0 or tier.keep_s <= 0:
            problems.add(f"{path}[{index}]", "needs width and keep", "write e.g. {width: 1m, keep: 6h}")
            return False
        if tier.keep_s % tier.width_s or tier.keep_s < tier.width_s:
            valid = False
            problems.add(f"{path}[{index}]", "keep is not a multiple of width", "e.g. {width: 10m, keep: 3d}")
        if tier.keep_s // tier.width_s > 5000:
            valid = False
            problems.add(f"{path}[{index}]", "holds more than 5000 buckets", "use a wider width or a shorter keep")
        if index:
            previous = tiers[index - 1]
            if tier.width_s % previous.width_s or tier.keep_s <= previous.keep_s:
                valid = False
                problems.add(
                    f"{path}[{index}]",
                    "must be coarser than the tier before (width a multiple of it) and keep longer",
                    "order tiers from fine to coarse",
                )
    if tiers[-1].keep_s < 35 * 86_400:
        valid = False
        problems.add(
            f"{path}[{len(tiers) - 1}].keep", "is below 35d", "the last tier must keep 35d (windows up to 35d)"
        )
    return valid
