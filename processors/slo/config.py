"""The ``slos:`` config section: one entry per service-level objective.

Example (YAML)::

    slos:
      - name: checkout-availability
        task: checkout
        by: [tier]                  # optional: one error budget per tier value
        objective: 99.9             # percent of events that must be good
        sli: {kind: success_ratio}  # or {kind: latency, threshold_seconds: 0.3}
        window: 30d                 # rolling 7d, 28d or 30d; or {calendar: month, time_zone: Europe/Paris}
        budgeting: occurrences
        owner: payments-oncall
        team: payments
        route: payments-pager
        runbook: https://runbooks.example.com/checkout

`parse_slos_section` turns the raw YAML value into validated `SloConfig` objects; every error
names the field path (``slos[0].objective``) and the fix.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from otel_impact._exceptions import ConfigurationError
from otel_impact.processors.durations import format_duration, parse_duration

from ._fields import Problems

__all__ = [
    "RESERVED_LABELS",
    "ROLLING_WINDOWS",
    "SliSpec",
    "SloConfig",
    "WindowSpec",
    "parse_slos_section",
]

ROLLING_WINDOWS: dict[str, float] = {"7d": 7 * 86400.0, "28d": 28 * 86400.0, "30d": 30 * 86400.0}
"""The rolling windows an SLO may use, in seconds."""

RESERVED_LABELS = frozenset(
    {
        "alertname",
        "severity",
        "impact_severity",
        "slo",
        "task",
        "outcome",
        "threshold",
        "window",
        "bound",
        "le",
        "owner",
        "team",
        "route",
        "instance",
        "job",
    }
)
"""Label names the generated rules and alerts set themselves; ``by:`` and ``labels:`` cannot use them."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_DIMENSION = re.compile(r"^[a-z_][a-z0-9_]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_SLO_FIELDS = (
    "name",
    "task",
    "by",
    "objective",
    "sli",
    "window",
    "budgeting",
    "owner",
    "team",
    "route",
    "runbook",
    "description",
    "labels",
)


@dataclass(frozen=True)
class SliSpec:
    """How an event counts as good.

    ``success_ratio``: good events / all events. ``latency``: events whose duration is at most
    ``threshold_seconds`` (whatever their outcome) / all events; the threshold must be one the
    SLI engine counts for the task, which the SLO engine checks at run time.
    """

    kind: Literal["success_ratio", "latency"] = "success_ratio"
    threshold_seconds: float | None = None

    def validate(self, path: str = "sli") -> None:
        problems = Problems()
        if self.kind not in ("success_ratio", "latency"):
            problems.add(f"{path}.kind", f"unknown SLI kind {self.kind!r}", "use success_ratio or latency")
        elif self.kind == "latency" and (self.threshold_seconds is None or self.threshold_seconds <= 0):
            problems.add(
                f"{path}.threshold_seconds",
                "a latency SLI needs a positive threshold",
                "set threshold_seconds to one of the task's latency thresholds, e.g. 0.3",
            )
        elif self.kind == "success_ratio" and self.threshold_seconds is not None:
            problems.add(
                f"{path}.threshold_seconds",
                "a success_ratio SLI has no threshold",
                "remove threshold_seconds, or use kind: latency",
            )
        problems.raise_if_any()

    def describe(self) -> str:
        if self.kind == "latency":
            return f"latency <= {self.threshold_seconds:g}s"
        return "success ratio"


@dataclass(frozen=True)
class WindowSpec:
    """The SLO period: a rolling window of ``rolling_seconds``, or the calendar month in ``time_zone``."""

    kind: Literal["rolling", "calendar_month"] = "rolling"
    rolling_seconds: float = ROLLING_WINDOWS["30d"]
    time_zone: str = "UTC"

    def validate(self, path: str = "window") -> None:
        problems = Problems()
        if self.kind == "rolling" and self.rolling_seconds not in ROLLING_WINDOWS.values():
            problems.add(
                path,
                f"rolling window {format_duration(self.rolling_seconds)} is not supported",
                "use 7d, 28d or 30d, or {calendar: month, time_zone: <IANA zone>}",
            )
        elif self.kind == "calendar_month":
            try:
                zoneinfo.ZoneInfo(self.time_zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                problems.add(
                    f"{path}.time_zone",
                    f"unknown time zone {self.time_zone!r}",
                    "use an IANA name such as UTC or Europe/Paris (install tzdata if none is found)",
                )
        elif self.kind not in ("rolling", "calendar_month"):
            problems.add(path, f"unknown window kind {self.kind!r}", "use a rolling window or a calendar month")
        problems.raise_if_any()

    @property
    def label(self) -> str:
        """``"30d"`` for a rolling window, ``"calendar_month"`` for a calendar one."""
        return format_duration(self.rolling_seconds) if self.kind == "rolling" else "calendar_month"

    def to_json(self) -> dict[str, Any]:
        if self.kind == "rolling":
            return {"kind": "rolling", "length": self.label}
        return {"kind": "calendar_month", "time_zone": self.time_zone}


@dataclass(frozen=True)
class SloConfig:
    """One service-level objective, optionally split into one budget per segment (``by``).

    ``objective`` is a percentage in (0, 100). Budgeting is by occurrences: the error budget is
    ``(1 - objective/100)`` of the events in the window. ``owner``, ``team`` and ``route`` become
    alert labels for routing; ``labels`` adds further static labels.
    """

    name: str
    task: str
    objective: float
    sli: SliSpec = field(default_factory=SliSpec)
    window: WindowSpec = field(default_factory=WindowSpec)
    by: tuple[str, ...] = ()
    budgeting: Literal["occurrences"] = "occurrences"
    owner: str | None = None
    team: str | None = None
    route: str | None = None
    runbook: str | None = None
    description: str | None = None
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def error_budget(self) -> float:
        """The allowed fraction of bad events, e.g. 0.001 for 99.9."""
        return round((100.0 - self.objective) / 100.0, 12)

    def routing_labels(self) -> dict[str, str]:
        """``owner``, ``team``, ``route`` (those set) and the extra ``labels``."""
        found = {"owner": self.owner, "team": self.team, "route": self.route}
        labels = {key: value for key, value in found.items() if value}
        labels.update(self.labels)
        return labels

    def validate(self, path: str = "slos[?]") -> None:
        problems = Problems()
        if not _NAME.match(self.name):
            problems.add(
                f"{path}.name",
                f"{self.name!r} is not a usable SLO name",
                "use letters, digits, '_', '.', ':' or '-' (up to 128), starting with a letter or digit",
            )
        if not self.task:
            problems.add(f"{path}.task", "missing", "name the user task, e.g. task: checkout")
        if not 0 < self.objective < 100:
            problems.add(f"{path}.objective", f"{self.objective} is not a percentage below 100", "use e.g. 99.9")
        elif self.objective < 1:
            problems.add(
                f"{path}.objective",
                f"{self.objective} looks like a ratio, but objective is a percentage",
                f"write {self.objective * 100:g}",
            )
        try:
            self.sli.validate(f"{path}.sli")
        except ConfigurationError as error:
            problems.extend(error)
        try:
            self.window.validate(f"{path}.window")
        except ConfigurationError as error:
            problems.extend(error)
        seen: set[str] = set()
        for index, name in enumerate(self.by):
            where = f"{path}.by[{index}]"
            if name.startswith("flag:"):
                problems.add(
                    where,
                    f"{name!r} is a flag reference, but `by` takes dimension names",
                    "use the `name` of the flag's dimension in the SLI dimensions config",
                )
            elif not _DIMENSION.match(name):
                problems.add(where, f"{name!r} is not a dimension name", "use the form [a-z_][a-z0-9_]*, e.g. tier")
            elif name in RESERVED_LABELS:
                problems.add(where, f"{name!r} is reserved for the generated rules", "rename the dimension")
            elif name in seen:
                problems.add(where, f"{name!r} is listed twice", "list each dimension once")
            seen.add(name)
        if str(self.budgeting) != "occurrences":
            problems.add(
                f"{path}.budgeting",
                f"{self.budgeting!r} budgeting is not supported",
                "use occurrences (the budget is a fraction of events)",
            )
        if self.runbook is not None and not re.match(r"^https?://\S+$", self.runbook):
            problems.add(f"{path}.runbook", f"{self.runbook!r} is not an http(s) URL", "give the runbook's URL")
        for key, _ in self.labels:
            if not _LABEL.match(key) or key in RESERVED_LABELS or key in self.by:
                problems.add(
                    f"{path}.labels.{key}",
                    "not a free Prometheus label name",
                    "use [a-zA-Z_][a-zA-Z0-9_]*, not one of the generated labels or `by` dimensions",
                )
        problems.raise_if_any()

    @classmethod
    def from_mapping(cls, raw: object, path: str = "slos[?]") -> SloConfig:
        """Build and validate one SLO from its YAML mapping; raises `ConfigurationErrors`."""
        problems = Problems()
        entry = problems.mapping(raw, path, _SLO_FIELDS)
        if entry is None:
            problems.raise_if_any()
            raise AssertionError("unreachable")
        name = problems.string(entry, "name", path, required=True) or "?"
        task = problems.string(entry, "task", path, required=True) or "?"
        objective = problems.number(entry, "objective", path)
        sli = _read_sli(problems, entry.get("sli"), f"{path}.sli")
        window = _read_window(problems, entry.get("window"), f"{path}.window")
        budgeting = (problems.string(entry, "budgeting", path) or "occurrences").lower()
        labels_raw = entry.get("labels") or {}
        labels: tuple[tuple[str, str], ...] = ()
        if not isinstance(labels_raw, Mapping) or not all(
            isinstance(v, (str, int, float)) for v in labels_raw.values()
        ):
            problems.add(f"{path}.labels", "expected a mapping of label name to text", "write `labels: {tier: gold}`")
        else:
            labels = tuple(sorted((str(k), str(v)) for k, v in labels_raw.items()))
        slo = cls(
            name=name,
            task=task,
            objective=objective if objective is not None else 99.9,
            sli=sli,
            window=window,
            by=problems.string_list(entry, "by", path),
            budgeting=budgeting,  # type: ignore[arg-type]
            owner=problems.string(entry, "owner", path),
            team=problems.string(entry, "team", path),
            route=problems.string(entry, "route", path),
            runbook=problems.string(entry, "runbook", path),
            description=problems.string(entry, "description", path),
            labels=labels,
        )
        try:
            slo.validate(path)
        except ConfigurationError as error:
            problems.extend(error)
        problems.raise_if_any()
        return slo


def parse_slos_section(raw: object, path: str = "slos") -> tuple[SloConfig, ...]:
    """The ``slos:`` section (a list, possibly empty or absent) -> validated SLOs.

    Raises `ConfigurationErrors` listing every problem, including duplicate names.
    """
    if raw is None:
        return ()
    problems = Problems()
    if not isinstance(raw, list):
        problems.add(path, "expected a list of SLOs", "write each SLO as a `- name: ...` item")
        problems.raise_if_any()
    assert isinstance(raw, list)
    slos: list[SloConfig] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        name = item.get("name") if isinstance(item, Mapping) else None
        if isinstance(name, str) and name in seen:
            problems.add(f"{where}.name", f"{name!r} is already used by {path}[{seen[name]}]", "rename one")
        elif isinstance(name, str):
            seen[name] = index
        try:
            slos.append(SloConfig.from_mapping(item, where))
        except ConfigurationError as error:
            problems.extend(error)
    problems.raise_if_any()
    return tuple(slos)


def _read_sli(problems: Problems, raw: object, path: str) -> SliSpec:
    if raw is None:
        return SliSpec()
    if isinstance(raw, str):
        raw = {"kind": raw}
    entry = problems.mapping(raw, path, ("kind", "threshold_seconds"))
    if entry is None:
        return SliSpec()
    kind = problems.string(entry, "kind", path, required=True) or "success_ratio"
    threshold = None
    if entry.get("threshold_seconds") is not None:
        threshold = problems.number(entry, "threshold_seconds", path, minimum=0, exclusive=False)
    spec = SliSpec(kind=kind, threshold_seconds=threshold)  # type: ignore[arg-type]
    try:
        spec.validate(path)
    except ConfigurationError as error:
        problems.extend(error)
    return spec


def _read_window(problems: Problems, raw: object, path: str) -> WindowSpec:
    if raw is None:
        return WindowSpec()
    if isinstance(raw, str):
        raw = {"rolling": raw}
    entry = problems.mapping(raw, path, ("rolling", "calendar", "time_zone"))
    if entry is None:
        return WindowSpec()
    if ("rolling" in entry) == ("calendar" in entry):
        problems.add(path, "needs exactly one of `rolling` or `calendar`", "write `window: 30d` or `{calendar: month}`")
        return WindowSpec()
    if "rolling" in entry:
        text = entry["rolling"]
        try:
            seconds = parse_duration(text) if isinstance(text, str) else -1.0
        except ValueError:
            seconds = -1.0
        if "time_zone" in entry:
            problems.add(f"{path}.time_zone", "a rolling window has no time zone", "remove time_zone")
        if seconds < 0:
            problems.add(f"{path}.rolling", f"{text!r} is not a duration", "use 7d, 28d or 30d")
            return WindowSpec()
        spec = WindowSpec(kind="rolling", rolling_seconds=seconds)
    else:
        if entry["calendar"] != "month":
            problems.add(f"{path}.calendar", f"{entry['calendar']!r} is not supported", "use `calendar: month`")
            return WindowSpec()
        spec = WindowSpec(kind="calendar_month", time_zone=problems.string(entry, "time_zone", path) or "UTC")
    try:
        spec.validate(path)
    except ConfigurationError as error:
        problems.extend(error)
    return spec
