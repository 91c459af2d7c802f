"""Query parameters parsed once: typed values, or one BadRequest naming the parameter and the fix."""

from __future__ import annotations

import json

import pytest
from multidict import MultiDict, MultiDictProxy

from otel_impact.processors.api.params import BadRequest, QueryParams, bad_request


def params(*pairs: tuple[str, str]) -> QueryParams:
    return QueryParams(MultiDictProxy(MultiDict(pairs)))


def failure(call: object) -> BadRequest:
    assert callable(call)
    with pytest.raises(BadRequest) as caught:
        call()
    return caught.value


def test_typed_values() -> None:
    query = params(
        ("task", "checkout"),
        ("window", "15m"),
        ("end", "2026-11-26T21:00:30Z"),
        ("by", "tier, region"),
        ("by", "plan"),
        ("where", "tier=pro"),
        ("where", "region="),
        ("limit", "7"),
        ("confidence", "0.99"),
    )
    assert query.task(["checkout", "search"]) == "checkout"
    assert query.window("1h") == ("15m", 15 * 60 * 10**9)
    assert query.timestamp("end") == 1_795_726_830 * 10**9
    assert query.minute("end") == 1_795_726_800 * 10**9
    assert query.names("by") == ["tier", "region", "plan"]
    assert query.pairs("where") == {"tier": "pro", "region": ""}
    assert query.integer("limit", 10, minimum=1, maximum=100) == 7
    assert query.number("confidence", 0.95) == 0.99
    assert query.optional_number("max_degradation") is None


def test_defaults_when_absent() -> None:
    query = params()
    assert query.window("30m") == ("30m", 30 * 60 * 10**9)
    assert query.timestamp("from") is None and query.minute("end") is None
    assert query.names("by") == [] and query.pairs("where") == {}
    assert query.integer("limit", 10, minimum=1, maximum=100) == 10
    assert query.number("confidence", 0.95) == 0.95


def test_a_plain_mapping_works_too() -> None:
    query = QueryParams({"task": "checkout", "where": "tier=pro", "by": "a,b"})
    assert query.task() == "checkout" and query.pairs("where") == {"tier": "pro"} and query.names("by") == ["a", "b"]


@pytest.mark.parametrize(
    ("query", "call", "parameter", "reason"),
    [
        (params(), lambda q: q.task(), "task", "task is required, e.g. ?task=checkout"),
        (params(("task", "x")), lambda q: q.task(["a", "b"]), "task", "unknown task 'x'; known tasks: a, b"),
        (params(("task", "x")), lambda q: q.task([]), "task", "known tasks: none yet"),
        (params(("window", "2m")), lambda q: q.window("1h"), "window", "from 5m to 35d"),
        (params(("window", "1 hour")), lambda q: q.window("1h"), "window", "is not a duration"),
        (params(("end", "yesterday")), lambda q: q.timestamp("end"), "end", "not unix seconds"),
        (params(), lambda q: q.required_timestamp("from"), "from", "from is required: unix seconds or RFC 3339"),
        (params(("to", "x")), lambda q: q.required_timestamp("to"), "to", "to 'x' is not unix seconds"),
        (params(("limit", "1000")), lambda q: q.integer("limit", 1, minimum=1, maximum=100), "limit", "from 1 to 100"),
        (params(("limit", "-1")), lambda q: q.integer("limit", 1, minimum=1, maximum=100), "limit", "from 1 to 100"),
        (params(("where", "tier")), lambda q: q.pairs("where"), "where", "is not DIMENSION=VALUE, e.g. where=tier=pro"),
        (params(("where", "=pro")), lambda q: q.pairs("where"), "where", "is not DIMENSION=VALUE"),
        (params(("confidence", "high")), lambda q: q.number("confidence", 0.9), "confidence", "'high' is not a number"),
    ],
)
def test_errors_name_the_parameter_and_the_fix(query: QueryParams, call: object, parameter: str, reason: str) -> None:
    assert callable(call)
    error = failure(lambda: call(query))
    assert error.parameter == parameter and reason in str(error)


def test_one_mapping_to_http_400() -> None:
    response = bad_request(BadRequest("task", "task is required, e.g. ?task=checkout"))
    assert response.status == 400 and response.content_type == "application/json"
    assert json.loads(response.text or "") == {"error": "task is required, e.g. ?task=checkout"}
