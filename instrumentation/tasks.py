"""User tasks named from server spans, with no code: ``OTEL_IMPACT_TASKS`` and ``OTEL_IMPACT_TASK_FAILURE``.

``OTEL_IMPACT_TASKS`` is a comma-separated list of ``NAME=METHOD ROUTE`` entries::

    checkout=POST /api/checkout,search=GET /search/<query>,refund=* /api/refund
    pay=grpc /shop.Payments/Charge

ROUTE is the framework's route template exactly as it appears in ``http.route`` (Flask
``/search/<query>``, FastAPI ``/search/{query}``, Django ``search/<str:query>/``), without spaces
or commas; METHOD is an HTTP method or ``*`` for any. ``grpc`` entries name the RPC's full method,
``/package.Service/Method``. The server span that matches becomes the task's root
(``impact.task.name``, ``impact.task.root=true``) with ``impact.task.outcome`` from the response:

* HTTP: a 5xx status is a failure, anything else a success.
* gRPC: ``OK`` is a success; the codes that report the client's own fault (`GRPC_CLIENT_FAULTS`:
  ``CANCELLED``, ``INVALID_ARGUMENT``, ``NOT_FOUND``, ``ALREADY_EXISTS``, ``PERMISSION_DENIED``,
  ``UNAUTHENTICATED``, ``FAILED_PRECONDITION``, ``OUT_OF_RANGE``) are successes of the service;
  every other code (``UNKNOWN``, ``DEADLINE_EXCEEDED``, ``RESOURCE_EXHAUSTED``, ``ABORTED``,
  ``UNIMPLEMENTED``, ``INTERNAL``, ``UNAVAILABLE``, ``DATA_LOSS``) and an exception escaping the
  handler are failures. ``CANCELLED`` is the client giving up, like an HTTP client hanging up.

``OTEL_IMPACT_TASK_FAILURE`` widens the failures, never narrows them: a comma-separated list of
HTTP classes (``4xx``), HTTP codes (``429``) and gRPC code names (``NOT_FOUND``), e.g. ``5xx,429``.

Policy for bad values (as for every ``OTEL_IMPACT_*`` variable): the application runs. A bad
entry is left out, with one warning naming it and the expected form; the good ones apply.
`TaskRules.from_env` compiles the entries once into dictionaries keyed by ``(method, route)``
and by full method, so matching a request costs a dictionary lookup or two.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, TypeVar

from otel_impact._exceptions import ConfigurationError
from otel_impact._state import valid_task_name

from .settings import ENV_TASK_FAILURE, ENV_TASKS

_K = TypeVar("_K")

ANY_METHOD: Final = "*"
GRPC: Final = "grpc"

GRPC_CODES: Final = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
"""Every gRPC status code name, in the order of their numbers."""

GRPC_CLIENT_FAULTS: Final = frozenset(
    {
        "CANCELLED",
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "FAILED_PRECONDITION",
        "OUT_OF_RANGE",
    }
)
"""gRPC codes that report the client's own fault: not a failure of the task unless widened."""

TASKS_FORM: Final = (
    "write NAME=METHOD ROUTE with ROUTE as in http.route and METHOD an HTTP method or *, "
    "or NAME=grpc /package.Service/Method, entries separated by commas, "
    "e.g. checkout=POST /api/checkout,search=GET /search/<query>"
)
FAILURE_FORM: Final = "list HTTP classes, HTTP codes and gRPC code names separated by commas, e.g. 5xx,429"

_METHOD = re.compile(r"\A[A-Za-z]{1,32}\Z")
_GRPC_METHOD = re.compile(r"\A/?[^/\s]+/[^/\s]+\Z")
_HTTP_CLASS = re.compile(r"\A[1-5]xx\Z", re.IGNORECASE)
_HTTP_CODE = re.compile(r"\A[1-5][0-9][0-9]\Z")


@dataclass(frozen=True)
class FailureRule:
    """Which responses fail a task named by ``OTEL_IMPACT_TASKS``: the defaults plus what
    ``OTEL_IMPACT_TASK_FAILURE`` adds (HTTP classes by their first digit, HTTP codes, gRPC code names)."""

    http_classes: frozenset[int] = frozenset()
    http_codes: frozenset[int] = frozenset()
    grpc_codes: frozenset[str] = frozenset()

    def http_failed(self, status: int) -> bool:
        """True when HTTP ``status`` fails the task: 5xx, or a class or code added."""
        return status >= 500 or status in self.http_codes or status // 100 in self.http_classes

    def grpc_failed(self, code: str) -> bool:
        """True when gRPC status ``code`` (its name, e.g. ``INTERNAL``) fails the task."""
        if code == "OK":
            return code in self.grpc_codes
        return code not in GRPC_CLIENT_FAULTS or code in self.grpc_codes

    @classmethod
    def parse(cls, text: str) -> tuple[FailureRule, list[ConfigurationError]]:
        """Read ``OTEL_IMPACT_TASK_FAILURE``; a bad item is left out and reported."""
        classes: set[int] = set()
        codes: set[int] = set()
        grpc_codes: set[str] = set()
        problems: list[ConfigurationError] = []
        for raw in _unquoted(text).split(","):
            item = raw.strip()
            if not item:
                continue
            if _HTTP_CLASS.match(item):
                classes.add(int(item[0]))
            elif _HTTP_CODE.match(item):
                codes.add(int(item))
            elif item.upper() in GRPC_CODES and item.upper() != "OK":
                grpc_codes.add(item.upper())
            else:
                problems.append(
                    ConfigurationError(
                        ENV_TASK_FAILURE,
                        f"{item!r} is not an HTTP class, HTTP code or gRPC code name; it is left out",
                        FAILURE_FORM,
                    )
                )
        return cls(frozenset(classes), frozenset(codes), frozenset(grpc_codes)), problems


@dataclass(frozen=True)
class TaskRules:
    """The compiled ``OTEL_IMPACT_TASKS``: task names by ``(METHOD, route)`` and by gRPC full method."""

    http: Mapping[tuple[str, str], str] = field(default_factory=lambda: MappingProxyType({}))
    grpc: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    failure: FailureRule = FailureRule()

    @property
    def active(self) -> bool:
        """True when at least one task is named."""
        return bool(self.http or self.grpc)

    def match_http(self, method: str, route: str) -> str | None:
        """The task of a request to ``route`` (as in ``http.route``) with ``method``, or ``None``."""
        http = self.http
        return http.get((method.upper(), route)) or http.get((ANY_METHOD, route))

    def match_grpc(self, full_method: str) -> str | None:
        """The task of an RPC whose full method is ``full_method`` (``/package.Service/Method``), or ``None``."""
        return self.grpc.get(full_method if full_method.startswith("/") else "/" + full_method)

    @classmethod
    def parse(cls, tasks: str, failure: str = "") -> tuple[TaskRules, list[ConfigurationError]]:
        """Compile ``tasks`` (``OTEL_IMPACT_TASKS``) and ``failure`` (``OTEL_IMPACT_TASK_FAILURE``).

        Returns the rules made of the good entries and one problem per bad entry (each names the
        entry and the expected form). A value quoted whole (``"..."``, as some env files keep
        it) is read without its quotes.
        """
        http: dict[tuple[str, str], str] = {}
        grpc: dict[str, str] = {}
        problems: list[ConfigurationError] = []
        for raw in _unquoted(tasks).split(","):
            entry = raw.strip()
            if not entry:
                continue
            problem = _add_entry(entry, http, grpc)
            if problem is not None:
                problems.append(ConfigurationError(ENV_TASKS, f"entry {entry!r} {problem}; it is left out", TASKS_FORM))
        rule, more = FailureRule.parse(failure)
        return cls(MappingProxyType(http), MappingProxyType(grpc), rule), problems + more

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> tuple[TaskRules, list[ConfigurationError]]:
        """`parse` of ``OTEL_IMPACT_TASKS`` and ``OTEL_IMPACT_TASK_FAILURE`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        return cls.parse(env.get(ENV_TASKS, ""), env.get(ENV_TASK_FAILURE, ""))


NO_RULES: Final = TaskRules()


def _add_entry(entry: str, http: dict[tuple[str, str], str], grpc: dict[str, str]) -> str | None:
    """Add one ``NAME=METHOD ROUTE`` entry; returns what is wrong with it, or ``None``."""
    raw_name, sep, target = entry.partition("=")
    if not sep:
        return "has no '='"
    name = valid_task_name(raw_name.strip())
    if name is None:
        return "does not start with a task name (1 to 128 printable characters)"
    parts = target.split(None, 1)
    if len(parts) != 2:
        return "does not give a method and a route separated by a space"
    method, route = parts[0], parts[1].strip()
    if method.lower() == GRPC:
        if not _GRPC_METHOD.match(route):
            return "does not name a gRPC method as /package.Service/Method"
        key = route if route.startswith("/") else "/" + route
        return _put(grpc, key, name, f"grpc {key}")
    if method != ANY_METHOD and not _METHOD.match(method):
        return f"has {method!r} where an HTTP method or * belongs"
    if any(char.isspace() for char in route):
        return "has a space inside its route"
    return _put(http, (method.upper(), route), name, f"{method.upper()} {route}")


def _put(table: dict[_K, str], key: _K, name: str, shown: str) -> str | None:
    existing = table.get(key)
    if existing is not None and existing != name:
        return f"names {shown} again, already the task {existing!r}"
    table[key] = name
    return None


def _unquoted(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text
