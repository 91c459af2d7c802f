"""``OTEL_IMPACT_TASKS`` and ``OTEL_IMPACT_TASK_FAILURE``: the parser and the outcome rules."""

from __future__ import annotations

import pytest
from support.paths import ROOT

from otel_impact.instrumentation.settings import KNOWN_VARIABLES, ExtractionSettings
from otel_impact.instrumentation.tasks import GRPC_CLIENT_FAULTS, GRPC_CODES, FailureRule, TaskRules


def test_good_entries_compile_into_lookup_tables() -> None:
    rules, problems = TaskRules.parse("checkout=POST /api/checkout, search=GET /search/<query>,refund=* /api/refund")
    assert problems == []
    assert dict(rules.http) == {
        ("POST", "/api/checkout"): "checkout",
        ("GET", "/search/<query>"): "search",
        ("*", "/api/refund"): "refund",
    }
    assert rules.active
    assert rules.match_http("POST", "/api/checkout") == "checkout"
    assert rules.match_http("post", "/api/checkout") == "checkout"  # methods compare upper-case
    assert rules.match_http("GET", "/api/checkout") is None
    assert rules.match_http("GET", "/search/<query>") == "search"
    assert rules.match_http("GET", "/search/shoes") is None  # the template, not the path


def test_a_star_method_matches_any_method_and_an_exact_one_wins() -> None:
    rules, problems = TaskRules.parse("any=* /items,create=POST /items")
    assert problems == []
    assert rules.match_http("DELETE", "/items") == "any"
    assert rules.match_http("PATCH", "/items") == "any"
    assert rules.match_http("POST", "/items") == "create"


def test_grpc_entries_match_the_full_method() -> None:
    rules, problems = TaskRules.parse("pay=grpc /shop.Payments/Charge,list=GRPC shop.Catalog/List")
    assert problems == []
    assert dict(rules.grpc) == {"/shop.Payments/Charge": "pay", "/shop.Catalog/List": "list"}
    assert rules.match_grpc("/shop.Payments/Charge") == "pay"
    assert rules.match_grpc("shop.Catalog/List") == "list"
    assert rules.match_grpc("/shop.Payments/Refund") is None
    assert rules.match_http("GRPC", "/shop.Payments/Charge") is None


def test_a_value_quoted_whole_reads_as_unquoted() -> None:
    for value in ('"checkout=POST /api/checkout"', "'checkout=POST /api/checkout'"):
        rules, problems = TaskRules.parse(value)
        assert problems == [] and rules.match_http("POST", "/api/checkout") == "checkout"


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("checkout", "has no '='"),
        ("=POST /x", "task name"),
        ("checkout=POST", "a method and a route"),
        ("checkout=/api/checkout", "a method and a route"),
        ("checkout=P0ST /api/checkout", "HTTP method or *"),
        ("checkout=POST /api/check out", "space inside its route"),
        ("pay=grpc Charge", "/package.Service/Method"),
        ("pay=grpc /a/b/c", "/package.Service/Method"),
        ("a" * 129 + "=GET /x", "task name"),
    ],
)
def test_a_bad_entry_is_reported_by_name_with_the_form_and_the_good_ones_apply(entry: str, why: str) -> None:
    rules, problems = TaskRules.parse(f"good=GET /good,{entry}")
    assert rules.match_http("GET", "/good") == "good"
    assert len(problems) == 1
    message = str(problems[0])
    assert message.startswith("OTEL_IMPACT_TASKS: ")
    assert repr(entry) in message and why in message
    assert "NAME=METHOD ROUTE" in message and "left out" in message


def test_the_same_route_for_two_tasks_keeps_the_first() -> None:
    rules, problems = TaskRules.parse("a=GET /x,b=GET /x,a=GET /x")
    assert rules.match_http("GET", "/x") == "a"
    assert len(problems) == 1 and "already the task 'a'" in str(problems[0])


def test_nothing_set_names_nothing() -> None:
    rules, problems = TaskRules.from_env({})
    assert problems == [] and not rules.active
    assert rules.match_http("GET", "/") is None and rules.match_grpc("/a.B/C") is None


def test_from_env_reads_both_variables() -> None:
    rules, problems = TaskRules.from_env(
        {"OTEL_IMPACT_TASKS": "checkout=POST /api/checkout", "OTEL_IMPACT_TASK_FAILURE": "5xx,429"}
    )
    assert problems == [] and rules.match_http("POST", "/api/checkout") == "checkout"
    assert rules.failure.http_failed(429)


def test_both_variables_are_known_so_they_are_never_called_misspellings() -> None:
    assert {"OTEL_IMPACT_TASKS", "OTEL_IMPACT_TASK_FAILURE"} <= KNOWN_VARIABLES
    _, problems = ExtractionSettings.from_env(
        {"OTEL_IMPACT_TASKS": "checkout=POST /x", "OTEL_IMPACT_TASK_FAILURE": "429"}
    )
    assert problems == []
    _, problems = ExtractionSettings.from_env({"OTEL_IMPACT_TASK": "checkout=POST /x"})
    assert [p.setting for p in problems] == ["OTEL_IMPACT_TASK"] and "OTEL_IMPACT_TASKS" in str(problems[0])


# -- outcome rules ------------------------------------------------------------------------------


def test_http_default_fails_5xx_only() -> None:
    rule = FailureRule()
    assert [status for status in (200, 201, 302, 400, 404, 429, 499) if rule.http_failed(status)] == []
    assert all(rule.http_failed(status) for status in (500, 502, 503, 504, 599))


def test_http_failure_widens_by_class_and_code_never_narrows() -> None:
    rule, problems = FailureRule.parse("5xx,429")
    assert problems == []
    assert rule.http_failed(429) and rule.http_failed(503)
    assert not rule.http_failed(404) and not rule.http_failed(200)
    rule, _ = FailureRule.parse("4XX")
    assert rule.http_failed(404) and rule.http_failed(429) and rule.http_failed(500) and not rule.http_failed(302)
    rule, _ = FailureRule.parse("429")
    assert rule.http_failed(500)  # the default stays


def test_grpc_default_fails_the_servers_faults_not_the_clients() -> None:
    rule = FailureRule()
    assert not rule.grpc_failed("OK")
    assert {code for code in GRPC_CODES if rule.grpc_failed(code)} == {
        "UNKNOWN",
        "DEADLINE_EXCEEDED",
        "RESOURCE_EXHAUSTED",
        "ABORTED",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
    }
    assert {"INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "UNAUTHENTICATED"} <= (
        GRPC_CLIENT_FAULTS
    )
    assert {"FAILED_PRECONDITION", "OUT_OF_RANGE", "CANCELLED"} <= GRPC_CLIENT_FAULTS


def test_grpc_failure_widens_by_code_name() -> None:
    rule, problems = FailureRule.parse("not_found, CANCELLED")
    assert problems == []
    assert rule.grpc_failed("NOT_FOUND") and rule.grpc_failed("CANCELLED") and rule.grpc_failed("INTERNAL")
    assert not rule.grpc_failed("INVALID_ARGUMENT") and not rule.grpc_failed("OK")


@pytest.mark.parametrize("item", ["6xx", "42", "1000", "OK", "teapot", "5x"])
def test_a_bad_failure_item_is_reported_and_left_out(item: str) -> None:
    rule, problems = FailureRule.parse(f"429,{item}")
    assert rule.http_failed(429)
    assert len(problems) == 1
    message = str(problems[0])
    assert message.startswith("OTEL_IMPACT_TASK_FAILURE: ") and repr(item) in message and "5xx,429" in message


def test_the_example_env_file_names_tasks_as_written_there() -> None:
    lines = (ROOT / "examples" / "zero-code.env").read_text().splitlines()
    (value,) = [line.split("=", 1)[1] for line in lines if line.startswith("OTEL_IMPACT_TASKS=")]
    rules, problems = TaskRules.parse(value)  # as docker --env-file passes it: quotes kept
    assert problems == []
    assert rules.match_http("POST", "/api/checkout") == "checkout" and rules.match_http("GET", "/search/<query>")
