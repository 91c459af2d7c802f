"""Framework hooks in-process, against the real instrumentations and the real SDK: composition
with the user's hooks, the explicit call winning, Django's two phases, the gRPC interceptor,
and the instrumentor's switch."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent import futures
from types import SimpleNamespace
from typing import Any

import flask
import grpc
import grpc.aio
import pytest
from flask import jsonify
from openfeature import api
from opentelemetry import baggage, trace
from opentelemetry import context as context_api
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import ProxyTracerProvider
from support.asgi import call_once
from support.canaries import CANARY_EMAIL, CANARY_NUMBER
from support.zero_code import pseudonym

import otel_impact
from otel_impact._state import current_state
from otel_impact.instrumentation import ExtractionSettings, RequestExtractor, auto
from otel_impact.instrumentation import asgi as impact_asgi
from otel_impact.instrumentation import django as impact_django
from otel_impact.instrumentation import flask as impact_flask
from otel_impact.instrumentation import grpc as impact_grpc
from otel_impact.instrumentation._attribution import install_extractor
from otel_impact.instrumentation._patching import compose, undo_all


@pytest.fixture(autouse=True)
def clean_instrumentation(hash_key: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(auto, "_status", auto.AutoInstrumentationStatus(False, "not started"))
    yield
    undo_all()
    install_extractor(None)


def use_sources(**settings: Any) -> None:
    extractor, problems = RequestExtractor.from_settings(ExtractionSettings(**settings))
    assert problems == []
    install_extractor(extractor)


def impact(span: Any) -> dict[str, Any]:
    return {key: value for key, value in (span.attributes or {}).items() if key.startswith("impact.")}


# -- composition --------------------------------------------------------------------------------


def test_compose_calls_ours_then_theirs_once_and_keeps_their_result() -> None:
    calls: list[str] = []

    def ours(*args: Any) -> None:
        calls.append("ours")

    def theirs(*args: Any) -> str:
        calls.append("theirs")
        return "their result"

    both = compose(ours, theirs)
    assert both(1, 2) == "their result" and calls == ["ours", "theirs"]
    assert compose(ours, both) is both  # composing again does not add ours twice
    assert compose(ours, None) is ours and compose(ours, ours) is ours


# -- Flask ----------------------------------------------------------------------------------------


def test_flask_hook_composes_with_the_users_hook_and_the_handler_call_wins(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:

    otel_impact.configure(provider)
    use_sources(customer_header="X-Customer-Id", tier_header="X-Customer-Tier")
    seen_by_user_hook: list[str | None] = []

    def user_hook(span: Any, environ: Any) -> None:
        state = current_state()
        seen_by_user_hook.append(state.customer_hash if state else None)
        span.set_attribute("user.hook", True)

    impact_flask.arm()
    instrumentor = FlaskInstrumentor()
    instrumentor.instrument(tracer_provider=provider, request_hook=user_hook)
    try:
        app = flask.Flask(__name__)  # the instrumented class, made after instrument()

        @app.get("/plain")
        def plain() -> Any:
            return jsonify((current_state() or SimpleNamespace(customer_hash=None)).customer_hash)

        @app.get("/explicit")
        def explicit() -> Any:
            otel_impact.set_customer("explicit-1", tier="enterprise")
            return jsonify(True)

        client = app.test_client()
        headers = {"X-Customer-Id": CANARY_EMAIL, "X-Customer-Tier": "pro"}
        assert client.get("/plain", headers=headers).json == pseudonym(CANARY_EMAIL)
        assert client.get("/explicit", headers=headers).status_code == 200
        assert client.get("/plain").json is None  # nothing leaks into the next request
    finally:
        instrumentor.uninstrument()
    plain_span, explicit_span, anonymous_span = exporter.get_finished_spans()
    assert impact(plain_span) == {"impact.customer.hash": pseudonym(CANARY_EMAIL), "impact.customer.tier": "pro"}
    assert plain_span.attributes["user.hook"] is True
    assert seen_by_user_hook[0] == pseudonym(CANARY_EMAIL)  # ours ran first
    assert impact(explicit_span) == {
        "impact.customer.hash": pseudonym("explicit-1"),
        "impact.customer.tier": "enterprise",
    }
    assert impact(anonymous_span) == {}


def test_a_failing_extraction_never_breaks_the_request(
    provider: TracerProvider, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:

    use_sources(customer_callable="support.impact_callables:raises", customer_header="X-Customer-Id")
    impact_flask.arm()
    instrumentor = FlaskInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        app = flask.Flask(__name__)  # the instrumented class, made after instrument()
        app.get("/")(lambda: "ok")
        client = app.test_client()
        responses = [client.get("/", headers={"X-Customer-Id": CANARY_NUMBER}) for _ in range(3)]
    finally:
        instrumentor.uninstrument()
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert len([r for r in caplog.records if "raised KeyError" in r.getMessage()]) == 1
    assert all(CANARY_EMAIL not in r.getMessage() for r in caplog.records)


# -- ASGI -----------------------------------------------------------------------------------------


def test_asgi_middleware_gets_the_hook_composed_with_the_users(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:

    otel_impact.configure(provider)
    use_sources(customer_cookie="cid")
    impact_asgi.arm()
    user_calls: list[str] = []
    seen: list[object] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        state = current_state()
        seen.append(state.customer_hash if state else None)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = OpenTelemetryMiddleware(
        app, server_request_hook=lambda span, scope: user_calls.append("user"), tracer_provider=provider
    )

    call_once(middleware, "GET", "/", [(b"cookie", f"cid={CANARY_NUMBER}".encode())])
    assert seen == [pseudonym(CANARY_NUMBER)] and user_calls == ["user"]
    server = next(span for span in exporter.get_finished_spans() if span.kind == trace.SpanKind.SERVER)
    assert impact(server) == {"impact.customer.hash": pseudonym(CANARY_NUMBER)}


# -- Django's two phases (the hooks as DjangoInstrumentor calls them) ---------------------------


def django_request(headers: dict[str, str]) -> Any:
    return SimpleNamespace(META={"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})


def serve_django(provider: TracerProvider, request: Any, view: Any = None, user: str | None = None) -> Any:
    """What the OpenTelemetry middleware does around the chain: span, request hook, (auth) view, response hook."""
    tracer = provider.get_tracer("django-test")
    token = context_api.attach(context_api.Context())
    try:
        with tracer.start_as_current_span("GET /", kind=trace.SpanKind.SERVER) as span:
            impact_django.request_hook(span, request)
            request.user = SimpleNamespace(is_authenticated=user is not None, username=user)  # auth middleware
            if view is not None:
                view()
            impact_django.response_hook(span, request, None)
            return span
    finally:
        context_api.detach(token)


@pytest.fixture
def django_sources(provider: TracerProvider) -> None:
    otel_impact.configure(provider)
    use_sources(customer_header="X-Customer-Id", tier_header="X-Customer-Tier", django_user_attribute="username")


@pytest.mark.usefixtures("django_sources")
def test_django_response_phase_attributes_from_request_user(provider: TracerProvider) -> None:
    span = serve_django(provider, django_request({"X-Customer-Tier": "pro"}), user=CANARY_EMAIL)
    assert impact(span) == {"impact.customer.hash": pseudonym(CANARY_EMAIL), "impact.customer.tier": "pro"}


@pytest.mark.usefixtures("django_sources")
def test_django_response_phase_never_overrides_the_request_phase_or_the_view(provider: TracerProvider) -> None:
    header = serve_django(provider, django_request({"X-Customer-Id": "from-header"}), user="someone-else")
    assert impact(header) == {"impact.customer.hash": pseudonym("from-header")}

    def view() -> None:
        otel_impact.set_customer("from-view", tier="enterprise")

    by_view = serve_django(provider, django_request({}), view=view, user="someone-else")
    assert impact(by_view) == {"impact.customer.hash": pseudonym("from-view"), "impact.customer.tier": "enterprise"}

    def tier_only_view() -> None:
        otel_impact.set_customer(None, tier="free")  # the view said who (tier only): leave it

    tier_only = serve_django(provider, django_request({"X-Customer-Tier": "pro"}), view=tier_only_view, user="u")
    assert impact(tier_only) == {"impact.customer.tier": "free"}


@pytest.mark.usefixtures("django_sources")
def test_django_response_phase_leaves_a_span_attributed_by_trusted_baggage(provider: TracerProvider) -> None:
    ctx = baggage.set_baggage("impact.customer.hash", "a" * 32, context_api.Context())
    token = context_api.attach(ctx)
    try:
        processor = otel_impact.ImpactSpanProcessor(trust_incoming_baggage=True)
        provider.add_span_processor(processor)
        tracer = provider.get_tracer("django-test")
        request = django_request({})
        with tracer.start_as_current_span("GET /", kind=trace.SpanKind.SERVER) as span:
            impact_django.request_hook(span, request)
            request.user = SimpleNamespace(is_authenticated=True, username="u")
            impact_django.response_hook(span, request, None)
    finally:
        context_api.detach(token)
    assert impact(span)["impact.customer.hash"] == "a" * 32


def test_on_a_trusting_service_extraction_replaces_the_callers_customer_and_keeps_its_flags_and_task(
    provider: TracerProvider, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_IMPACT_TRUST_INCOMING_BAGGAGE", "true")
    otel_impact.configure(provider)
    use_sources(customer_header="X-Customer-Id")
    ctx = context_api.Context()
    for key, value in {
        "impact.customer.hash": "a" * 32,
        "impact.customer.tier": "free",
        "impact.feature_flags": "new_checkout=on",
        "impact.task.name": "checkout",
    }.items():
        ctx = baggage.set_baggage(key, value, ctx)
    token = context_api.attach(ctx)
    try:
        tracer = provider.get_tracer("trusting")
        with tracer.start_as_current_span("GET /", kind=trace.SpanKind.SERVER) as server:
            impact_flask.request_hook(server, {"HTTP_X_CUSTOMER_ID": CANARY_EMAIL})
            with tracer.start_as_current_span("child"):
                pass
    finally:
        context_api.detach(token)
    child = next(span for span in exporter.get_finished_spans() if span.name == "child")
    assert impact(child) == {
        "impact.customer.hash": pseudonym(CANARY_EMAIL),
        "impact.feature_flags": ("new_checkout=on",),
        "impact.task.name": "checkout",
        "impact.task.root": False,
    }
    assert impact(server)["impact.customer.hash"] == pseudonym(CANARY_EMAIL)


# -- gRPC interceptor -----------------------------------------------------------------------------


@pytest.mark.parametrize("positional", [False, True])
def test_grpc_server_gets_the_interceptor_after_the_users(positional: bool) -> None:
    use_sources(customer_header="X-Customer-Id")
    impact_grpc.arm()
    order: list[str] = []

    class UserInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
        def intercept_service(self, continuation: Any, details: Any) -> Any:
            order.append("user")
            return continuation(details)

    def answer(request: bytes, context: Any) -> bytes:
        state = current_state()
        return json.dumps(state.customer_hash if state else None).encode()

    handler = grpc.method_handlers_generic_handler("t.S", {"M": grpc.unary_unary_rpc_method_handler(answer)})
    pool = futures.ThreadPoolExecutor(max_workers=2)
    if positional:
        server = grpc.server(pool, None, [UserInterceptor()])
    else:
        server = grpc.server(pool, interceptors=[UserInterceptor()])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            method = channel.unary_unary("/t.S/M")
            attributed = json.loads(method(b"", metadata=[("x-customer-id", CANARY_EMAIL)], timeout=10))
            anonymous = json.loads(method(b"", timeout=10))
    finally:
        server.stop(grace=None)
        pool.shutdown(wait=False)
    assert attributed == pseudonym(CANARY_EMAIL) and anonymous is None  # and the context was restored
    assert order == ["user", "user"]


def test_grpc_aio_server_is_attributed_inside_the_opentelemetry_server_span(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    otel_impact.configure(provider)
    use_sources(customer_header="X-Customer-Id")
    impact_grpc.arm_aio()
    otel_aio = GrpcAioInstrumentorServer()
    otel_aio.instrument(tracer_provider=provider)

    def seen() -> bytes:
        state = current_state()
        return json.dumps(state.customer_hash if state else None).encode()

    async def unary(request: bytes, context: Any) -> bytes:
        return seen()

    async def stream(request: bytes, context: Any) -> Any:
        yield seen()
        yield seen()

    async def scenario() -> list[object]:
        handler = grpc.method_handlers_generic_handler(
            "t.A",
            {
                "U": grpc.unary_unary_rpc_method_handler(unary),
                "S": grpc.unary_stream_rpc_method_handler(stream),
            },
        )
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                metadata = (("x-customer-id", CANARY_EMAIL),)
                first = await channel.unary_unary("/t.A/U")(b"", metadata=metadata, timeout=10)
                streamed = [reply async for reply in channel.unary_stream("/t.A/S")(b"", metadata=metadata, timeout=10)]
                anonymous = await channel.unary_unary("/t.A/U")(b"", timeout=10)
            return [json.loads(r) for r in (first, *streamed, anonymous)]
        finally:
            await server.stop(None)

    try:
        replies = asyncio.run(scenario())
    finally:
        otel_aio.uninstrument()
    assert replies == [pseudonym(CANARY_EMAIL)] * 3 + [None]
    servers = [span for span in exporter.get_finished_spans() if span.kind == trace.SpanKind.SERVER]
    assert len(servers) == 3
    assert [impact(span).get("impact.customer.hash") for span in servers] == [pseudonym(CANARY_EMAIL)] * 2 + [None]


# -- the instrumentor -----------------------------------------------------------------------------


def test_instrumentor_enables_and_disables(provider: TracerProvider, monkeypatch: pytest.MonkeyPatch) -> None:

    original = FlaskInstrumentor.instrument
    monkeypatch.setenv("OTEL_IMPACT_CUSTOMER_HEADER", "X-Customer-Id")
    instrumentor = auto.ImpactInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        status = auto.status()
        assert status.enabled
        assert {"flask", "django", "asgi", "wsgi", "grpc_server", "grpc_aio_server"} <= set(status.hooks)
        assert status.openfeature_hook
        assert FlaskInstrumentor.instrument is not original
        assert any(type(hook).__name__ == "ImpactFeatureFlagHook" for hook in api.get_hooks())
        assert auto.enable(provider) is status  # idempotent
    finally:
        instrumentor.uninstrument()
    assert auto.status().reason == "disabled"
    assert FlaskInstrumentor.instrument is original
    assert not any(type(hook).__name__ == "ImpactFeatureFlagHook" for hook in api.get_hooks())


def test_a_framework_switched_off_by_name_is_not_armed(
    provider: TracerProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = FlaskInstrumentor.instrument
    monkeypatch.setenv("OTEL_IMPACT_CUSTOMER_HEADER", "X-Customer-Id")
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "flask,grpc_server")
    status = auto.enable(provider)
    try:
        assert status.enabled and "flask" not in status.hooks and "grpc_server" not in status.hooks
        assert {"django", "asgi", "wsgi"} <= set(status.hooks)
        assert FlaskInstrumentor.instrument is original
    finally:
        auto.disable()


def test_without_sources_no_hook_is_armed(provider: TracerProvider) -> None:
    status = auto.enable(provider)
    assert status.enabled and status.hooks == ()
    auto.disable()


def test_without_an_sdk_provider_one_warning_and_nothing_else(caplog: pytest.LogCaptureFixture) -> None:
    proxy = ProxyTracerProvider()
    assert auto.enable(proxy).reason == "no sdk"
    assert auto.enable(proxy).reason == "no sdk"
    assert [r.getMessage() for r in caplog.records] == [auto.NO_SDK_MESSAGE]


@pytest.mark.parametrize(
    ("value", "disabled"),
    [("", False), ("flask", False), ("flask, otel_impact", True), ("*", True), ("otel_impact_x", False)],
)
def test_disabled_by_env(value: str, disabled: bool) -> None:
    assert auto.disabled_by_env({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": value}) is disabled


def test_pre_instrument_respects_the_switch_and_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "otel_impact")
    auto.pre_instrument()
    assert auto.status().reason == "disabled"
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")

    def boom(tracer_provider: Any = None) -> Any:
        raise RuntimeError("unexpected")

    monkeypatch.setattr(auto, "enable", boom)
    auto.pre_instrument()  # logged, not raised
