"""The zero-code walkthrough of docs/zero-code.md, step by step, as a new user runs it.

A small Flask app with no otel-impact code, started under ``opentelemetry-instrument`` with only
environment variables (tasks from ``OTEL_IMPACT_TASKS``, customer and tier from headers), sends
its spans to ``otel-impact serve`` started with no config file; customers of three tiers check
out, one tier's checkouts fail with HTTP 500, and ``otel-impact report --task checkout --by
tier``, run as the command, shows the impacted users of exactly that tier. Variants: 429s made
failures by ``OTEL_IMPACT_TASK_FAILURE``, and an explicit ``user_task`` in a handler winning over
the rule. No canary customer ID appears in anything printed or logged.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from support.canaries import CANARY_EMAIL, CANARY_NUMBER, TEST_KEY_HEX, assert_no_canary
from support.processes import Service, service
from support.processor import CLI, Processor, get_json, serve
from support.zero_code import APPS, INSTRUMENT

pytestmark = pytest.mark.slow

CUSTOMERS = {
    "enterprise": ["ent-1", "ent-2", "ent-3"],
    "pro": [CANARY_EMAIL, CANARY_NUMBER, "pro-3", "pro-4"],
    "free": ["free-1", "free-2", "free-3", "free-4", "free-5"],
}
PER_CUSTOMER = 2


@pytest.fixture(scope="module")
def processor() -> Iterator[Processor]:
    with serve() as running:  # no config file: every task named on a span is counted
        yield running


def walkthrough_env(processor: Processor, **extra: str) -> dict[str, str]:
    """The variables of the walkthrough, and nothing else of OpenTelemetry's or otel-impact's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "DJANGO_"))}
    env.update(
        {
            "OTEL_SERVICE_NAME": "shop",
            "OTEL_EXPORTER_OTLP_ENDPOINT": processor.grpc_endpoint,
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_IMPACT_HASH_KEY": TEST_KEY_HEX,
            "OTEL_IMPACT_CUSTOMER_HEADER": "X-Customer-Id",
            "OTEL_IMPACT_TIER_HEADER": "X-Customer-Tier",
            "OTEL_IMPACT_TASKS": "checkout=POST /api/checkout,search=GET /search/<query>",
            # test plumbing, not part of the walkthrough: the app's folder, and a short export delay
            "PYTHONPATH": str(APPS),
            "PYTHONUNBUFFERED": "1",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }
    )
    env.update(extra)
    return env


@contextmanager
def shop(processor: Processor, **extra: str) -> Iterator[Service]:
    env = walkthrough_env(processor, **extra)
    with service("zc_tasks_app.py", env=env, command=INSTRUMENT, inherit_env=False, cwd=APPS) as app:
        yield app


def post(app: Service, path: str, customer: str, tier: str) -> int:
    headers = {"X-Customer-Id": customer, "X-Customer-Tier": tier}
    return requests.post(f"http://127.0.0.1:{app.port}{path}", headers=headers, timeout=30).status_code


def events(processor: Processor, task: str) -> int:
    impact = get_json(processor, f"/api/v1/impact?task={task}&window=5m")
    return int(impact["events"]["total"])


def wait_counted(processor: Processor, task: str, total: int) -> None:
    def counted() -> bool:
        try:
            return events(processor, task) >= total
        except Exception:  # an unknown task until its first span is in
            return False

    processor.wait_for(counted, what=f"{total} {task} events counted")


def report(processor: Processor, task: str) -> str:
    """``otel-impact report --task TASK --by tier``, as the installed command prints it."""
    result = subprocess.run(
        [CLI, "report", "--admin", processor.admin_url, "--task", task, "--window", "5m", "--by", "tier"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert_no_canary(result.stdout.encode() + result.stderr.encode(), where="the report")
    return result.stdout


def rows(text: str) -> dict[str, list[str]]:
    """The report's table: segment → its columns (``events``, ``bad``, ``success``, ...).

    A processor started moments ago marks distinct users as lower bounds (``>= 12``); the bound
    is read as the figure."""
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        fields = line.replace(">= ", "").split()
        if fields and (fields[0] == "ALL" or fields[0].startswith("tier=")):
            table[fields[0]] = fields[1:]
    return table


def assert_nothing_leaked(processor: Processor, app: Service) -> None:
    assert_no_canary(processor.log().encode(), where="the processor's log")
    assert_no_canary(app.log().encode(), where="the app's output")
    for path in ("/api/v1/tasks", "/api/v1/customers/top?task=checkout&window=5m"):
        assert_no_canary(json.dumps(get_json(processor, path)).encode(), where=f"GET {path}")


def test_the_walkthrough_reports_impacted_users_for_exactly_the_failing_tier(processor: Processor) -> None:
    with shop(processor) as app:
        for tier, customers in CUSTOMERS.items():
            for customer in customers:
                for _ in range(PER_CUSTOMER):
                    status = 500 if tier == "pro" else 200
                    assert post(app, f"/api/checkout?status={status}", customer, tier) == status
        search = requests.get(f"http://127.0.0.1:{app.port}/search/shoes", timeout=30)
        assert search.status_code == 200
        total = sum(len(customers) for customers in CUSTOMERS.values()) * PER_CUSTOMER
        wait_counted(processor, "checkout", total)
        wait_counted(processor, "search", 1)
        tasks = get_json(processor, "/api/v1/tasks")
        assert {"checkout", "search"} <= {task["task"] for task in tasks["tasks"]}  # no longer []
        text = report(processor, "checkout")
        table = rows(text)
        assert set(table) == {"ALL", "tier=enterprise", "tier=pro", "tier=free"}, text
        # events, bad, success, users, impacted
        assert table["ALL"][:5] == [str(total), "8", f"{100 * (total - 8) / total:.2f}%", "12", "4"], text
        assert table["tier=pro"][:5] == ["8", "8", "0.00%", "4", "4"], text
        assert table["tier=enterprise"][:5] == ["6", "0", "100.00%", "3", "0"], text
        assert table["tier=free"][:5] == ["10", "0", "100.00%", "5", "0"], text
        assert_nothing_leaked(processor, app)


def test_task_failure_makes_429s_failures(processor: Processor) -> None:
    extra = {"OTEL_IMPACT_TASKS": "cart=POST /api/checkout", "OTEL_IMPACT_TASK_FAILURE": "5xx,429"}
    with shop(processor, **extra) as app:
        plan = [("ent-1", "enterprise", 200), ("ent-2", "enterprise", 200), ("free-1", "free", 429)]
        plan += [("free-2", "free", 429), ("pro-1", "pro", 404), ("pro-2", "pro", 503)]
        for customer, tier, status in plan:
            assert post(app, f"/api/checkout?status={status}", customer, tier) == status
        wait_counted(processor, "cart", len(plan))
        table = rows(report(processor, "cart"))
        assert table["tier=free"][:5] == ["2", "2", "0.00%", "2", "2"]  # 429: a failure here
        assert table["tier=pro"][:5] == ["2", "1", "50.00%", "2", "1"]  # 404 is not, 503 is
        assert table["tier=enterprise"][:5] == ["2", "0", "100.00%", "2", "0"]
        assert_nothing_leaked(processor, app)


def test_an_explicit_user_task_in_the_handler_wins_over_the_rule(processor: Processor) -> None:
    with shop(processor, OTEL_IMPACT_TASKS="refund=POST /api/refund") as app:
        for customer in ("ent-1", "ent-2", "ent-3"):
            assert post(app, "/api/refund", customer, "enterprise") == 200
        wait_counted(processor, "refund", 3)
        table = rows(report(processor, "refund"))
        # counted once per request (the rule did not add the server span), failed as the code said
        assert table["ALL"][:5] == ["3", "3", "0.00%", "3", "3"]
        assert_nothing_leaked(processor, app)


def test_without_a_hooked_framework_instrumentation_one_warning_says_what_to_install(processor: Processor) -> None:
    hooked = "flask,django,fastapi,starlette,grpc_server,grpc_aio_server"  # as if none were installed
    with shop(processor, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=hooked) as app:
        assert post(app, "/api/checkout", CANARY_EMAIL, "pro") == 200
        log = app.log()
    warnings = [line for line in log.splitlines() if "no framework instrumentation" in line]
    assert len(warnings) == 1, log
    assert "pip install opentelemetry-instrumentation-flask" in warnings[0]
    assert "opentelemetry-bootstrap -a install" in warnings[0]
    assert_no_canary(log.encode(), where="the app's output")
