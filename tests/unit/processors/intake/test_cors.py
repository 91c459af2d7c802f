"""CORS on the OTLP/HTTP receiver: preflights of allowed origins are answered, others get no CORS
header (and are counted by reason), wildcard origins match piece by piece, hostile headers are bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter

from otel_impact.processors.config import CorsConfig
from otel_impact.processors.intake.cors import MAX_REQUESTED_HEADERS, Cors, OriginPattern

CONFIG = CorsConfig(
    allowed_origins=("https://shop.example.com", "https://*.example.net", "http://127.0.0.1:*"),
    allowed_headers=("X-Shop-Version",),
    max_age=7200.0,
)
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}


class Answer:
    def __init__(self, status: int, headers: Mapping[str, str]) -> None:
        self.status = status
        self.headers = {name.lower(): value for name, value in headers.items()}


def exchange(config: CorsConfig, method: str, headers: Mapping[str, str]) -> tuple[Answer, dict[str, float]]:
    """One request to an app wired as the receiver wires it; the answer and the refused counts."""
    registry = CollectorRegistry()
    refused = Counter("refused", "refused preflights", ["reason"], registry=registry)
    cors = Cors(config, refused)

    async def traces(request: web.Request) -> web.Response:
        return web.Response(status=415 if request.content_type == "text/plain" else 200, body=b"{}")

    async def run() -> Answer:
        app = web.Application()
        app.router.add_post("/v1/traces", traces)
        app.router.add_route("OPTIONS", "/v1/traces", cors.preflight)
        app.on_response_prepare.append(cors.decorate)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            async with ClientSession() as session:
                url = f"http://127.0.0.1:{server.port}/v1/traces"
                async with session.request(method, url, headers=dict(headers), data=b"{}") as response:
                    return Answer(response.status, response.headers)
        finally:
            await server.close()

    answer = asyncio.run(run())
    counts = {
        sample.labels["reason"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "refused_total"
    }
    return answer, counts


def test_an_allowed_origins_preflight_is_answered_with_the_origin_method_headers_and_max_age() -> None:
    answer, refused = exchange(CONFIG, "OPTIONS", {"Origin": "https://shop.example.com", **PREFLIGHT})
    assert answer.status == 204
    assert answer.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert answer.headers["access-control-allow-methods"] == "POST"
    assert answer.headers["access-control-allow-headers"] == "content-type"
    assert answer.headers["access-control-max-age"] == "7200"
    assert "Origin" in answer.headers["vary"]
    assert "access-control-allow-credentials" not in answer.headers
    assert refused == {"origin": 0, "method": 0, "headers": 0}


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://shop.example.com", True),
        ("HTTPS://SHOP.EXAMPLE.COM", True),
        ("https://eu.example.net", True),
        ("https://a.b.example.net", True),
        ("http://127.0.0.1:8080", True),
        ("https://example.net", False),  # "*." needs a subdomain
        ("http://eu.example.net", False),  # another scheme
        ("https://shop.example.com.evil.test", False),
        ("https://evil.test/https://shop.example.com", False),
        ("https://eu.example.net.evil.test", False),
        ("null", False),
        ("", False),
    ],
)
def test_origins_match_exactly_or_by_wildcard(origin: str, allowed: bool) -> None:
    answer, refused = exchange(CONFIG, "OPTIONS", {"Origin": origin, **PREFLIGHT})
    assert answer.status == 204
    assert ("access-control-allow-origin" in answer.headers) is allowed
    assert refused["origin"] == (0 if allowed else 1)


def test_a_refused_preflight_carries_no_cors_header_at_all() -> None:
    answer, _ = exchange(CONFIG, "OPTIONS", {"Origin": "https://evil.test", **PREFLIGHT})
    assert not [name for name in answer.headers if name.startswith("access-control-")]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"Access-Control-Request-Method": "PUT"}, "method"),
        ({"Access-Control-Request-Method": ""}, "method"),
        ({"Access-Control-Request-Headers": "content-type, authorization"}, "headers"),
        ({"Access-Control-Request-Headers": ",".join(["x-shop-version"] * (MAX_REQUESTED_HEADERS + 1))}, "headers"),
    ],
    ids=["put", "no-method", "unlisted-header", "too-many-headers"],
)
def test_a_wrong_method_or_header_is_refused_and_counted(extra: dict[str, str], reason: str) -> None:
    answer, refused = exchange(CONFIG, "OPTIONS", {"Origin": "https://shop.example.com", **PREFLIGHT, **extra})
    assert "access-control-allow-origin" not in answer.headers
    assert refused[reason] == 1


def test_configured_headers_are_allowed_case_insensitively_and_star_allows_any() -> None:
    headers = {"Origin": "https://shop.example.com", **PREFLIGHT}
    answer, _ = exchange(
        CONFIG, "OPTIONS", {**headers, "Access-Control-Request-Headers": "Content-Type,x-shop-VERSION"}
    )
    assert answer.headers["access-control-allow-headers"] == "content-type, x-shop-version"
    any_header = CorsConfig(allowed_origins=CONFIG.allowed_origins, allowed_headers=("*",))
    answer, _ = exchange(any_header, "OPTIONS", {**headers, "Access-Control-Request-Headers": "authorization"})
    assert answer.headers["access-control-allow-headers"] == "authorization"
    assert "access-control-max-age" not in answer.headers  # unset: not sent


def test_exports_of_an_allowed_origin_get_the_origin_errors_included_and_retry_after_exposed() -> None:
    for content_type, status in (("application/json", 200), ("text/plain", 415)):
        headers = {"Origin": "https://eu.example.net", "Content-Type": content_type}
        answer, _ = exchange(CONFIG, "POST", headers)
        assert answer.status == status
        assert answer.headers["access-control-allow-origin"] == "https://eu.example.net"
        assert answer.headers["access-control-expose-headers"] == "Retry-After"


def test_exports_of_other_origins_or_without_origin_are_handled_but_get_no_cors_header() -> None:
    for headers in ({"Origin": "https://evil.test"}, {}):
        answer, _ = exchange(CONFIG, "POST", {**headers, "Content-Type": "application/json"})
        assert answer.status == 200  # CORS is the browser's control; a non-browser sender is unaffected
        assert "access-control-allow-origin" not in answer.headers


def test_an_oversized_origin_matches_nothing_and_nothing_breaks() -> None:
    huge = "https://" + "a" * 4000 + ".example.net"
    answer, refused = exchange(CONFIG, "OPTIONS", {"Origin": huge, **PREFLIGHT})
    assert answer.status == 204 and refused["origin"] == 1


@given(st.text(alphabet="ab*.:/", max_size=12), st.text(alphabet="ab.:/", max_size=40))
def test_the_origin_pattern_agrees_with_a_reference_glob(pattern: str, origin: str) -> None:
    import fnmatch  # noqa: PLC0415

    reference = fnmatch.fnmatchcase(origin, pattern.replace("[", "[[]"))
    assert OriginPattern(pattern).matches(origin) is reference


def test_a_crafted_origin_is_matched_in_linear_time() -> None:
    pattern = OriginPattern("https://" + "*a" * 20 + "*b")
    assert not pattern.matches("https://" + "a" * 200_000)
