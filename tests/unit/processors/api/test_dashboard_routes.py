"""The dashboard's page and files over real HTTP on loopback: an allow-list, content types, no traversal."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from support.impact_store import InMemoryImpactStore

from otel_impact.processors.api.dashboard_config import DashboardConfig
from otel_impact.processors.api.dashboard_routes import STATIC, DashboardRoutes, add_routes
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.slo.evaluate import BudgetHistory


class _NoSlos:
    """An SLO engine with no SLOs configured."""

    slos = ()

    def budget_histories(self, now_ns: int | None = None, queries: object = None) -> tuple[BudgetHistory, ...]:
        return ()


async def _fetch(paths: list[str]) -> dict[str, tuple[int, dict[str, str], bytes]]:
    app = web.Application()
    add_routes(app, DashboardRoutes(DashboardConfig(), InMemoryImpactStore(), _NoSlos(), ManualClock()))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    answers = {}
    try:
        async with aiohttp.ClientSession() as session:
            for path in paths:
                url = server.make_url("").with_path(path, encoded=True)
                async with session.get(url) as response:
                    answers[path] = (response.status, dict(response.headers), await response.read())
    finally:
        await server.close()
    return answers


def test_the_page_and_its_files_keep_their_content_types_and_headers() -> None:
    answers = asyncio.run(_fetch(["/", "/static/dashboard.css", "/static/dashboard.js"]))
    status, headers, body = answers["/"]
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert body == (STATIC / "index.html").read_bytes()
    for name, content_type in (("dashboard.css", "text/css"), ("dashboard.js", "text/javascript")):
        status, headers, body = answers[f"/static/{name}"]
        assert status == 200 and body == (STATIC / name).read_bytes()
        assert headers["Content-Type"] == f"{content_type}; charset=utf-8"
        assert headers["Cache-Control"] == "no-cache"


def test_nothing_outside_the_allow_list_is_served() -> None:
    paths = [
        "/static/index.html",
        "/static/nope.js",
        "/static/../dashboard_routes.py",
        "/static/%2e%2e/dashboard_routes.py",
        "/static/..%2fdashboard_routes.py",
        "/static/..%5cdashboard_routes.py",
        "/static/%2e%2e%2f%2e%2e%2fserver.py",
    ]
    answers = asyncio.run(_fetch(paths))
    for path in paths:
        status, _, body = answers[path]
        assert status == 404, path
        assert b"import" not in body, path


def test_a_bad_window_is_a_400_naming_the_fix() -> None:
    answers = asyncio.run(_fetch(["/api/v1/dashboard?window=2m"]))
    status, _, body = answers["/api/v1/dashboard?window=2m"]
    assert status == 400 and b"from 5m to 35d" in body
