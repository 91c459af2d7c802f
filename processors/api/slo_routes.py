"""``GET /api/v1/slos``: every SLO with its budget, burn rates, alert state and impact score.

The admin server calls `add_routes(app, engine)` on its aiohttp application. The answer is the
engine's last evaluation (the loop runs every ``evaluation_interval``), so a request costs no
queries. ``?name=SLO`` narrows it to one SLO (404 if there is none by that name).

Shape::

    {"evaluated_at": "...Z", "evaluation_interval_seconds": 30,
     "slos": [{"name", "task", "objective", "error_budget", "sli", "window", "period", "by",
               "labels", "runbook", "status": "ok"|"no_data"|"error", "reason", "telemetry",
               "alert_state": "ok"|"ticket"|"page", "budget_remaining", "score", "severity",
               "segments": [{"segment", "events", "sli", "budget", "burn_rates", "conditions",
                             "alert", "impact", "impact_error"}]}],
     "delivery": {"<receiver>": {"sent", "failed", "dropped_overflow", ...}}}
"""

from __future__ import annotations

from aiohttp import web

from otel_impact.processors.api.params import QueryParams, bad_request
from otel_impact.processors.slo.engine import SloEngine
from otel_impact.processors.slo.render import transition_json

DAY_NS = 86_400 * 10**9

__all__ = ["SLO_ENGINE_KEY", "add_routes"]

SLO_ENGINE_KEY = web.AppKey("otel_impact_slo_engine", SloEngine)


def add_routes(app: web.Application, engine: SloEngine) -> None:
    """Serve ``GET /api/v1/slos`` from ``engine`` on ``app``."""
    app[SLO_ENGINE_KEY] = engine
    app.router.add_get("/api/v1/slos", _list_slos)
    app.router.add_get("/api/v1/alerts", _alert_timeline)


async def _list_slos(request: web.Request) -> web.Response:
    engine = request.app[SLO_ENGINE_KEY]
    snapshot = engine.snapshot()
    name = QueryParams(request.query).text("name")
    if name is not None:
        chosen = [slo for slo in snapshot["slos"] if slo["name"] == name]
        if not chosen:
            known = ", ".join(slo["name"] for slo in snapshot["slos"]) or "none configured"
            return web.json_response({"error": f"no SLO named {name!r} (known: {known})"}, status=404)
        snapshot = {**snapshot, "slos": chosen}
    return web.json_response(snapshot)


async def _alert_timeline(request: web.Request) -> web.Response:
    """``GET /api/v1/alerts[?from=TS&to=TS&task=T]``: alerts fired and resolved, oldest first.

    The default range is the last 24 hours. The timeline is kept in memory since the start.
    """
    engine = request.app[SLO_ENGINE_KEY]
    now = engine.clock.now_ns()
    params = QueryParams(request.query)
    try:
        start = params.timestamp("from")
        end = params.timestamp("to")
    except ValueError as error:
        return bad_request(error)
    start = now - DAY_NS if start is None else start
    end = now + 1 if end is None else end
    transitions = engine.timeline(start, end, task=params.text("task"))
    return web.json_response({"alerts": [transition_json(t) for t in transitions]})
