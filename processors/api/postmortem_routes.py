"""``GET /api/v1/postmortem?task=T&from=TS&to=TS[&mitigated_at=TS][&format=markdown]``.

Times are unix seconds or RFC 3339 with a zone. The answer is the `build_postmortem` report
as JSON (`postmortem_document`), or its Markdown with ``format=markdown``; HTTP 400 with the reason for a bad request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiohttp import web

from otel_impact.processors.api.documents import postmortem_document
from otel_impact.processors.clock import Clock
from otel_impact.processors.durations import parse_timestamp
from otel_impact.processors.impact_queries import ImpactQueries
from otel_impact.processors.postmortem.markdown import render_markdown
from otel_impact.processors.postmortem.report import build_postmortem
from otel_impact.processors.slo.alert_state import AlertTransition
from otel_impact.processors.slo.config import SloConfig

Timeline = Callable[[int, int, str], Sequence[AlertTransition]]
"""``(start_ns, end_ns, task) -> transitions``, e.g. a bound `SloEngine.timeline`."""


class PostmortemRoutes:
    def __init__(self, queries: ImpactQueries, slos: Sequence[SloConfig], timeline: Timeline, clock: Clock) -> None:
        self.queries = queries
        self.slos = tuple(slos)
        self.timeline = timeline
        self.clock = clock

    async def postmortem(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            task = query.get("task")
            if not task:
                raise ValueError("task is required, e.g. ?task=checkout")
            if task not in self.queries.tasks():
                known = ", ".join(self.queries.tasks()) or "none yet"
                raise ValueError(f"unknown task {task!r}; known tasks: {known}")
            start = parse_timestamp(_required(query, "from"), "from")
            end = parse_timestamp(_required(query, "to"), "to")
            mitigated_text = query.get("mitigated_at")
            mitigated = None if mitigated_text is None else parse_timestamp(mitigated_text, "mitigated_at")
            postmortem = build_postmortem(
                self.queries,
                self.slos,
                self.timeline(start, end, task),
                task,
                start,
                end,
                mitigated_ns=mitigated,
                now_ns=self.clock.now_ns(),
            )
        except ValueError as error:
            return web.json_response({"error": str(error)}, status=400)
        doc = postmortem_document(postmortem)
        if query.get("format") == "markdown":
            return web.Response(text=render_markdown(doc), content_type="text/markdown")
        return web.json_response(doc)


def add_routes(app: web.Application, routes: PostmortemRoutes) -> None:
    """Serve ``GET /api/v1/postmortem`` on ``app``."""
    app.router.add_get("/api/v1/postmortem", routes.postmortem)


def _required(query: object, name: str) -> str:
    value = query.get(name)  # type: ignore[attr-defined]
    if not value:
        raise ValueError(f"{name} is required: unix seconds or RFC 3339, e.g. 2026-11-26T21:00:00Z")
    return str(value)
