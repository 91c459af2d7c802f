"""Tasks: which spans are task events, and the compiled success rule of each task.

A span is an event of task X when it carries ``impact.task.name = X`` and is not marked as an
inherited task span (``impact.task.root = false``), or when it has no task name and matches a
configured task's ``match`` rules (`CompiledMatch`: service per resource, instrumentation scope
per scope with `ScopeFilter`, then the span's kind, name, route and URL path). `TaskState`
holds a task's compiled rules, its series and its counters; the analyzer's hot loop reads its
fields directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope

from otel_impact.proto import view

from .config import SPAN_KINDS, SliConfig, SuccessConfig, TaskConfig, TaskMatch

if TYPE_CHECKING:
    from .aggregates import Series

__all__ = ["CompiledMatch", "ScopeFilter", "TaskState", "UrlPaths"]

OVERFLOW: Final = "_overflow"
UNKNOWN: Final = "unknown"
URL_FULL: Final = "url.full"
HTTP_URL_OLD: Final = "http.url"
MAX_URL_LENGTH: Final = 8192
"""A longer URL is not read for ``match.url_path`` (its span matches no such rule)."""
_SCOPE_KEY_BYTES: Final = 1024
_SCOPE_MEMO_LIMIT: Final = 4096


class TaskState:
    """One task: its compiled success rule, its series and its counters."""

    __slots__ = (
        "config",
        "default_value",
        "error_bad",
        "error_bad_any",
        "error_good",
        "future_clamped",
        "has_error_rules",
        "http_bad_codes",
        "late_clamped",
        "name",
        "overflow_events",
        "overflow_series",
        "raw_keys",
        "series",
        "slow_ns",
        "status_error",
        "thresholds_s",
        "volume",
    )

    def __init__(self, name: str, config: SliConfig) -> None:
        task_config = config.task(name)
        success = config.success_for(task_config)
        self.name = name
        self.config: TaskConfig | None = task_config
        self.thresholds_s: tuple[float, ...] = tuple(sorted(config.thresholds_for(task_config)))
        self.status_error = success.status_error
        self.http_bad_codes = frozenset(code for code in range(100, 600) if success.is_bad_http(code))
        self.error_bad = frozenset(success.error_types_bad) - {"*"}
        self.error_bad_any = "*" in success.error_types_bad
        self.error_good = frozenset(success.error_types_good)
        self.has_error_rules = bool(success.error_types_bad or success.error_types_good)
        self.slow_ns = None if success.latency_threshold_s is None else round(success.latency_threshold_s * 1e9)
        self.default_value = 0.0 if task_config is None or task_config.value is None else task_config.value
        self.series: dict[tuple[str, ...], Series] = {}
        """Series by segment values (dimension order)."""
        self.raw_keys: dict[object, Series] = {}
        """Memo from the undecoded key the hot loop builds to its series (bounded; cleared when full)."""
        self.overflow_series: Series | None = None
        self.overflow_events = 0
        self.late_clamped = 0
        self.future_clamped = 0
        self.volume: dict[int, int] = {}
        """Events per minute index over the recent past, for telemetry-loss detection."""

    def success_config(self, config: SliConfig) -> SuccessConfig:
        return config.success_for(self.config)

    def bad_error_type(self, error_type: str | None) -> bool | None:
        """``True``/``False`` when ``error.type`` decides the outcome, else ``None``."""
        if error_type is None:
            return None
        if error_type in self.error_good:
            return False
        if self.error_bad_any or error_type in self.error_bad:
            return True
        return None


@dataclass(frozen=True)
class CompiledMatch:
    """A configured task's ``match`` rule, ready for the hot loop."""

    task: str
    services: frozenset[str]
    span_names: frozenset[str]
    http_routes: frozenset[str]
    kinds: frozenset[int]
    scopes: frozenset[str] = frozenset()
    url_paths: UrlPaths | None = None

    @classmethod
    def compile(cls, task: str, match: TaskMatch) -> CompiledMatch:
        return cls(
            task=task,
            services=frozenset(match.service),
            span_names=frozenset(match.span_name),
            http_routes=frozenset(match.http_route),
            kinds=frozenset(SPAN_KINDS[kind] for kind in match.kind),
            scopes=frozenset(match.scope_name),
            url_paths=UrlPaths(match.url_path) if match.url_path else None,
        )

    def applies_to_service(self, service: str | None) -> bool:
        return not self.services or service in self.services

    def applies_to_scope(self, scope: str) -> bool:
        return not self.scopes or scope in self.scopes

    def matches(self, kind: int, name: str, route: str | None) -> bool:
        """Everything but the service (checked once per resource), the scope (once per scope)
        and the URL path (`matches_url`, read only for the rules that need it)."""
        return (
            (not self.kinds or kind in self.kinds)
            and (not self.span_names or name in self.span_names)
            and (not self.http_routes or route in self.http_routes)
        )

    def matches_url(self, attrs: Any) -> bool:
        """Whether the span's URL path fits ``url_paths`` (always, when there is none)."""
        return self.url_paths is None or self.url_paths.matches(url_path_of(attrs))


class UrlPaths:
    """A ``match.url_path`` list: exact paths, and prefixes (written with a trailing ``*``)."""

    __slots__ = ("exact", "prefixes")

    def __init__(self, paths: tuple[str, ...]) -> None:
        self.exact = frozenset(path for path in paths if not path.endswith("*"))
        self.prefixes = tuple(path[:-1] for path in paths if path.endswith("*"))

    def matches(self, path: str | None) -> bool:
        return path is not None and (path in self.exact or path.startswith(self.prefixes))


def url_path_of(attrs: Any) -> str | None:
    """The path of a span's ``url.full`` (or the older ``http.url``), if it has one that parses."""
    raw = attrs.get(URL_FULL) or attrs.get(HTTP_URL_OLD)
    url = view.decode_str(raw) if raw else None
    if not url or len(url) > MAX_URL_LENGTH:
        return None
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return None


class ScopeFilter:
    """The task matches that apply to the spans of one instrumentation scope.

    Only built when some task matches on ``scope_name``; names are read from the scope's
    undecoded bytes once and remembered (bounded).
    """

    __slots__ = ("_names",)

    def __init__(self) -> None:
        self._names: dict[bytes, str] = {}

    def name(self, scope: bytes) -> str:
        """The ``name`` of an ``InstrumentationScope`` message's bytes (empty if it does not parse)."""
        name = self._names.get(scope)
        if name is None:
            try:
                name = InstrumentationScope.FromString(scope).name
            except DecodeError:
                name = ""
            if len(scope) <= _SCOPE_KEY_BYTES:
                if len(self._names) >= _SCOPE_MEMO_LIMIT:
                    self._names.clear()
                self._names[scope] = name
        return name

    def narrow(self, matches: tuple[CompiledMatch, ...], scope: bytes) -> tuple[CompiledMatch, ...]:
        """The ``matches`` whose ``scope_name`` rule (if any) the scope passes."""
        name = self.name(scope)
        return tuple(match for match in matches if match.applies_to_scope(name))


def compile_matches(config: SliConfig) -> tuple[CompiledMatch, ...]:
    return tuple(CompiledMatch.compile(task.name, task.match) for task in config.tasks if task.match is not None)


def scope_filter(matches: tuple[CompiledMatch, ...]) -> ScopeFilter | None:
    """A `ScopeFilter` when some of ``matches`` has a ``scope_name`` rule, else ``None`` (no cost)."""
    return ScopeFilter() if any(match.scopes for match in matches) else None
