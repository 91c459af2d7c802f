"""Serving the dashboard: ``/``, ``/static/*`` and ``GET /api/v1/dashboard``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from otel_impact.processors.api.dashboard_config import DashboardConfig
from otel_impact.processors.clock import Clock
from otel_impact.processors.durations import SECOND_NS, parse_window
from otel_impact.processors.impact_queries import ImpactQueries
from otel_impact.processors.slo.config import SloConfig
from otel_impact.processors.slo.evaluate import BudgetHistory

STATIC = Path(__file__).parent / "static"
FILES = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}


class SloBudgets(Protocol):
    """What the dashboard asks the SLO engine (`SloEngine` is one): the configured SLOs and the
    error budget history of each over its current period."""

    @property
    def slos(self) -> Sequence[SloConfig]: ...

    def budget_histories(self, now_ns: int | None = None) -> Sequence[BudgetHistory]: ...


class DashboardRoutes:
    """The page and its overview endpoint over an `ImpactQueries` source (the tasks) and the SLO
    engine (the SLOs and their budgets)."""

    def __init__(self, config: DashboardConfig, queries: ImpactQueries, slo: SloBudgets, clock: Clock) -> None:
        self.config = config
        self.queries = queries
        self.slo = slo
        self.clock = clock

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(body=(STATIC / "index.html").read_bytes(), content_type="text/html", charset="utf-8")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in FILES:
            raise web.HTTPNotFound()
        return web.Response(
            body=(STATIC / name).read_bytes(),
            content_type=FILES[name],
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def overview(self, request: web.Request) -> web.Response:
        window = request.query.get("window", self.config.default_window)
        try:
            parse_window(window)
        except ValueError as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(self.overview_document(window))

    def overview_document(self, window: str) -> dict[str, Any]:
        """Tasks with their runbooks, whether SLOs are configured, and each SLO's budget history.

        A budget history's ``t`` is seconds since the epoch and ``budget_remaining`` a fraction
        (negative once spent), for the segment with the least budget left.
        """
        now = self.clock.now_ns()
        slos = self.slo.slos
        tasks = []
        for task in self.queries.tasks():
            links = [{"title": r.title, "url": r.url} for r in self.config.runbooks.get(task, ())]
            links += [{"title": f"{s.name} runbook", "url": s.runbook} for s in slos if s.task == task and s.runbook]
            tasks.append({"name": task, "dimensions": list(self.queries.dimensions(task)), "runbooks": links})
        return {
            "refresh_seconds": self.config.refresh_seconds,
            "default_window": self.config.default_window,
            "window": window,
            "tasks": tasks,
            "slos_enabled": bool(slos),
            "budget_history": {
                history.slo: [{"t": p.at_ns // SECOND_NS, "budget_remaining": p.remaining} for p in history.points]
                for history in self.slo.budget_histories(now)
            },
        }


def add_routes(app: web.Application, routes: DashboardRoutes) -> None:
    """Serve the page at ``/``, its files under ``/static/`` and ``GET /api/v1/dashboard``."""
    app.router.add_get("/", routes.page)
    app.router.add_get("/static/{name}", routes.static)
    app.router.add_get("/api/v1/dashboard", routes.overview)
