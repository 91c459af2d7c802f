"""``GET /api/v1/postmortem?task=T&from=TS&to=TS[&mitigated_at=TS][&format=markdown]``.

Times are unix seconds or RFC 3339 with a zone. The answer is the `build_postmortem` report
as JSON (`postmortem_document`), with ``explanation``, what the incident's failing requests had
in common (the ``/api/v1/explain`` answer for the incident window, when an explain source is
given), or its Markdown with ``format=markdown``; HTTP 400 with the reason for a bad request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiohttp import web

from otel_impact.processors.answers import Answers, LocalAnswers
from otel_impact.processors.api.documents import postmortem_document
from otel_impact.processors.api.explain_routes import explain_document
from otel_impact.processors.api.params import QueryParams, bad_request
from otel_impact.processors.clock import Clock
from otel_impact.processors.durations import SECOND_NS, format_duration
from otel_impact.processors.impact_queries import ImpactQueries
from otel_impact.processors.postmortem.markdown import render_markdown
from otel_impact.processors.postmortem.report import Postmortem, build_postmortem
from otel_impact.processors.sli.explain import Explanation
from otel_impact.processors.slo.alert_state import AlertTransition
from otel_impact.processors.slo.config import SloConfig

Timeline = Callable[[int, int, str], Sequence[AlertTransition]]
"""``(start_ns, end_ns, task) -> transitions``, e.g. a bound `SloEngine.timeline`."""
Explain = Callable[[str, int, int], Explanation]
"""``(task, start_ns, end_ns) -> explanation``, e.g. `explain_task` over the SLI state."""


class PostmortemRoutes:
    def __init__(
        self,
        queries: ImpactQueries,
        slos: Sequence[SloConfig],
        timeline: Timeline,
        clock: Clock,
        answers: Answers | None = None,
        *,
        explain: Explain | None = None,
    ) -> None:
        """``answers`` asks the questions (default: ``queries`` on the event loop); ``explain``
        adds what the failing requests had in common."""
        self.explain = explain
        self.queries = queries
        self.slos = tuple(slos)
        self.timeline = timeline
        self.clock = clock
        self.answers: Answers = answers or LocalAnswers(queries)  # type: ignore[arg-type]

    async def postmortem(self, request: web.Request) -> web.Response:
        params = QueryParams(request.query)
        try:
            start = params.required_timestamp("from")
            end = params.required_timestamp("to")
            mitigated = params.timestamp("mitigated_at")
            timeline = self.timeline
            now = self.clock.now_ns()

            def build(queries: ImpactQueries) -> Postmortem:
                task = params.task(queries.tasks())
                return build_postmortem(
                    queries, self.slos, timeline(start, end, task), task, start, end, mitigated_ns=mitigated, now_ns=now
                )

            postmortem = await self.answers.run(build)
        except ValueError as error:
            return bad_request(error)
        doc = postmortem_document(postmortem)
        if self.explain is not None:
            window = format_duration((end - start) // SECOND_NS)
            doc["explanation"] = explain_document(self.explain(postmortem.task, start, end), window)
        if params.text("format") == "markdown":
            return web.Response(text=render_markdown(doc), content_type="text/markdown")
        return web.json_response(doc)


def add_routes(app: web.Application, routes: PostmortemRoutes) -> None:
    """Serve ``GET /api/v1/postmortem`` on ``app``."""
    app.router.add_get("/api/v1/postmortem", routes.postmortem)
