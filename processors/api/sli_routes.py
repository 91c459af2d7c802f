"""The impact JSON API on the admin HTTP server (aiohttp).

``add_routes(app, queries)`` adds:

* ``GET /api/v1/impact?task=T&window=W[&by=ATTR[,ATTR]][&where=ATTR=VALUE][&end=TIME]``: the
  impact document (`impact_document` of `SliQueries.impact`).
* ``GET /api/v1/customers/top?task=T&window=W[&limit=N][&where=ATTR=VALUE][&end=TIME]``: the
  most impacted customers, as pseudonyms, with bounds.
* ``GET /api/v1/tasks``: the known tasks, dimensions and latency thresholds.

``window`` defaults to ``1h``; it ends at the end of the current minute (or at ``end``: unix
seconds or RFC 3339), so the minute in progress is included. A bad parameter, an unknown task or
an unknown dimension gets HTTP 400 with ``{"error": reason}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from otel_impact.processors.api.documents import impact_document, top_customers_document
from otel_impact.processors.durations import MINUTE_NS, floor_minute, parse_timestamp, parse_window
from otel_impact.processors.sli.queries import SliQueries

__all__ = ["add_routes"]

DEFAULT_WINDOW = "1h"
MAX_TOP = 100


def add_routes(app: web.Application, queries: SliQueries) -> None:
    """Serve the impact API from ``queries`` on ``app`` (its clock gives "now")."""
    handlers = _Handlers(queries)
    app.router.add_get("/api/v1/impact", handlers.impact)
    app.router.add_get("/api/v1/customers/top", handlers.top_customers)
    app.router.add_get("/api/v1/tasks", handlers.tasks)


class BadRequest(ValueError):
    """A request parameter is wrong; the message says which and how to fix it."""


class _Handlers:
    def __init__(self, queries: SliQueries) -> None:
        self.queries = queries

    async def impact(self, request: web.Request) -> web.Response:
        try:
            task, start, end, window = self._window(request.query)
            by = [name.strip() for value in request.query.getall("by", []) for name in value.split(",") if name.strip()]
            where = _where(request.query)
            report = self.queries.impact(task, start, end, by=by, where=where, window=window)
        except (BadRequest, ValueError) as error:
            return _bad_request(str(error))
        return web.json_response(impact_document(report))

    async def top_customers(self, request: web.Request) -> web.Response:
        try:
            task, start, end, window = self._window(request.query)
            limit_text = request.query.get("limit", "10")
            if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_TOP:
                raise BadRequest(f"limit {limit_text!r} is not a number from 1 to {MAX_TOP}")
            top = self.queries.top_customers(task, start, end, limit=int(limit_text), where=_where(request.query))
        except (BadRequest, ValueError) as error:
            return _bad_request(str(error))
        return web.json_response(top_customers_document(top, window))

    async def tasks(self, request: web.Request) -> web.Response:
        queries = self.queries
        return web.json_response(
            {
                "tasks": [
                    {
                        "task": name,
                        "dimensions": list(queries.dimensions(name)),
                        "latency_thresholds_s": list(queries.latency_thresholds(name)),
                    }
                    for name in queries.tasks()
                ]
            }
        )

    def _window(self, query: Mapping[str, str]) -> tuple[str, int, int, str]:
        task = query.get("task")
        if not task:
            raise BadRequest("task is required, e.g. ?task=checkout")
        if task not in self.queries.engine.tasks:
            known = ", ".join(self.queries.tasks()) or "none yet"
            raise BadRequest(f"unknown task {task!r}; known tasks: {known}")
        window = query.get("window", DEFAULT_WINDOW)
        length = parse_window(window)
        end_text = query.get("end")
        end = floor_minute(self.queries.engine.clock.now_ns()) + MINUTE_NS if end_text is None else _time(end_text)
        return task, end - length, end, window


def _where(query: Mapping[str, Any]) -> dict[str, str]:
    where: dict[str, str] = {}
    for item in query.getall("where", []):  # type: ignore[attr-defined]
        name, sep, value = str(item).partition("=")
        if not sep or not name:
            raise BadRequest(f"where {item!r} is not DIMENSION=VALUE, e.g. where=tier=pro")
        where[name.strip()] = value
    return where


def _time(text: str) -> int:
    try:
        return floor_minute(parse_timestamp(text, "end"))
    except ValueError as error:
        raise BadRequest(str(error)) from None


def _bad_request(reason: str) -> web.Response:
    return web.json_response({"error": reason}, status=400)
