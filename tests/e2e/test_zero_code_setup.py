"""Zero-code setup around the edges, each in its own process under ``opentelemetry-instrument``:
a user's own distro and configurator, no SDK at all, switched off, and misconfigured."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager

import pytest
import requests
from support.canaries import CANARY_EMAIL, assert_no_canary
from support.otlp_sink import OtlpSink
from support.processes import Service, service
from support.zero_code import (
    APPS,
    INSTRUMENT,
    SERVER,
    app_env,
    impact_attributes,
    make_jwt,
    new_trace,
    pseudonym,
    trace_spans,
)

from otel_impact.instrumentation.auto import NO_SDK_MESSAGE

pytestmark = pytest.mark.slow

USER_DIST = APPS / "user_dist"


@pytest.fixture(scope="module")
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as receiver:
        yield receiver


def _flask(sink: OtlpSink, **env: str) -> AbstractContextManager[Service]:
    return service(
        "zc_flask_app.py",
        env=app_env(sink, "flask", ZC_BACKEND_URL="http://127.0.0.1:9", ZC_GRPC_TARGET="127.0.0.1:9", **env),
        command=INSTRUMENT,
        inherit_env=False,
        cwd=APPS,
    )


def _get(app: Service, path: str, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.get(f"http://127.0.0.1:{app.port}{path}", headers=headers or {}, timeout=30)
    assert response.status_code == 200, response.text
    return response


def _otel_impact_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("otel-impact")]


def test_coexists_with_a_users_own_distro_and_configurator(sink: OtlpSink) -> None:
    env = {
        "PYTHONPATH": os.pathsep.join([str(APPS), str(USER_DIST)]),
        "OTEL_PYTHON_DISTRO": "user_distro",
        "OTEL_PYTHON_CONFIGURATOR": "user_configurator",
        "USER_OTLP_URL": sink.http_traces_url,
        "OTEL_IMPACT_CUSTOMER_HEADER": "X-Customer-Id",
    }
    with _flask(sink, **env) as app:
        status = _get(app, "/_status").json()
        trace_headers, trace_id = new_trace()
        state = _get(app, "/whoami", {**trace_headers, "X-Customer-Id": CANARY_EMAIL}).json()
        spans = trace_spans(sink, trace_id, count=2)
        log = app.log()
    assert status["enabled"] and "flask" in status["hooks"]
    assert state["customer_hash"] == pseudonym(CANARY_EMAIL)
    server = next(span for span in spans if span.kind == SERVER)
    assert server.resource["service.name"] == "user-configured"  # the user's configurator made the provider
    assert server.resource["impact.hash.key_id"]  # and otel-impact added its key id to it
    assert server.attributes["user.hook"] == "ran"  # the user's distro hook ran, composed with ours
    assert server.attributes["impact.customer.hash"] == pseudonym(CANARY_EMAIL)
    assert server.attributes["enduser.id"] == pseudonym(CANARY_EMAIL)  # the raw ID it set was rewritten
    child = next(span for span in spans if span.name == "flask.work")
    assert child.attributes["impact.customer.hash"] == pseudonym(CANARY_EMAIL)
    assert_no_canary(sink.raw_bytes(), where="exported OTLP")
    assert_no_canary(log.encode(), where="the app's stderr")
    assert _otel_impact_lines(log) == []


def test_without_an_sdk_it_says_what_to_install_once_and_leaves_the_app_alone(sink: OtlpSink) -> None:
    # No configurator runs (the name matches none), so nobody sets up an SDK tracer provider.
    with _flask(
        sink, OTEL_PYTHON_CONFIGURATOR="no_such_configurator", OTEL_IMPACT_CUSTOMER_HEADER="X-Customer-Id"
    ) as app:
        status = _get(app, "/_status").json()
        state = _get(app, "/whoami", {"X-Customer-Id": CANARY_EMAIL}).json()
        _get(app, "/whoami", {"X-Customer-Id": CANARY_EMAIL})
        log = app.log()
    assert status == {"enabled": False, "reason": "no sdk", "hooks": [], "openfeature_hook": False}
    assert state == {"customer_hash": None, "tier": None, "flags": []}
    assert _otel_impact_lines(log) == [NO_SDK_MESSAGE]
    assert "pip install opentelemetry-distro" in NO_SDK_MESSAGE
    assert_no_canary(log.encode(), where="the app's stderr")


@pytest.mark.parametrize("disabled", ["otel_impact", "requests,otel_impact", "*"])
def test_switched_off_by_otel_python_disabled_instrumentations(sink: OtlpSink, disabled: str) -> None:
    with _flask(
        sink, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=disabled, OTEL_IMPACT_CUSTOMER_HEADER="X-Customer-Id"
    ) as app:
        status = _get(app, "/_status").json()
        trace_headers, trace_id = new_trace()
        state = _get(app, "/whoami", {**trace_headers, "X-Customer-Id": CANARY_EMAIL}).json()
        spans = trace_spans(sink, trace_id, count=2, timeout=3 if disabled == "*" else 15)
        log = app.log()
    assert status == {"enabled": False, "reason": "disabled", "hooks": [], "openfeature_hook": False}
    assert state == {"customer_hash": None, "tier": None, "flags": []}
    if disabled == "*":
        assert spans == []  # nothing is instrumented at all
    else:
        assert len(spans) == 2  # Flask is still instrumented...
        for span in spans:
            assert impact_attributes(span) == {}  # ...but otel-impact is off
            assert "impact.hash.key_id" not in span.resource
    assert _otel_impact_lines(log) == []


def test_misconfiguration_is_one_line_per_problem_and_the_app_keeps_serving(sink: OtlpSink) -> None:
    env = {
        "OTEL_IMPACT_HASH_KEY": "",  # missing key
        "OTEL_IMPACT_CUSTOMER_HEADER": "X Customer Id",  # not a header name
        "OTEL_IMPACT_TIER_HEADER": "HTTP_X_TIER",  # the WSGI form
        "OTEL_IMPACT_CUSTOMER_CALLABLE": "no_such_module_zc:customer_of",  # broken path
        "OTEL_IMPACT_TIER_CALLABLE": "json:no_such_function",  # no such function
        "OTEL_IMPACT_CUSTOMR_COOKIE": "cid",  # misspelt
        "OTEL_IMPACT_CUSTOMER_JWT_CLAIM": "sub",  # valid: still applies
        "OTEL_IMPACT_TIER_JWT_CLAIM": "plan",  # valid: still applies
    }
    token = make_jwt({"sub": CANARY_EMAIL, "plan": "pro"})
    with _flask(sink, **env) as app:
        _get(app, "/_status")
        time.sleep(0.2)
        start_up = _otel_impact_lines(app.log())
        states = [_get(app, "/whoami", {"Authorization": f"Bearer {token}"}).json() for _ in range(3)]
        log = app.log()
    expected = {
        "OTEL_IMPACT_HASH_KEY": "no pseudonymization key is set",
        "OTEL_IMPACT_CUSTOMER_HEADER": "is not an HTTP header name",
        "OTEL_IMPACT_TIER_HEADER": "give the HTTP header name, e.g. X-Tier",
        "OTEL_IMPACT_CUSTOMER_CALLABLE": "cannot import module 'no_such_module_zc'",
        "OTEL_IMPACT_TIER_CALLABLE": "has no attribute 'no_such_function'",
        "OTEL_IMPACT_CUSTOMR_COOKIE": "did you mean OTEL_IMPACT_CUSTOMER_COOKIE?",
    }
    assert len(start_up) == len(expected), start_up
    for variable, explanation in expected.items():
        lines = [line for line in start_up if variable in line and explanation in line]
        assert len(lines) == 1, (variable, start_up)
    # It keeps serving, with what was valid: the tier claim; the ID is refused without a key.
    assert states == [{"customer_hash": None, "tier": "pro", "flags": []}] * 3
    after = _otel_impact_lines(log)[len(start_up) :]
    assert len(after) == 1 and "set_customer() ignored the customer ID" in after[0]  # the first refusal, once
    assert_no_canary(log.encode(), where="the app's stderr")
    assert token not in log
