"""The impact JSON API on the admin HTTP server (aiohttp).

``add_routes(app, queries)`` adds:

* ``GET /api/v1/impact?task=T&window=W[&by=ATTR[,ATTR]][&where=ATTR=VALUE][&end=TIME][&traffic=real|synthetic]``:
  the impact document (`impact_document` of `SliQueries.impact`) of real users (the default,
  with a ``synthetic`` summary of the same task and window) or of synthetic traffic alone.
* ``GET /api/v1/customers/top?task=T&window=W[&limit=N][&where=ATTR=VALUE][&end=TIME]``: the
  most impacted customers, as pseudonyms, with bounds.
* ``GET /api/v1/tasks``: the known tasks, dimensions and latency thresholds.
* ``GET /api/v1/attribution?task=T&window=W[&end=TIME]``: how many of the task's events carry
  the customer, by service, by route or RPC and by service edge (``sli.propagation``), worst
  first (this processor's spans).

``window`` defaults to ``1h``; it ends at the end of the current minute (or at ``end``: unix
seconds or RFC 3339), so the minute in progress is included. A bad parameter, an unknown task or
an unknown dimension gets HTTP 400 with ``{"error": reason}``.
"""

from __future__ import annotations

from aiohttp import web

from otel_impact.processors.answers import AnswerQueries, Answers, LocalAnswers
from otel_impact.processors.api.documents import (
    attribution_document,
    impact_document,
    synthetic_summary_document,
    top_customers_document,
)
from otel_impact.processors.api.params import BadRequest, QueryParams, bad_request
from otel_impact.processors.api.synthetic import SyntheticSource
from otel_impact.processors.durations import MINUTE_NS, floor_minute
from otel_impact.processors.impact_queries import ImpactReport
from otel_impact.processors.sli.queries import SliQueries, TopCustomers
from otel_impact.processors.sli.synthetic_queries import NO_EVENTS, synthetic_queries
from otel_impact.processors.traffic import parse_traffic

__all__ = ["add_routes"]

DEFAULT_WINDOW = "1h"
MAX_TOP = 100


def add_routes(
    app: web.Application,
    queries: SliQueries,
    answers: Answers | None = None,
    *,
    synthetic: SyntheticSource | None = None,
) -> None:
    """Serve the impact API on ``app``, asking ``answers`` (default: ``queries`` on the event
    loop) and, for synthetic traffic, ``synthetic`` (default: the synthetic state of ``queries``'
    engine, on the event loop); ``queries``' clock gives "now"."""
    synthetic = synthetic or SyntheticSource.of(synthetic_queries(queries))
    handlers = _Handlers(queries, answers or LocalAnswers(queries), synthetic)
    app.router.add_get("/api/v1/impact", handlers.impact)
    app.router.add_get("/api/v1/customers/top", handlers.top_customers)
    app.router.add_get("/api/v1/tasks", handlers.tasks)
    app.router.add_get("/api/v1/attribution", handlers.attribution)


class _Handlers:
    def __init__(self, queries: SliQueries, answers: Answers, synthetic: SyntheticSource | None) -> None:
        self.queries = queries
        self.answers = answers
        self.synthetic = synthetic

    async def impact(self, request: web.Request) -> web.Response:
        try:
            params = QueryParams(request.query)
            by = params.names("by")
            where = params.pairs("where")
            traffic = params.choice("traffic", parse_traffic)

            def ask(queries: AnswerQueries) -> ImpactReport:
                task, start, end, window = self._window(params, queries)
                return queries.impact(task, start, end, by=by, where=where, window=window)

            if traffic == "synthetic":
                report = await self._synthetic_impact(params, by, where)
            else:
                report = await self.answers.run(ask)
        except ValueError as error:  # BadRequest, or an unknown dimension
            return bad_request(error)
        document = {**impact_document(report), "traffic": traffic}
        if traffic == "real":
            summary = NO_EVENTS
            if self.synthetic is not None:
                summary = await self.synthetic.summary(report.task, report.start_ns, report.end_ns)
            document["synthetic"] = synthetic_summary_document(summary)
        return web.json_response(document)

    async def _synthetic_impact(self, params: QueryParams, by: list[str], where: dict[str, str]) -> ImpactReport:
        """The impact report of the synthetic events alone (``traffic=synthetic``)."""
        source = self.synthetic
        if source is None:
            raise BadRequest("traffic", "traffic=synthetic: this processor keeps no synthetic state")
        known = await self.answers.run(lambda queries: list(queries.tasks()))
        task = params.task({*known, *source.local.engine.tasks})
        _, start, end, window = self._window(params, None)
        return await source.ask(
            task, known, lambda queries: queries.impact(task, start, end, by=by, where=where, window=window)
        )

    async def top_customers(self, request: web.Request) -> web.Response:
        try:
            params = QueryParams(request.query)
            limit = params.integer("limit", 10, minimum=1, maximum=MAX_TOP)
            where = params.pairs("where")

            def ask(queries: AnswerQueries) -> tuple[TopCustomers, str]:
                task, start, end, window = self._window(params, queries)
                return queries.top_customers(task, start, end, limit=limit, where=where), window

            top, window = await self.answers.run(ask)
        except ValueError as error:  # BadRequest, or an unknown dimension
            return bad_request(error)
        return web.json_response(top_customers_document(top, window))

    async def tasks(self, request: web.Request) -> web.Response:
        def ask(queries: AnswerQueries) -> list[dict[str, object]]:
            return [
                {
                    "task": name,
                    "dimensions": list(queries.dimensions(name)),
                    "latency_thresholds_s": list(queries.latency_thresholds(name)),
                }
                for name in queries.tasks()
            ]

        return web.json_response({"tasks": await self.answers.run(ask)})

    async def attribution(self, request: web.Request) -> web.Response:
        try:
            params = QueryParams(request.query)
            task, start, end, window = self._window(params, self.queries)
            rows = self.queries.attribution_rows(task, start, end)
            edges = self.queries.edges(task, start, end)
        except ValueError as error:
            return bad_request(error)
        return web.json_response(attribution_document(task, window, start, end, rows, edges))

    def _window(self, params: QueryParams, queries: AnswerQueries | None) -> tuple[str, int, int, str]:
        """The task (checked against ``queries``' tasks, when given) and the window asked."""
        task = params.task(None if queries is None else queries.tasks())
        window, length = params.window(DEFAULT_WINDOW)
        end = params.minute("end")
        if end is None:
            end = floor_minute(self.queries.engine.clock.now_ns()) + MINUTE_NS
        return task, end - length, end, window
