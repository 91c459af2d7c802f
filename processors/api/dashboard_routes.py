"""Serving the dashboard: ``/``, ``/static/*`` and ``GET /api/v1/dashboard``.

The page and its files are served by aiohttp's `web.FileResponse` (conditional requests,
sendfile) from a fixed allow-list, `FILES`: a name outside it is 404, so no request can reach
another file (``{name}`` never matches a ``/``, and only a listed name is joined to the folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from otel_impact.processors.answers import Answers, LocalAnswers
from otel_impact.processors.api.dashboard_config import DashboardConfig
from otel_impact.processors.api.documents import lag_fields
from otel_impact.processors.api.params import QueryParams, bad_request
from otel_impact.processors.api.synthetic import SyntheticSource
from otel_impact.processors.clock import Clock
from otel_impact.processors.durations import MINUTE_NS, SECOND_NS, floor_minute, parse_window
from otel_impact.processors.gate.mismatch import traffic_mismatch
from otel_impact.processors.impact_queries import ImpactQueries
from otel_impact.processors.sli.synthetic_queries import NO_EVENTS
from otel_impact.processors.slo.config import SloConfig
from otel_impact.processors.slo.evaluate import BudgetHistory

STATIC = Path(__file__).parent / "static"
FILES = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
"""The files under ``/static/`` and their content types; nothing else is served from there."""
PAGE = "index.html"
HISTORY_POINTS = 24


class SloBudgets(Protocol):
    """What the dashboard asks the SLO engine (`SloEngine` is one): the configured SLOs and the
    error budget history of each over its current period."""

    @property
    def slos(self) -> Sequence[SloConfig]: ...

    def budget_histories(
        self, now_ns: int | None = None, queries: ImpactQueries | None = None
    ) -> Sequence[BudgetHistory]: ...


class DashboardRoutes:
    """The page and its overview endpoint over an `ImpactQueries` source (the tasks) and the SLO
    engine (the SLOs and their budgets)."""

    def __init__(
        self,
        config: DashboardConfig,
        queries: ImpactQueries,
        slo: SloBudgets,
        clock: Clock,
        answers: Answers | None = None,
        *,
        synthetic: SyntheticSource | None = None,
    ) -> None:
        """``answers`` asks the questions (default: ``queries`` on the event loop); ``synthetic``
        answers about synthetic traffic."""
        self.synthetic = synthetic
        self.config = config
        self.queries = queries
        self.answers: Answers = answers or LocalAnswers(queries)  # type: ignore[arg-type]
        self.slo = slo
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
        document = await self.answers.run(lambda queries: self.overview_document(window, queries))
        end = floor_minute(self.clock.now_ns()) + MINUTE_NS
        start = end - parse_window(window)
        document["synthetic"] = {
            task["name"]: await self._synthetic(task["name"], start, end) for task in document["tasks"]
        }
        return web.json_response(document)

    def overview_document(self, window: str, queries: ImpactQueries | None = None) -> dict[str, Any]:
        """Tasks with their runbooks, whether SLOs are configured, and each SLO's budget history.

        A budget history's ``t`` is seconds since the epoch and ``budget_remaining`` a fraction
        (negative once spent), for the segment with the least budget left. ``now`` is the
        server's time (seconds since the epoch) and ``telemetry`` maps each task to the
        `ImpactQueries.window_completeness` of the window ending at the end of this minute (as
        ``/api/v1/impact`` answers it): ``complete``, ``reason``, ``observed_seconds``,
        ``state_covers_window``, ``telemetry_lost`` and ``covered_from`` (seconds since the epoch).
        (The route adds ``synthetic``: each task's synthetic events and their comparison with real
        users', `_synthetic`.)
        """
        queries = queries or self.queries
        now = self.clock.now_ns()
        end = floor_minute(now) + MINUTE_NS
        start = end - parse_window(window)
        slos = self.slo.slos
        tasks = []
        for task in queries.tasks():
            links = [{"title": r.title, "url": r.url} for r in self.config.runbooks.get(task, ())]
            links += [{"title": f"{s.name} runbook", "url": s.runbook} for s in slos if s.task == task and s.runbook]
            tasks.append({"name": task, "dimensions": list(queries.dimensions(task)), "runbooks": links})
        return {
            "refresh_seconds": self.config.refresh_seconds,
            "default_window": self.config.default_window,
            "min_attribution": self.config.min_attribution,
            "window": window,
            "tasks": tasks,
            "now": now / SECOND_NS,
            "telemetry": {name: _telemetry(queries, name, start, end) for name in queries.tasks()},
            "slos_enabled": bool(slos),
            "budget_history": {
                history.slo: [{"t": p.at_ns // SECOND_NS, "budget_remaining": p.remaining} for p in history.points]
                for history in self.slo.budget_histories(now, queries)
            },
        }

    async def _synthetic(self, task: str, start_ns: int, end_ns: int) -> dict[str, Any]:
        """``task``'s synthetic events in the window, and whether their success differs from real
        users' (``mismatch``: beyond chance, in either direction)."""
        summary = NO_EVENTS if self.synthetic is None else await self.synthetic.summary(task, start_ns, end_ns)
        real = await self.answers.run(
            lambda queries: queries.counts(task, start_ns, end_ns).get(()) if task in queries.tasks() else None
        )
        real_total, real_bad = (real.total, real.bad) if real is not None else (0, 0)
        compared = traffic_mismatch(real_total, real_bad, summary.total, summary.bad)
        ratio = summary.success_ratio
        return {
            "events": {"total": summary.total, "good": summary.good, "bad": summary.bad},
            "success_ratio": None if ratio is None else round(ratio, 6),
            "real_success_ratio": round(1 - real_bad / real_total, 6) if real_total else None,
            **compared.to_json(),
        }


def _telemetry(queries: ImpactQueries, task: str, start_ns: int, end_ns: int) -> dict[str, Any]:
    completeness = queries.window_completeness(task, start_ns, end_ns)
    return {
        "complete": completeness.complete,
        "reason": completeness.reason,
        "observed_seconds": round(completeness.observed_seconds, 3),
        "state_covers_window": completeness.state_covers_window,
        "telemetry_lost": completeness.telemetry_lost,
        "covered_from": completeness.covered_from_ns / SECOND_NS,
        **lag_fields(completeness.lag),
    }


def add_routes(app: web.Application, routes: DashboardRoutes) -> None:
    """Serve the page at ``/``, its files under ``/static/`` and ``GET /api/v1/dashboard``."""
    app.router.add_get("/", routes.page)
    app.router.add_get("/static/{name}", routes.static)
    app.router.add_get("/api/v1/dashboard", routes.overview)
