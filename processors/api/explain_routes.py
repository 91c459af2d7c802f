"""``GET /api/v1/explain?task=T&window=W[&where=DIM=VALUE][&end=TIME][&limit=N]``: what the
task's failing events have in common (`processors.sli.explain`).

The answer::

    {"task": "checkout", "window": "30m", "start": "...", "end": "...", "scope": "this processor",
     "failing_events": 512, "passing_events": 20480, "passing_sampled": 5120,
     "candidates_tested": 61, "sampled": false,
     "findings": [{"attribute": "cloud.region", "value": "eu-west",
                   "and": {"attribute": "service.version", "value": "1.5"},
                   "failing_share": 0.97, "passing_share": 0.02,
                   "difference": {"estimate": 0.95, "low": 0.92, "high": 0.97},
                   "failing_users": 83}, ...]}

``and`` is there only for a pair of values. ``window`` defaults to ``1h`` (5m to 35d) and ends at
the end of the current minute, or at ``end``; ``start`` is where the counts really start (a long
window is widened to its oldest bucket's edge). ``limit`` (1-50, default 10) caps the findings.
Explain counts are this processor's own events: under shared state, each replica explains what
it analysed (``scope``). A bad parameter or an unknown task or attribute gets HTTP 400.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from otel_impact.processors.api.params import QueryParams, bad_request
from otel_impact.processors.durations import MINUTE_NS, floor_minute
from otel_impact.processors.sli.explain import Explanation, Finding, explain_task
from otel_impact.processors.sli.queries import SliQueries
from otel_impact.processors.slo.alerts import rfc3339

__all__ = ["SCOPE", "add_routes", "explain_document", "finding_json"]

DEFAULT_WINDOW: Final = "1h"
MAX_FINDINGS: Final = 50
SCOPE: Final = "this processor"
"""Whose events an explain answer covers (explain counts are not shared between replicas)."""


def add_routes(app: web.Application, queries: SliQueries) -> None:
    """Serve ``GET /api/v1/explain`` over ``queries``' engine (its clock gives "now")."""

    async def handler(request: web.Request) -> web.Response:
        try:
            params = QueryParams(request.query)
            document = explain_for(queries, params)
        except ValueError as error:  # BadRequest, or an unknown attribute
            return bad_request(error)
        return web.json_response(document)

    app.router.add_get("/api/v1/explain", handler)


def explain_for(queries: SliQueries, params: QueryParams) -> dict[str, Any]:
    """The explain document for a request's parameters; raises ``ValueError`` (`BadRequest`)."""
    task = params.task(queries.tasks())
    window, length = params.window(DEFAULT_WINDOW)
    limit = params.integer("limit", 10, minimum=1, maximum=MAX_FINDINGS)
    where = params.pairs("where")
    end = params.minute("end")
    if end is None:
        end = floor_minute(queries.engine.clock.now_ns()) + MINUTE_NS
    state = queries.engine.state
    answer = explain_task(state.explain, state.config.dimensions, task, end - length, end, where=where)
    return explain_document(answer, window, limit=limit)


def explain_document(answer: Explanation, window: str, *, limit: int = 10) -> dict[str, Any]:
    """An `Explanation` as JSON (key order is part of the shape)."""
    return {
        "task": answer.task,
        "window": window,
        "start": rfc3339(answer.start_ns),
        "end": rfc3339(answer.end_ns),
        "scope": SCOPE,
        "failing_events": answer.failing_events,
        "passing_events": answer.passing_events,
        "passing_sampled": answer.passing_sampled,
        "candidates_tested": answer.candidates_tested,
        "sampled": answer.sampled,
        "findings": [finding_json(finding) for finding in answer.findings[:limit]],
    }


def finding_json(finding: Finding) -> dict[str, Any]:
    """One finding as JSON (``and`` only for a pair)."""
    out: dict[str, Any] = {"attribute": finding.attribute, "value": finding.value}
    if finding.also is not None:
        out["and"] = {"attribute": finding.also[0], "value": finding.also[1]}
    difference = finding.difference
    out.update(
        failing_share=round(finding.failing_share, 4),
        passing_share=round(finding.passing_share, 4),
        difference={
            "estimate": round(difference.estimate, 4),
            "low": round(difference.low, 4),
            "high": round(difference.high, 4),
        },
        failing_users=finding.failing_users,
    )
    return out
