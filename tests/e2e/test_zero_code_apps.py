"""Zero-code, end to end: real apps under ``opentelemetry-instrument`` with only ``OTEL_IMPACT_*``
variables (and opentelemetry-distro), exporting OTLP over the network to a real receiver,
driven by real HTTP and gRPC requests carrying customer headers, JWTs, cookies and tokens.

One process per framework serves every test of this module: a plain WSGI backend (trusting
baggage, the downstream service), a gRPC server (not trusting it), Flask, FastAPI on uvicorn
and a minimal Django site. Each test request starts its own trace, to find its spans.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import grpc
import pytest
import requests
from support.canaries import CANARY_EMAIL, CANARY_NUMBER, CANARY_UNICODE, assert_no_canary
from support.otlp_sink import OtlpSink, SpanRecord
from support.processes import Service, service
from support.zero_code import (
    APPS,
    CLIENT,
    INSTRUMENT,
    SERVER,
    app_env,
    by_service,
    impact_attributes,
    make_jwt,
    new_trace,
    pseudonym,
    trace_spans,
)

pytestmark = pytest.mark.slow

FORGED_BAGGAGE = "impact.customer.tier=enterprise,impact.customer.hash=" + "b" * 32 + ",impact.feature_flags=vip%3Don"


@dataclass
class Apps:
    sink: OtlpSink
    backend: Service
    grpc: Service
    flask: Service
    fastapi: Service
    django: Service

    def url(self, app: Service, path: str) -> str:
        return f"http://127.0.0.1:{app.port}{path}"

    def assert_nothing_leaked(self, *extra: bytes) -> None:
        """No canary ID in anything exported so far, in any app's log, or in ``extra``."""
        assert_no_canary(self.sink.raw_bytes(), where="exported OTLP")
        for name in ("backend", "grpc", "flask", "fastapi", "django"):
            assert_no_canary(getattr(self, name).log().encode(), where=f"the {name} app's stderr")
        for blob in extra:
            assert_no_canary(blob, where="what a downstream service received")


@pytest.fixture(scope="module")
def apps() -> Iterator[Apps]:
    with ExitStack() as stack:
        sink = stack.enter_context(OtlpSink())

        def start(script: str, service_name: str, **env: str) -> Service:
            return stack.enter_context(
                service(script, env=app_env(sink, service_name, **env), command=INSTRUMENT, inherit_env=False, cwd=APPS)
            )

        backend = start(
            "zc_backend_wsgi.py",
            "backend",
            OTEL_IMPACT_TRUST_INCOMING_BAGGAGE="true",  # an internal service: believes its callers
            OTEL_IMPACT_CUSTOMER_COOKIE="cid",
        )
        backend_url = f"http://127.0.0.1:{backend.port}"
        grpc_server = stack.enter_context(
            service(
                "zc_grpc_server.py",
                env=app_env(
                    sink,
                    "grpc",
                    grpc_export=True,
                    OTEL_IMPACT_CUSTOMER_HEADER="X-Customer-Id",
                    OTEL_IMPACT_CUSTOMER_JWT_CLAIM="sub",
                ),
                command=INSTRUMENT,
                inherit_env=False,
                cwd=APPS,
            )
        )
        flask = start(
            "zc_flask_app.py",
            "flask",
            OTEL_IMPACT_CUSTOMER_HEADER="X-Customer-Id",
            OTEL_IMPACT_TIER_HEADER="X-Customer-Tier",
            OTEL_IMPACT_CUSTOMER_JWT_CLAIM="sub",
            ZC_BACKEND_URL=backend_url,
            ZC_GRPC_TARGET=f"127.0.0.1:{grpc_server.port}",
        )
        fastapi = start(
            "zc_fastapi_app.py",
            "fastapi",
            OTEL_IMPACT_CUSTOMER_JWT_CLAIM="sub",
            OTEL_IMPACT_TIER_JWT_CLAIM="plan",
            ZC_BACKEND_URL=backend_url,
        )
        django = start(
            "zc_django_app.py",
            "django",
            DJANGO_SETTINGS_MODULE="zc_django_site",
            OTEL_IMPACT_CUSTOMER_HEADER="X-Customer-Id",
            OTEL_IMPACT_DJANGO_USER_ATTRIBUTE="username",
            ZC_BACKEND_URL=backend_url,
        )
        yield Apps(sink, backend, grpc_server, flask, fastapi, django)


def _get(url: str, headers: dict[str, str]) -> requests.Response:
    response = requests.get(url, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response


def _one(spans: list[SpanRecord], *, name: str | None = None, kind: int | None = None) -> SpanRecord:
    found = [s for s in spans if (name is None or s.name == name) and (kind is None or s.kind == kind)]
    assert len(found) == 1, [(s.name, s.kind) for s in spans]
    return found[0]


def test_apps_enable_otel_impact_through_the_entry_points(apps: Apps) -> None:
    for app, hook in ((apps.flask, "flask"), (apps.fastapi, "asgi"), (apps.django, "django")):
        status = _get(apps.url(app, "/_status"), {}).json()
        assert status["enabled"] and status["reason"] == "enabled"
        assert hook in status["hooks"]
        assert status["openfeature_hook"] is True  # the OpenFeature SDK is installed in every app here


def test_flask_header_attributes_server_child_client_and_downstream_spans(apps: Apps) -> None:
    trace_headers, trace_id = new_trace()
    echoed = _get(
        apps.url(apps.flask, "/fanout"),
        {**trace_headers, "X-Customer-Id": CANARY_EMAIL, "X-Customer-Tier": "pro"},
    ).json()
    # flask server + 4 clients; backend: 3 x (server + work); grpc: server + work
    spans = trace_spans(apps.sink, trace_id, count=13)
    expected = {
        "impact.customer.hash": pseudonym(CANARY_EMAIL),
        "impact.customer.tier": "pro",
        "impact.feature_flags": ("new_checkout=on",),
    }
    flask_spans = by_service(spans, "flask")
    assert _one(flask_spans, kind=SERVER).name == "GET /fanout"
    clients = [s for s in flask_spans if s.kind == CLIENT]
    assert len(clients) == 4  # requests, httpx, urllib3, grpc
    for span in flask_spans:
        assert impact_attributes(span) == expected, span.name

    backend_spans = by_service(spans, "backend")  # trusts its caller's baggage
    assert len(backend_spans) == 6
    for span in backend_spans:
        assert impact_attributes(span) == expected, span.name
    assert echoed["state"] == {"customer_hash": pseudonym(CANARY_EMAIL), "tier": "pro", "flags": ["new_checkout=on"]}
    apps.assert_nothing_leaked(json.dumps(echoed).encode())


def test_every_client_instrumentation_sends_the_pseudonym_as_baggage_never_the_id(apps: Apps) -> None:
    trace_headers, _ = new_trace()
    echoed = _get(
        apps.url(apps.flask, "/fanout"), {**trace_headers, "X-Customer-Id": CANARY_EMAIL, "X-Customer-Tier": "pro"}
    ).json()
    for client in ("requests", "httpx", "urllib3", "grpc"):
        baggage = dict(item.split("=", 1) for item in echoed[client]["baggage"].split(","))
        assert baggage["impact.customer.hash"] == pseudonym(CANARY_EMAIL), client
        assert baggage["impact.customer.tier"] == "pro", client
        assert baggage["impact.feature_flags"] == "new_checkout%3Don", client
        assert "x-customer-id" not in echoed[client], client
    apps.assert_nothing_leaked(json.dumps(echoed).encode())


def test_a_service_that_does_not_trust_baggage_ignores_it_on_a_real_grpc_hop(apps: Apps) -> None:
    trace_headers, trace_id = new_trace()
    echoed = _get(apps.url(apps.flask, "/fanout"), {**trace_headers, "X-Customer-Id": CANARY_EMAIL}).json()
    assert "impact.customer.hash=" in echoed["grpc"]["baggage"]  # it arrived...
    assert echoed["grpc_state"] == {"customer_hash": None, "tier": None, "flags": []}  # ...and was not believed
    grpc_spans = by_service(trace_spans(apps.sink, trace_id, count=13), "grpc")
    assert len(grpc_spans) == 2
    for span in grpc_spans:
        assert impact_attributes(span) == {}, span.name


def test_openfeature_variant_on_the_span_and_a_pseudonymized_targeting_key(apps: Apps) -> None:
    trace_headers, trace_id = new_trace()
    _get(apps.url(apps.flask, "/fanout"), {**trace_headers, "X-Customer-Id": CANARY_EMAIL})
    server = _one(by_service(trace_spans(apps.sink, trace_id, count=13), "flask"), kind=SERVER)
    assert server.attributes["impact.feature_flags"] == ("new_checkout=on",)
    events = [attributes for name, attributes in server.events if name == "feature_flag.evaluation"]
    assert len(events) == 1
    event = events[0]
    # The provider targeted on the raw e-mail (variant "on" only for keys with '@')...
    assert event["feature_flag.result.variant"] == "on"
    # ...and TracingHook's targeting key left the process as the customer's pseudonym.
    assert event["feature_flag.context.id"] == pseudonym(CANARY_EMAIL)
    apps.assert_nothing_leaked()


def test_an_explicit_set_customer_in_the_handler_wins_over_extraction(apps: Apps) -> None:
    trace_headers, trace_id = new_trace()
    state = _get(
        apps.url(apps.flask, "/explicit"), {**trace_headers, "X-Customer-Id": CANARY_EMAIL, "X-Customer-Tier": "pro"}
    ).json()
    assert state["customer_hash"] == pseudonym("explicit-customer-7") and state["tier"] == "enterprise"
    spans = trace_spans(apps.sink, trace_id, count=2)
    assert len(spans) == 2
    for span in spans:
        assert span.attributes["impact.customer.hash"] == pseudonym("explicit-customer-7"), span.name
        assert span.attributes["impact.customer.tier"] == "enterprise", span.name


def test_header_beats_jwt_claim(apps: Apps) -> None:
    token = make_jwt({"sub": "jwt-subject-1"})
    both = {"X-Customer-Id": "header-customer-1", "Authorization": f"Bearer {token}"}
    assert _get(apps.url(apps.flask, "/whoami"), both).json()["customer_hash"] == pseudonym("header-customer-1")
    only_jwt = {"Authorization": f"Bearer {token}"}
    assert _get(apps.url(apps.flask, "/whoami"), only_jwt).json()["customer_hash"] == pseudonym("jwt-subject-1")


def test_forged_impact_baggage_is_ignored_at_an_untrusting_edge(apps: Apps) -> None:
    trace_headers, trace_id = new_trace()
    echoed = _get(apps.url(apps.flask, "/fanout"), {**trace_headers, "baggage": FORGED_BAGGAGE}).json()
    assert echoed["state"] == {"customer_hash": None, "tier": None, "flags": ["new_checkout=off"]}
    for client in ("requests", "httpx", "urllib3", "grpc"):  # not forwarded inward either
        assert "enterprise" not in echoed[client]["baggage"] and "vip" not in echoed[client]["baggage"], client
    for span in trace_spans(apps.sink, trace_id, count=13):
        assert span.attributes.get("impact.customer.tier") != "enterprise", span.name
        assert "impact.customer.hash" not in span.attributes, span.name


def test_fastapi_on_uvicorn_reads_jwt_claims(apps: Apps) -> None:
    token = make_jwt({"sub": CANARY_UNICODE, "plan": "enterprise"})
    trace_headers, trace_id = new_trace()
    echoed = _get(apps.url(apps.fastapi, "/fanout"), {**trace_headers, "Authorization": f"Bearer {token}"}).json()
    expected = {"impact.customer.hash": pseudonym(CANARY_UNICODE), "impact.customer.tier": "enterprise"}
    spans = trace_spans(apps.sink, trace_id, count=6)
    fastapi_spans = by_service(spans, "fastapi")
    server = _one(fastapi_spans, kind=SERVER)
    assert impact_attributes(server) == expected
    assert impact_attributes(_one(fastapi_spans, kind=CLIENT)) == expected  # the httpx.AsyncClient call
    backend_spans = by_service(spans, "backend")
    assert len(backend_spans) == 2
    for span in backend_spans:
        assert impact_attributes(span) == expected, span.name
    assert "impact.customer.hash=" + pseudonym(CANARY_UNICODE) in echoed["httpx"]["baggage"]
    assert token.encode() not in apps.sink.raw_bytes()
    apps.assert_nothing_leaked(json.dumps(echoed).encode(), token.encode())


def test_fastapi_ignores_a_malformed_bearer_token(apps: Apps) -> None:
    state = _get(apps.url(apps.fastapi, "/whoami"), {"Authorization": "Bearer not.a-jwt.at-all"}).json()
    assert state == {"customer_hash": None, "tier": None, "flags": []}


def test_django_request_hook_attributes_from_a_header(apps: Apps) -> None:
    trace_headers, trace_id = new_trace()
    echoed = _get(apps.url(apps.django, "/fanout"), {**trace_headers, "X-Customer-Id": CANARY_NUMBER}).json()
    expected = {"impact.customer.hash": pseudonym(CANARY_NUMBER)}
    spans = trace_spans(apps.sink, trace_id, count=4)
    django_spans = by_service(spans, "django")
    assert impact_attributes(_one(django_spans, kind=SERVER)) == expected
    assert impact_attributes(_one(django_spans, kind=CLIENT)) == expected  # urllib3
    for span in by_service(spans, "backend"):
        assert impact_attributes(span) == expected, span.name
    apps.assert_nothing_leaked(json.dumps(echoed).encode())


def test_django_attributes_the_server_span_from_request_user_in_the_response_hook(apps: Apps) -> None:
    trace_headers, trace_id = new_trace()
    state = _get(apps.url(apps.django, "/whoami"), {**trace_headers, "Authorization": f"Token {CANARY_EMAIL}"}).json()
    assert state["customer_hash"] is None  # request.user did not exist when the request started
    spans = trace_spans(apps.sink, trace_id, count=2)
    server = _one(spans, kind=SERVER)
    assert impact_attributes(server) == {"impact.customer.hash": pseudonym(CANARY_EMAIL)}
    apps.assert_nothing_leaked()


def test_django_response_hook_never_overrides_the_views_own_call(apps: Apps) -> None:
    trace_headers, trace_id = new_trace()
    _get(apps.url(apps.django, "/explicit"), {**trace_headers, "Authorization": f"Token {CANARY_EMAIL}"})
    server = _one(trace_spans(apps.sink, trace_id, count=1), kind=SERVER)
    assert impact_attributes(server) == {
        "impact.customer.hash": pseudonym("explicit-django-9"),
        "impact.customer.tier": "enterprise",
    }


def test_plain_wsgi_app_reads_a_cookie(apps: Apps) -> None:
    trace_headers, trace_id = new_trace()
    _get(apps.url(apps.backend, "/echo"), {**trace_headers, "Cookie": f'theme=dark; cid="{CANARY_NUMBER}"'})
    spans = trace_spans(apps.sink, trace_id, count=2)
    assert len(spans) == 2
    for span in spans:
        assert impact_attributes(span) == {"impact.customer.hash": pseudonym(CANARY_NUMBER)}, span.name
    apps.assert_nothing_leaked()


@pytest.mark.parametrize("method", ["Metadata", "Stream"])
def test_grpc_server_reads_metadata_and_jwt_and_ignores_forged_baggage(apps: Apps, method: str) -> None:
    token = make_jwt({"sub": CANARY_UNICODE})
    cases = [
        ([("x-customer-id", CANARY_EMAIL)], pseudonym(CANARY_EMAIL)),
        ([("authorization", f"Bearer {token}")], pseudonym(CANARY_UNICODE)),
        ([("baggage", FORGED_BAGGAGE)], None),
    ]
    with grpc.insecure_channel(f"127.0.0.1:{apps.grpc.port}") as channel:
        for metadata, expected_hash in cases:
            trace_headers, trace_id = new_trace()
            call_metadata = [*metadata, ("traceparent", trace_headers["traceparent"])]
            if method == "Metadata":
                replies = [channel.unary_unary("/zc.Echo/Metadata")(b"{}", metadata=call_metadata, timeout=10)]
            else:
                replies = list(channel.unary_stream("/zc.Echo/Stream")(b"{}", metadata=call_metadata, timeout=10))
            for reply in replies:
                assert json.loads(reply)["state"]["customer_hash"] == expected_hash
            spans = trace_spans(apps.sink, trace_id, count=1 + len(replies))
            assert len(spans) == 1 + len(replies)
            for span in spans:
                attributes = impact_attributes(span)
                if expected_hash is None:
                    assert attributes == {}, span.name
                else:
                    assert attributes == {"impact.customer.hash": expected_hash}, span.name
    apps.assert_nothing_leaked(token.encode())
