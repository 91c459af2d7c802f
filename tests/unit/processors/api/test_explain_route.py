"""``GET /api/v1/explain`` over real HTTP on loopback, and ``otel-impact explain`` reading it."""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from support import explain_workload
from support.explain_workload import MINUTE
from support.otlp_traces import batch

from otel_impact.processors.api import explain_routes, postmortem_routes
from otel_impact.processors.api.postmortem_routes import PostmortemRoutes
from otel_impact.processors.cli import build_parser
from otel_impact.processors.cli.explain import run as run_explain
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.explain import explain_task
from otel_impact.processors.sli.queries import SliQueries

START = 1_800_000_000 * 10**9 // MINUTE * MINUTE
CONFIG = {
    "tasks": [{"name": "checkout"}, {"name": "search"}],
    "dimensions": [{"name": "region", "attribute": "cloud.region"}],
}


def build_engine() -> SliEngine:
    clock = ManualClock(start_ns=START)
    engine = SliEngine(SliConfig.from_mapping(CONFIG), clock=clock)
    assert engine.analyzer.explain is not None
    engine.analyzer.explain.random = random.Random(1).random
    for received_ns, data in explain_workload.build(1, start_ns=START):
        if received_ns > clock.now_ns():
            clock.advance((received_ns - clock.now_ns()) / 1e9)
        engine.analyze(batch(data, received_ns))
    return engine


def with_server(test: Callable[[str], Awaitable[None]]) -> None:
    engine = build_engine()

    async def main() -> None:
        app = web.Application()
        explain_routes.add_routes(app, SliQueries(engine))
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        try:
            await test(f"http://127.0.0.1:{server.port}")
        finally:
            await server.close()

    asyncio.run(main())


async def get(base: str, **params: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{base}/api/v1/explain", params=params) as response:
        return response.status, await response.json()


def test_explain_answers_with_the_pair_first() -> None:
    async def check(base: str) -> None:
        status, body = await get(base, task="checkout", window="30m")
        assert status == 200, body
        assert list(body)[:2] == ["task", "window"] and body["window"] == "30m"
        assert body["scope"] == "this processor"
        assert body["failing_events"] + body["passing_events"] == 6000
        first = body["findings"][0]
        assert {(first["attribute"], first["value"]), (first["and"]["attribute"], first["and"]["value"])} == {
            ("cloud.region", "eu-west"),
            ("service.version", "1.5"),
        }
        assert set(first) == {
            "attribute",
            "value",
            "and",
            "failing_share",
            "passing_share",
            "difference",
            "failing_users",
        }
        assert first["difference"]["low"] <= first["difference"]["estimate"] <= first["difference"]["high"]
        assert len(body["findings"]) == 3 and "and" not in body["findings"][1]
        status, body = await get(base, task="checkout", window="30m", limit="1")
        assert len(body["findings"]) == 1
        status, body = await get(base, task="checkout", window="30m", where="region=eu-west")
        assert status == 200 and body["sampled"] and body["findings"][0]["value"] == "1.5"
        status, body = await get(base, task="search", window="30m")
        assert status == 200 and body["findings"] == [] and body["failing_events"] == 0

    with_server(check)


def test_bad_requests_say_what_to_fix() -> None:
    async def check(base: str) -> None:
        for params, message in (
            ({}, "task is required"),
            ({"task": "nope"}, "unknown task 'nope'"),
            ({"task": "checkout", "window": "2m"}, "window"),
            ({"task": "checkout", "limit": "0"}, "limit '0' is not a number from 1 to 50"),
            ({"task": "checkout", "where": "oops"}, "is not DIMENSION=VALUE"),
            ({"task": "checkout", "where": "nope=x"}, "no values of 'nope'"),
        ):
            status, body = await get(base, **params)
            assert status == 400, params
            assert message in body["error"], (params, body)

    with_server(check)


def test_the_cli_prints_the_findings() -> None:
    async def check(base: str) -> None:
        out = io.StringIO()
        args = build_parser().parse_args(
            ["explain", "--admin", base.removeprefix("http://"), "--task", "checkout", "--window", "30m"]
        )
        assert await asyncio.to_thread(run_explain, args, out) == 0
        text = out.getvalue()
        assert "Task 'checkout', last 30m" in text and "candidates tested" in text
        lines = [line.strip() for line in text.splitlines()]
        first = lines[lines.index("What failing requests have in common (strongest first):") + 1]
        assert " AND " in first and "cloud.region=eu-west" in first and "service.version=1.5" in first
        assert "% of failures vs" in first and "impacted users" in first
        out = io.StringIO()
        args = build_parser().parse_args(["explain", "--admin", base.removeprefix("http://"), "--task", "nope"])
        assert await asyncio.to_thread(run_explain, args, out) == 2

    with_server(check)


def test_the_postmortem_has_a_section_on_what_failures_had_in_common() -> None:
    engine = build_engine()
    queries = SliQueries(engine)

    def explain(task: str, start: int, end: int) -> Any:
        return explain_task(engine.state.explain, engine.config.dimensions, task, start, end)

    routes = PostmortemRoutes(queries, [], lambda start, end, task: [], engine.clock, explain=explain)

    async def main() -> tuple[Any, str]:
        app = web.Application()
        postmortem_routes.add_routes(app, routes)
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        base = f"http://127.0.0.1:{server.port}/api/v1/postmortem"
        params = {"task": "checkout", "from": str(START // 10**9), "to": str(START // 10**9 + 900)}
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(base, params=params) as response:
                    document = await response.json()
                async with session.get(base, params={**params, "format": "markdown"}) as response:
                    markdown = await response.text()
        finally:
            await server.close()
        return document, markdown

    document, markdown = asyncio.run(main())
    explanation = document["explanation"]
    assert explanation["window"] == "15m" and explanation["failing_events"] > 0
    assert explanation["findings"][0]["and"] is not None
    lines = markdown.splitlines()
    start = lines.index("## What failing requests had in common")
    first = lines[start + 4]
    pair = ("| cloud.region=eu-west AND service.version=1.5 |", "| service.version=1.5 AND cloud.region=eu-west |")
    assert first.startswith(pair), first
    assert any("candidate values" in line for line in lines[start:])
