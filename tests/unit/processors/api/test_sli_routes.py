"""The impact API over real HTTP on loopback, and ``otel-impact report`` reading it."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from support.sli_http import MINUTE, build_engine, serving

from otel_impact.processors.api.documents import impact_document
from otel_impact.processors.cli import build_parser
from otel_impact.processors.cli.report import run as run_report
from otel_impact.processors.sli import SliEngine
from otel_impact.processors.sli.queries import SliQueries


def with_server(test: Callable[[str, SliEngine], Awaitable[None]]) -> None:
    engine = build_engine()

    async def main() -> None:
        async with serving(engine) as base:
            await test(base, engine)

    asyncio.run(main())


def without_quantiles(document: dict[str, Any]) -> dict[str, Any]:
    stripped = {key: value for key, value in document.items() if key != "latency_ms"}
    stripped["segments"] = [without_quantiles(segment) for segment in document.get("segments", [])]
    return stripped


async def get(base: str, path: str, **params: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{base}{path}", params=params) as response:
        return response.status, await response.json()


def test_impact_over_http_is_the_query_document() -> None:
    async def check(base: str, engine: SliEngine) -> None:
        status, body = await get(base, "/api/v1/impact", task="checkout", window="15m")
        assert status == 200
        end = engine.clock.now_ns() - engine.clock.now_ns() % MINUTE + MINUTE
        expected = impact_document(SliQueries(engine).impact("checkout", end - 15 * MINUTE, end, window="15m"))
        expected |= {
            "traffic": "real",
            "synthetic": {"events": {"total": 0, "good": 0, "bad": 0}, "success_ratio": None},
        }
        assert without_quantiles(body) == without_quantiles(expected)  # KLL merges are randomized
        assert body["events"] == {"total": 300, "good": 250, "bad": 50}
        assert body["revenue_at_risk"] == 500.0
        for field in (
            "task",
            "window",
            "events",
            "success_ratio",
            "users",
            "impacted_users",
            "revenue_at_risk",
            "latency_ms",
        ):
            assert field in body
        assert set(body["latency_ms"]) == {"p50", "p95", "p99"} and body["telemetry"]["complete"] is True
        assert body["segments"][0]["segment"] == {"tier": "pro", "variant": "on"}

        status, by_tier = await get(base, "/api/v1/impact", task="checkout", window="15m", by="tier")
        assert status == 200 and {s["segment"]["tier"] for s in by_tier["segments"]} == {"free", "pro", "enterprise"}
        status, by_flag = await get(
            base, "/api/v1/impact", task="checkout", window="1h", by="flag:new_checkout", where="tier=pro"
        )
        assert status == 200
        assert {s["segment"]["variant"]: s["events"]["bad"] for s in by_flag["segments"]} == {"on": 50, "off": 0}

        status, top = await get(base, "/api/v1/customers/top", task="checkout", window="15m", limit="3")
        assert status == 200 and len(top["customers"]) == 3
        assert all(c["lower"] <= c["bad_events"] <= c["upper"] for c in top["customers"])

        status, tasks = await get(base, "/api/v1/tasks")
        assert status == 200 and tasks["tasks"][0]["task"] == "checkout"

    with_server(check)


BAD_REQUESTS = [
    ("/api/v1/impact", {"window": "1h"}, "task is required"),
    ("/api/v1/impact", {"task": "nope", "window": "1h"}, "unknown task 'nope'; known tasks: checkout"),
    ("/api/v1/impact", {"task": "checkout", "window": "1 hour"}, "is not a duration"),
    ("/api/v1/impact", {"task": "checkout", "window": "2m"}, "from 5m to 35d"),
    ("/api/v1/impact", {"task": "checkout", "window": "90d"}, "from 5m to 35d"),
    ("/api/v1/impact", {"task": "checkout", "window": "90s"}, "from 5m to 35d"),
    ("/api/v1/impact", {"task": "checkout", "window": "301s"}, "whole number of minutes"),
    ("/api/v1/impact", {"task": "checkout", "by": "region"}, "unknown dimension 'region'"),
    ("/api/v1/impact", {"task": "checkout", "where": "tier"}, "DIMENSION=VALUE"),
    ("/api/v1/impact", {"task": "checkout", "end": "yesterday"}, "not unix seconds"),
    ("/api/v1/customers/top", {"task": "checkout", "limit": "1000"}, "from 1 to 100"),
    ("/api/v1/customers/top", {"task": "other"}, "unknown task"),
]


@pytest.mark.parametrize(("path", "params", "reason"), BAD_REQUESTS)
def test_bad_requests_get_400_with_the_reason(path: str, params: dict[str, str], reason: str) -> None:
    async def check(base: str, engine: SliEngine) -> None:
        status, body = await get(base, path, **params)
        assert status == 400
        assert reason in body["error"]

    with_server(check)


def test_report_prints_a_table_with_bounds() -> None:
    async def check(base: str, engine: SliEngine) -> None:
        out = io.StringIO()
        args = build_parser().parse_args(
            [
                "report",
                "--admin",
                base.removeprefix("http://"),
                "--task",
                "checkout",
                "--window",
                "15m",
                "--by",
                "tier",
                "--top",
                "2",
            ]
        )
        code = await asyncio.to_thread(run_report, args, out)
        assert code == 0
        text = out.getvalue()
        assert "Task 'checkout', last 15m" in text and "Telemetry: complete" in text
        lines = text.splitlines()
        header = next(line for line in lines if line.startswith("segment"))
        assert "users (95% bounds)" in header and "impacted (95% bounds)" in header
        pro = next(line for line in lines if line.startswith("tier=pro"))
        assert pro.split()[1:3] == ["100", "50"] and "50.00%" in pro
        all_row = next(line for line in lines if line.startswith("ALL"))
        assert all_row.split()[1:3] == ["300", "50"] and "500.00" in all_row
        assert "Most impacted customers (pseudonyms):" in text

    with_server(check)


def test_report_says_when_the_processor_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["report", "--admin", "127.0.0.1:9", "--task", "checkout", "--timeout", "2"])
    assert run_report(args, io.StringIO()) == 1
    assert "cannot read http://127.0.0.1:9/api/v1/impact" in capsys.readouterr().err


def test_attribution_over_http_breaks_the_task_down_by_service_and_route() -> None:
    async def check(base: str, engine: SliEngine) -> None:
        status, body = await get(base, "/api/v1/attribution", task="checkout", window="15m")
        assert status == 200
        assert list(body) == ["task", "window", "start", "end", "attribution", "services", "routes", "edges"]
        assert body["edges"] == []  # one service: no edge
        _, impact = await get(base, "/api/v1/impact", task="checkout", window="15m")
        overall = body["attribution"]
        assert overall["events_with_customer"] + overall["events_without_customer"] == impact["events"]["total"]
        assert sum(row["events_with_customer"] + row["events_without_customer"] for row in body["routes"]) == 300
        status, error = await get(base, "/api/v1/attribution", task="nope", window="15m")
        assert status == 400 and "nope" in error["error"]

    with_server(check)
