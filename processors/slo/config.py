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

`parse_slos_section` turns the raw YAML value into validated `SloConfig` objects, noting every
problem in the shared `Problems`, each naming the field path (``slos[0].objective``) and the fix.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from otel_impact.processors.config import Fields, Problems, describe
from otel_impact.processors.durations import format_duration

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
_MAPPING_FIX = "write it as `key: value` lines"


@dataclass(frozen=True)
class SliSpec:
    """How an event counts as good.

    ``success_ratio``: good events / all events. ``latency``: events whose duration is at most
    ``threshold_seconds`` (whatever their outcome) / all events; the threshold must be one the
    SLI engine counts for the task, which the SLO engine checks at run time.
    """

    kind: Literal["success_ratio", "latency"] = "success_ratio"
    threshold_seconds: float | None = None

    def validate(self, problems: Problems, path: str = "sli") -> None:
        """Note every problem in ``problems``."""
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

    def validate(self, problems: Problems, path: str = "window") -> None:
        """Note every problem in ``problems``."""
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

    def validate(self, problems: Problems, path: str = "slos[?]") -> None:
        """Note every problem in ``problems``."""
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
        self.sli.validate(problems, f"{path}.sli")
        self.window.validate(problems, f"{path}.window")
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


def parse_slos_section(raw: object, path: str, problems: Problems) -> tuple[SloConfig, ...]:
    """The ``slos:`` section (a list, possibly empty or absent) -> validated SLOs.

    Notes every problem in ``problems``, including duplicate names; an SLO that is not a
    mapping is left out.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add(path, "expected a list of SLOs", "write each SLO as a `- name: ...` item")
        return ()
    slos: list[SloConfig] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        name = item.get("name") if isinstance(item, Mapping) else None
        if isinstance(name, str) and name in seen:
            problems.add(f"{where}.name", f"{name!r} is already used by {path}[{seen[name]}]", "rename one")
        elif isinstance(name, str):
            seen[name] = index
        slo = _read_slo(item, where, problems)
        if slo is not None:
            slos.append(slo)
    return tuple(slos)


def _read_slo(raw: object, path: str, problems: Problems) -> SloConfig | None:
    """One SLO from its YAML mapping, validated; ``None`` when it is not a mapping."""
    if not isinstance(raw, Mapping):
        problems.add(path, f"expected a mapping, got {describe(raw)}", _MAPPING_FIX)
        return None
    fields = Fields(raw, path, problems)
    slo = SloConfig(
        name=fields.take_str("name", "?", if_missing="set `name`"),
        task=fields.take_str("task", "?", if_missing="set `task`"),
        objective=fields.take_float("objective", 99.9, if_missing="set `objective` to a number"),
        sli=_read_sli(fields),
        window=_read_window(fields),
        by=fields.take_str_list("by", allow_single=True),
        budgeting=fields.take_str("budgeting", "occurrences").lower(),  # type: ignore[arg-type]
        owner=fields.take_str("owner", None),
        team=fields.take_str("team", None),
        route=fields.take_str("route", None),
        runbook=fields.take_str("runbook", None),
        description=fields.take_str("description", None),
        labels=tuple(sorted(fields.take_str_map("labels").items())),
    )
    slo.validate(problems, path)
    fields.done()
    return slo


def _read_sli(slo: Fields) -> SliSpec:
    """``sli: {kind: latency, threshold_seconds: 0.3}``, or just the kind (``sli: success_ratio``)."""
    raw = slo.take("sli")
    if raw is None:
        return SliSpec()
    fields = Fields.shorthand(raw, slo.at("sli"), slo.problems, string_means="kind")
    spec = SliSpec(
        kind=fields.take_str("kind", "success_ratio", if_missing="set `kind`"),  # type: ignore[arg-type]
        threshold_seconds=fields.take_float("threshold_seconds", None, minimum=0),
    )
    fields.done()
    spec.validate(fields.problems, fields.path)
    return spec


def _read_window(slo: Fields) -> WindowSpec:
    """``window: 30d`` (rolling), ``{rolling: 7d}`` or ``{calendar: month, time_zone: Europe/Paris}``."""
    raw = slo.take("window")
    if raw is None:
        return WindowSpec()
    fields = Fields.shorthand(raw, slo.at("window"), slo.problems, string_means="rolling")
    is_rolling, is_calendar = fields.has("rolling"), fields.has("calendar")
    rolling = fields.take_duration("rolling", ROLLING_WINDOWS["30d"])
    calendar = fields.take("calendar")
    time_zone = fields.take_str("time_zone", None)
    fields.done()
    if is_rolling == is_calendar:
        fields.problems.add(
            fields.path, "needs exactly one of `rolling` or `calendar`", "write `window: 30d` or `{calendar: month}`"
        )
        return WindowSpec()
    if is_calendar and calendar != "month":
        fields.report("calendar", f"{calendar!r} is not supported", "use `calendar: month`")
        return WindowSpec()
    if is_rolling and time_zone is not None:
        fields.report("time_zone", "a rolling window has no time zone", "remove time_zone")
    if is_rolling:
        spec = WindowSpec(kind="rolling", rolling_seconds=rolling)
    else:
        spec = WindowSpec(kind="calendar_month", time_zone=time_zone or "UTC")
    spec.validate(fields.problems, fields.path)
    return spec
