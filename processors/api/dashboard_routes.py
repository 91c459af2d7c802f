"""Serving the dashboard: ``/``, ``/static/*`` and ``GET /api/v1/dashboard``.

The page and its files are served by aiohttp's `web.FileResponse` (conditional requests,
sendfile) from a fixed allow-list, `FILES`: a name outside it is 404, so no request can reach
another file (``{name}`` never matches a ``/``, and only a listed name is joined to the folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from otel_impact.processors.api.dashboard_config import DashboardConfig
from otel_impact.processors.api.params import QueryParams, bad_request
from otel_impact.processors.clock import Clock
from otel_impact.processors.durations import MINUTE_NS, SECOND_NS
from otel_impact.processors.impact_queries import ImpactQueries
from otel_impact.processors.slo.burn import Budget, tally
from otel_impact.processors.slo.config import SloConfig
from otel_impact.processors.slo.windows import period_bounds

STATIC = Path(__file__).parent / "static"
FILES = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
"""The files under ``/static/`` and their content types; nothing else is served from there."""
PAGE = "index.html"
HISTORY_POINTS = 24


class DashboardRoutes:
    """The page and its overview endpoint over an `ImpactQueries` source and the configured SLOs."""

    def __init__(
        self, config: DashboardConfig, queries: ImpactQueries, slos: Sequence[SloConfig], clock: Clock
    ) -> None:
        self.config = config
        self.queries = queries
        self.slos = tuple(slos)
        self.clock = clock

    async def page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / PAGE, headers={"Content-Type": "text/html; charset=utf-8"})

    async def static(self, request: web.Request) -> web.FileResponse:
        name = request.match_info["name"]
        content_type = FILES.get(name)
        if content_type is None:
            raise web.HTTPNotFound()
        return web.FileResponse(
            STATIC / name,
            headers={"Content-Type": f"{content_type}; charset=utf-8", "Cache-Control": "no-cache"},
        )

    async def overview(self, request: web.Request) -> web.Response:
        try:
            window, _ = QueryParams(request.query).window(self.config.default_window)
        except ValueError as error:
            return bad_request(error)
        return web.json_response(self.overview_document(window))

    def overview_document(self, window: str) -> dict[str, Any]:
        """Tasks with their runbooks, whether SLOs are configured, and each SLO's budget history."""
        now = self.clock.now_ns()
        tasks = []
        for task in self.queries.tasks():
            links = [{"title": r.title, "url": r.url} for r in self.config.runbooks.get(task, ())]
            links += [
                {"title": f"{s.name} runbook", "url": s.runbook} for s in self.slos if s.task == task and s.runbook
            ]
            tasks.append({"name": task, "dimensions": list(self.queries.dimensions(task)), "runbooks": links})
        known = set(self.queries.tasks())
        return {
            "refresh_seconds": self.config.refresh_seconds,
            "default_window": self.config.default_window,
            "window": window,
            "tasks": tasks,
            "slos_enabled": bool(self.slos),
            "budget_history": {s.name: self.budget_history(s, now) for s in self.slos if s.task in known},
        }

    def budget_history(self, slo: SloConfig, now: int) -> list[dict[str, float]]:
        """Error budget remaining over the SLO's current period, for the segment with the least left.

        ``t`` is seconds since the epoch; ``budget_remaining`` is a fraction (negative once spent).
        """
        start, _, _ = period_bounds(slo.window, now)
        first = start + MINUTE_NS
        if now <= first:
            return []
        step = max(MINUTE_NS, (now - first) // (HISTORY_POINTS - 1))
        points: list[tuple[int, dict[tuple[str, ...], float]]] = []
        for index in range(HISTORY_POINTS):
            at = min(now, first + index * step)
            counts = self.queries.counts(slo.task, start, at, by=slo.by)
            remaining = {key: Budget.of(tally(c, slo.sli), slo.error_budget).remaining for key, c in counts.items()}
            points.append((at, remaining))
            if at == now:
                break
        final = points[-1][1]
        if not final:
            return []
        worst = min(final, key=lambda key: final[key])
        return [{"t": at // SECOND_NS, "budget_remaining": left.get(worst, 1.0)} for at, left in points]


def add_routes(app: web.Application, routes: DashboardRoutes) -> None:
    """Serve the page at ``/``, its files under ``/static/`` and ``GET /api/v1/dashboard``."""
    app.router.add_get("/", routes.page)
    app.router.add_get("/static/{name}", routes.static)
    app.router.add_get("/api/v1/dashboard", routes.overview)
