"""Query parameters of the admin API, parsed once: typed values, or one `BadRequest`.

Every route reads its query through `QueryParams`, which returns typed values (a task name, a
window in nanoseconds, a timestamp, a bounded integer, ``DIMENSION=VALUE`` pairs...) and raises
`BadRequest` naming the parameter and the fix. `bad_request` is the one place such an error (or
any ``ValueError`` a route's answer raises, e.g. an unknown dimension) becomes HTTP 400 with
``{"error": reason}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from aiohttp import web
from multidict import MultiMapping

from otel_impact.processors.durations import floor_minute, parse_timestamp, parse_window

__all__ = ["TIME_FORMS", "BadRequest", "QueryParams", "bad_request"]

T = TypeVar("T")

TIME_FORMS = "unix seconds or RFC 3339, e.g. 2026-11-26T21:00:00Z"


class BadRequest(ValueError):
    """A query parameter is missing or wrong; the message says which and how to fix it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        """The name of the offending query parameter."""


def bad_request(error: ValueError) -> web.Response:
    """HTTP 400 with ``{"error": reason}``: how every route answers a bad request."""
    return web.json_response({"error": str(error)}, status=400)


class QueryParams:
    """Typed access to one request's query string; every method raises `BadRequest`."""

    def __init__(self, query: MultiMapping[str] | Mapping[str, str]) -> None:
        self._query = query

    def _all(self, name: str) -> list[str]:
        if isinstance(self._query, MultiMapping):
            return list(self._query.getall(name, []))
        return [self._query[name]] if name in self._query else []

    def text(self, name: str) -> str | None:
        """The raw value of ``name``, or None when absent."""
        return self._query.get(name)

    def choice(self, name: str, parse: Callable[[str | None], T]) -> T:
        """``name`` read by ``parse`` (which is given ``None`` when absent and raises ``ValueError``
        naming the allowed values); its error becomes a `BadRequest` of ``name``."""
        try:
            return parse(self._query.get(name))
        except ValueError as error:
            raise BadRequest(name, str(error)) from None

    def required(self, name: str, fix: str) -> str:
        """The non-empty value of ``name``; when missing, the error is ``"{name} is required{fix}"``."""
        value = self._query.get(name)
        if not value:
            raise BadRequest(name, f"{name} is required{fix}")
        return value

    def task(self, known: Iterable[str] | None = None) -> str:
        """``task``, required; with ``known``, it must be one of them (the error lists them)."""
        task = self.required("task", ", e.g. ?task=checkout")
        if known is not None:
            names = list(known)
            if task not in names:
                raise BadRequest("task", f"unknown task {task!r}; known tasks: {', '.join(names) or 'none yet'}")
        return task

    def window(self, default: str) -> tuple[str, int]:
        """``window`` as written (``default`` when absent) and its length in nanoseconds (5m to 35d)."""
        window = self._query.get("window", default)
        try:
            return window, parse_window(window)
        except ValueError as error:
            raise BadRequest("window", str(error)) from None

    def timestamp(self, name: str) -> int | None:
        """``name`` as nanoseconds since the epoch (unix seconds or RFC 3339), or None when absent."""
        text = self._query.get(name)
        return None if text is None else _timestamp(name, text)

    def required_timestamp(self, name: str) -> int:
        """``name`` as nanoseconds since the epoch; it must be present."""
        return _timestamp(name, self.required(name, f": {TIME_FORMS}"))

    def minute(self, name: str) -> int | None:
        """`timestamp` floored to its minute, or None when absent."""
        value = self.timestamp(name)
        return None if value is None else floor_minute(value)

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        """A whole number from ``minimum`` to ``maximum`` (``default`` when absent)."""
        text = self._query.get(name)
        if text is None:
            return default
        if not (text.isascii() and text.isdigit()) or not minimum <= int(text) <= maximum:
            raise BadRequest(name, f"{name} {text!r} is not a number from {minimum} to {maximum}")
        return int(text)

    def number(self, name: str, default: float) -> float:
        """A number (``default`` when absent)."""
        value = self.optional_number(name)
        return default if value is None else value

    def optional_number(self, name: str) -> float | None:
        """A finite number, or None when absent (``inf`` and ``nan`` are refused)."""
        text = self._query.get(name)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            raise BadRequest(name, f"{name} {text!r} is not a number") from None
        if not math.isfinite(value):
            raise BadRequest(name, f"{name} {text!r} is not a finite number")
        return value

    def names(self, name: str) -> list[str]:
        """Every name in ``name``, repeated or comma-separated (``by=a,b&by=c``), blanks dropped."""
        return [item.strip() for value in self._all(name) for item in value.split(",") if item.strip()]

    def pairs(self, name: str) -> dict[str, str]:
        """Every ``name=DIMENSION=VALUE`` as ``{DIMENSION: VALUE}`` (the value may be empty)."""
        found: dict[str, str] = {}
        for item in self._all(name):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise BadRequest(name, f"{name} {item!r} is not DIMENSION=VALUE, e.g. {name}=tier=pro")
            found[key.strip()] = value
        return found


def _timestamp(name: str, text: str) -> int:
    try:
        return parse_timestamp(text, name)
    except ValueError as error:
        raise BadRequest(name, str(error)) from None
