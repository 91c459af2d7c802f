"""RequestExtractor: sources, precedence, JWT claims, cookies, callables; nothing raises or leaks."""

from __future__ import annotations

import base64
import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from support.canaries import CANARY_EMAIL, CANARY_NUMBER, CANARY_UNICODE
from support.zero_code import make_jwt

from otel_impact import ConfigurationError
from otel_impact.instrumentation import Attribution, ExtractionSettings, RequestExtractor
from otel_impact.instrumentation._jwt import bearer_claims
from otel_impact.instrumentation.extract import load_callable
from otel_impact.instrumentation.incoming import (
    AsgiRequest,
    DjangoRequest,
    GrpcRequest,
    IncomingRequest,
    WsgiRequest,
    parse_cookie,
)

ALL_SOURCES = ExtractionSettings(
    customer_header="X-Customer-Id",
    tier_header="X-Customer-Tier",
    customer_jwt_claim="sub",
    tier_jwt_claim="plan",
    customer_cookie="cid",
)


def wsgi(headers: dict[str, str]) -> WsgiRequest:
    return WsgiRequest({"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()})


def extractor(settings: ExtractionSettings = ALL_SOURCES) -> RequestExtractor:
    built, problems = RequestExtractor.from_settings(settings)
    assert problems == []
    return built


def resolve(headers: dict[str, str], settings: ExtractionSettings = ALL_SOURCES) -> Attribution | None:
    return extractor(settings).resolve(wsgi(headers))


def fields(found: Attribution | None) -> tuple[object, object, object] | None:
    return None if found is None else (found.customer_id, found.tier, found.source)


# -- request views ------------------------------------------------------------------------------


class FakeGrpcContext:
    def __init__(self, metadata: list[tuple[str, Any]]) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> list[tuple[str, Any]]:
        return self._metadata


@pytest.mark.parametrize(
    "request_view",
    [
        WsgiRequest({"HTTP_X_CUSTOMER_ID": "c1", "HTTP_COOKIE": "a=1; cid=c2"}),
        AsgiRequest({"headers": [(b"x-customer-id", b"c1"), (b"cookie", b"a=1; cid=c2"), (b"x-customer-id", b"no")]}),
        DjangoRequest(SimpleNamespace(META={"HTTP_X_CUSTOMER_ID": "c1", "HTTP_COOKIE": "a=1; cid=c2"})),
        GrpcRequest(FakeGrpcContext([("x-customer-id", "c1"), ("cookie", "a=1; cid=c2"), ("bin-bin", b"\x00")])),
    ],
    ids=["wsgi", "asgi", "django", "grpc"],
)
def test_every_framework_view_reads_headers_case_insensitively_and_cookies(request_view: IncomingRequest) -> None:
    assert request_view.header("X-Customer-Id") == "c1"
    assert request_view.header("x-customer-id") == "c1"
    assert request_view.header("X-Missing") is None
    assert request_view.cookie("cid") == "c2"
    assert request_view.cookie("nope") is None


def test_utf8_header_values_read_as_the_application_would_write_them() -> None:
    on_the_wire = CANARY_UNICODE.encode("utf-8")
    assert WsgiRequest({"HTTP_X_CUSTOMER_ID": on_the_wire.decode("latin-1")}).header("X-Customer-Id") == CANARY_UNICODE
    assert AsgiRequest({"headers": [(b"x-customer-id", on_the_wire)]}).header("X-Customer-Id") == CANARY_UNICODE
    assert WsgiRequest({"HTTP_X_CUSTOMER_ID": "caf\xe9"}).header("X-Customer-Id") == "caf\xe9"  # latin-1, not UTF-8


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ('cid="quoted value"', "quoted value"),
        ("a=1;cid=2;cid=3", "2"),
        ("cidx=1; xcid=2", None),
        ("cid=", None),
        ("garbage without equals", None),
        ("cid=" + "x" * 9000, None),  # over the bound: not parsed
    ],
)
def test_cookie_parsing(header: str, value: str | None) -> None:
    assert parse_cookie(header, "cid") == value


# -- JWT ----------------------------------------------------------------------------------------


def test_bearer_claims_of_a_real_jwt() -> None:
    token = make_jwt({"sub": CANARY_UNICODE, "plan": "pro", "n": 7})
    assert bearer_claims(f"Bearer {token}") == {"sub": CANARY_UNICODE, "plan": "pro", "n": 7}
    assert bearer_claims(f"bearer   {token}  ") == {"sub": CANARY_UNICODE, "plan": "pro", "n": 7}


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer abc",
        "Bearer a.b",
        "Bearer a.b.c.d.e",  # JWE: encrypted payload
        "Bearer x." + _segment(b"not json") + ".sig",
        "Bearer x." + _segment(b"[1, 2]") + ".sig",  # JSON, but not an object
        "Bearer x." + _segment(b"\xff\xfe") + ".sig",
        "Bearer x.%%%.sig",
        "Bearer x." + _segment(json.dumps({"sub": "x" * 20000}).encode()) + ".sig",  # too long
        "Bearer x." + _segment(b"[" * 5000 + b"]" * 5000) + ".sig",  # nested past the recursion limit
    ],
)
def test_bearer_claims_refuses_what_is_not_a_readable_jwt(authorization: str | None) -> None:
    assert bearer_claims(authorization) is None


# -- precedence ---------------------------------------------------------------------------------


def test_header_then_jwt_then_cookie() -> None:
    token = make_jwt({"sub": "from-jwt", "plan": "jwt-tier"})
    everything = {"X-Customer-Id": "from-header", "Authorization": f"Bearer {token}", "Cookie": "cid=from-cookie"}
    assert fields(resolve(everything)) == ("from-header", "jwt-tier", "header")
    del everything["X-Customer-Id"]
    assert fields(resolve(everything)) == ("from-jwt", "jwt-tier", "jwt")
    del everything["Authorization"]
    assert fields(resolve(everything)) == ("from-cookie", None, "cookie")
    assert resolve({}) is None


def test_tier_header_beats_tier_claim_and_a_tier_alone_is_an_attribution() -> None:
    token = make_jwt({"plan": "jwt-tier"})
    assert fields(resolve({"X-Customer-Tier": " pro ", "Authorization": f"Bearer {token}"})) == (None, "pro", None)
    assert fields(resolve({"Authorization": f"Bearer {token}"})) == (None, "jwt-tier", None)


@pytest.mark.parametrize(
    ("claims", "customer"),
    [
        ({"sub": 4711}, 4711),
        ({"sub": True}, None),
        ({"sub": {"id": 1}}, None),
        ({"sub": ""}, None),
        ({"sub": "  "}, None),
        ({"sub": "x" * 2000}, None),
    ],
)
def test_only_string_and_integer_ids_are_used(claims: dict[str, object], customer: object) -> None:
    found = resolve({"Authorization": f"Bearer {make_jwt(claims)}"})
    assert (found.customer_id if found else None) == customer


def test_the_customer_callable_comes_first_and_falls_through_on_none() -> None:
    settings = ExtractionSettings(
        customer_header="X-Customer-Id",
        customer_callable="support.impact_callables:account_header",
        tier_callable="support.impact_callables:tier_of",
        tier_header="X-Customer-Tier",
    )
    both = {"X-Account": "acct-1", "X-Customer-Id": "from-header", "X-Customer-Tier": "pro"}
    assert fields(resolve(both, settings)) == ("acct-1", "enterprise", "callable")  # tier lookup beats the header
    assert fields(resolve({"X-Account": "acct-9", "X-Customer-Tier": "pro"}, settings)) == ("acct-9", "pro", "callable")
    assert fields(resolve({"X-Customer-Id": "acct-2"}, settings)) == ("acct-2", "free", "header")


def test_django_user_attribute() -> None:
    settings = ExtractionSettings(django_user_attribute="profile.account_id")
    user = SimpleNamespace(is_authenticated=True, profile=SimpleNamespace(account_id=CANARY_NUMBER))
    request = DjangoRequest(SimpleNamespace(META={}, user=user), phase="response")
    assert fields(extractor(settings).resolve(request)) == (CANARY_NUMBER, None, "django-user")
    anonymous = DjangoRequest(SimpleNamespace(META={}, user=SimpleNamespace(is_authenticated=False)))
    assert extractor(settings).resolve(anonymous) is None
    before_auth = DjangoRequest(SimpleNamespace(META={}))  # no request.user yet
    assert extractor(settings).resolve(before_auth) is None
    assert extractor(settings).has_late_sources and not extractor(ALL_SOURCES).has_late_sources


# -- callables: loading and misbehaving ---------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "explanation"),
    [
        ("no_such_module_at_all:fn", "cannot import module 'no_such_module_at_all' (ModuleNotFoundError)"),
        ("support.broken_import:fn", "importing module 'support.broken_import' raised RuntimeError"),
        ("support.impact_callables:nope", "has no attribute 'nope'"),
        ("support.impact_callables:NOT_CALLABLE", "is not callable"),
    ],
)
def test_a_callable_that_cannot_be_loaded_is_one_problem(spec: str, explanation: str) -> None:
    with pytest.raises(ConfigurationError, match="OTEL_IMPACT_CUSTOMER_CALLABLE") as raised:
        load_callable(spec, "OTEL_IMPACT_CUSTOMER_CALLABLE")
    assert explanation in str(raised.value)
    built, problems = RequestExtractor.from_settings(
        ExtractionSettings(customer_callable=spec, customer_header="X-Customer-Id")
    )
    assert len(problems) == 1
    assert fields(built.resolve(wsgi({"X-Customer-Id": "still-works"}))) == ("still-works", None, "header")


def test_a_raising_or_misbehaving_callable_is_logged_once_by_type_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raising = extractor(
        ExtractionSettings(customer_callable="support.impact_callables:raises", customer_header="X-Customer-Id")
    )
    odd = extractor(ExtractionSettings(customer_callable="support.impact_callables:returns_a_dict"))
    tier_raising = extractor(
        ExtractionSettings(customer_header="X-Customer-Id", tier_callable="support.impact_callables:tier_raises")
    )
    with caplog.at_level(logging.WARNING, logger="otel_impact"):
        for _ in range(3):
            assert fields(raising.resolve(wsgi({"X-Customer-Id": "c1"}))) == ("c1", None, "header")
            assert odd.resolve(wsgi({})) is None
            assert fields(tier_raising.resolve(wsgi({"X-Customer-Id": CANARY_EMAIL}))) == (CANARY_EMAIL, None, "header")
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3, messages
    assert any("raised KeyError" in m for m in messages)
    assert any("returned a dict" in m for m in messages)
    assert any("OTEL_IMPACT_TIER_CALLABLE raised RuntimeError" in m for m in messages)
    for message in messages:
        assert CANARY_EMAIL not in message and "canary" not in message


def test_the_attribution_repr_never_shows_the_id() -> None:
    found = resolve({"X-Customer-Id": CANARY_EMAIL})
    assert found is not None and CANARY_EMAIL not in repr(found) and "header" in repr(found)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"X-Customer-Id": " c1 ", "X-Customer-Tier": " pro "}, ("c1", "pro", "header")),
        ({"X-Customer-Id": "c1"}, ("c1", None, "header")),
        ({"X-Customer-Tier": "pro"}, (None, "pro", None)),
        ({"X-Customer-Id": "  ", "X-Customer-Tier": ""}, None),
        ({"X-Customer-Id": "x" * 2000, "X-Customer-Tier": "pro"}, (None, "pro", None)),
        ({"X-Customer-Id": CANARY_UNICODE.encode().decode("latin-1")}, (CANARY_UNICODE, None, "header")),
    ],
)
def test_headers_alone_resolve_as_the_full_chain_does(
    headers: dict[str, str], expected: tuple[object, object, object] | None
) -> None:
    """With only header sources configured the extractor takes a shorter path; its answers are the
    full chain's (for a request that carries nothing for the other sources)."""
    both = ExtractionSettings(customer_header="X-Customer-Id", tier_header="X-Customer-Tier")
    assert fields(resolve(headers, both)) == expected
    for settings in (
        both,
        ExtractionSettings(customer_header="X-Customer-Id"),
        ExtractionSettings(tier_header="X-Customer-Tier"),
    ):
        full = ExtractionSettings(
            customer_header=settings.customer_header, tier_header=settings.tier_header, customer_cookie="cid"
        )
        assert fields(resolve(headers, settings)) == fields(resolve(headers, full))
