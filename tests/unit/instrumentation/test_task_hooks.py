"""Tasks named by ``OTEL_IMPACT_TASKS`` in-process, against the real instrumentations and SDK: the
server span becomes the task's root with the response's outcome, code wins, and the start-up
warnings (bad entries, nothing hooked)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent import futures
from types import SimpleNamespace
from typing import Any

import flask
import grpc
import pytest
from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.grpc import GrpcInstrumentorServer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.asgi import call_once

import otel_impact
from otel_impact.instrumentation import _task_stamp, auto
from otel_impact.instrumentation import asgi as impact_asgi
from otel_impact.instrumentation import django as impact_django
from otel_impact.instrumentation import flask as impact_flask
from otel_impact.instrumentation import grpc as impact_grpc
from otel_impact.instrumentation._attribution import install_extractor
from otel_impact.instrumentation._patching import undo_all
from otel_impact.instrumentation.settings import ExtractionSettings
from otel_impact.instrumentation.tasks import TaskRules

ROOT_OK = {"impact.task.name": "checkout", "impact.task.root": True, "impact.task.outcome": "success"}
ROOT_FAILED = {**ROOT_OK, "impact.task.outcome": "failure"}


@pytest.fixture(autouse=True)
def clean_instrumentation(hash_key: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(auto, "_status", auto.AutoInstrumentationStatus(False, "not started"))
    yield
    undo_all()
    install_extractor(None)
    _task_stamp.install_rules(None)


def use_tasks(provider: TracerProvider, tasks: str, failure: str = "") -> None:
    otel_impact.configure(provider)
    rules, problems = TaskRules.parse(tasks, failure)
    assert problems == []
    _task_stamp.install_rules(rules)
    provider.add_span_processor(_task_stamp.TaskProbeProcessor())


def task_attributes(span: ReadableSpan) -> dict[str, Any]:
    return {key: value for key, value in (span.attributes or {}).items() if key.startswith("impact.task.")}


def servers(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind == trace.SpanKind.SERVER]


# -- Flask ----------------------------------------------------------------------------------------


def flask_app(provider: TracerProvider) -> flask.Flask:
    app = flask.Flask(__name__)  # the instrumented class, made after instrument()

    @app.post("/api/checkout")
    def checkout() -> Any:
        status = int(flask.request.args.get("status", "200"))
        return "done", status

    @app.post("/api/explicit")
    def explicit() -> Any:
        with otel_impact.user_task("pay", tracer_provider=provider) as task:
            task.fail("declined")
        return "declined", 500

    @app.route("/other/<item>", methods=["GET", "DELETE"])
    def other(item: str) -> Any:
        return item

    return app


@pytest.mark.parametrize(
    ("failure", "outcomes"),
    [
        ("", {200: "success", 404: "success", 429: "success", 500: "failure", 503: "failure"}),
        ("5xx,429", {200: "success", 404: "success", 429: "failure", 500: "failure", 503: "failure"}),
        ("4xx", {200: "success", 404: "failure", 429: "failure", 500: "failure", 503: "failure"}),
    ],
)
def test_flask_server_span_becomes_the_tasks_root_with_the_responses_outcome(
    provider: TracerProvider, exporter: InMemorySpanExporter, failure: str, outcomes: dict[int, str]
) -> None:
    use_tasks(provider, "checkout=POST /api/checkout,browse=* /other/<item>", failure)
    user_responses: list[str] = []
    impact_flask.arm(tasks=True)
    instrumentor = FlaskInstrumentor()
    instrumentor.instrument(
        tracer_provider=provider, response_hook=lambda span, status, headers: user_responses.append(status)
    )
    try:
        client = flask_app(provider).test_client()
        for status in outcomes:
            assert client.post(f"/api/checkout?status={status}").status_code == status
        assert client.get("/other/shoes").status_code == 200
        assert client.delete("/other/shoes").status_code == 200  # the rule holds for every method
    finally:
        instrumentor.uninstrument()
    spans = servers(exporter)
    assert [task_attributes(span) for span in spans[: len(outcomes)]] == [
        {**ROOT_OK, "impact.task.outcome": outcome} for outcome in outcomes.values()
    ]
    assert task_attributes(spans[-2]) == {**ROOT_OK, "impact.task.name": "browse"}
    assert task_attributes(spans[-1]) == {**ROOT_OK, "impact.task.name": "browse"}
    assert len(user_responses) == len(outcomes) + 2  # the user's response hook still runs


def test_an_explicit_user_task_in_the_handler_wins_and_unmatched_routes_are_left_alone(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    use_tasks(provider, "checkout=POST /api/explicit,checkout2=GET /api/checkout")
    impact_flask.arm(tasks=True)
    instrumentor = FlaskInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        client = flask_app(provider).test_client()
        assert client.post("/api/explicit").status_code == 500
        assert client.post("/api/checkout").status_code == 200  # POST: the rule is for GET
        assert client.get("/missing").status_code == 404  # no route at all
    finally:
        instrumentor.uninstrument()
    explicit_server, unmatched, missing = servers(exporter)
    assert task_attributes(explicit_server) == {}
    (pay,) = [span for span in exporter.get_finished_spans() if span.name == "pay"]
    assert task_attributes(pay) == {
        "impact.task.name": "pay",
        "impact.task.root": True,
        "impact.task.outcome": "failure",
    }
    assert task_attributes(unmatched) == {} and task_attributes(missing) == {}


def test_without_tasks_the_hooks_stamp_nothing(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    otel_impact.configure(provider)
    impact_flask.arm(tasks=True)  # armed, but OTEL_IMPACT_TASKS names nothing
    instrumentor = FlaskInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        assert flask_app(provider).test_client().post("/api/checkout?status=500").status_code == 500
    finally:
        instrumentor.uninstrument()
    assert task_attributes(servers(exporter)[0]) == {}


def test_a_server_span_already_inside_a_task_keeps_it(provider: TracerProvider) -> None:
    use_tasks(provider, "checkout=GET /")
    tracer = provider.get_tracer("t")
    with (
        otel_impact.user_task("upstream", tracer_provider=provider),
        tracer.start_as_current_span("GET /", kind=trace.SpanKind.SERVER, attributes={"http.route": "/"}) as span,
    ):
        environ: dict[str, Any] = {"REQUEST_METHOD": "GET"}
        impact_flask.request_hook(span, environ)
        _task_stamp.finish_http(environ[_task_stamp.CARRIER_KEY], "GET", 200)
    assert task_attributes(span) == {"impact.task.name": "upstream", "impact.task.root": False}  # type: ignore[arg-type]


# -- Django (the hooks as DjangoInstrumentor calls them; http.route is set after the request hook) --


@pytest.mark.parametrize(("status", "outcome"), [(200, "success"), (500, "failure")])
def test_django_route_known_only_after_the_request_hook_is_matched_in_the_response_hook(
    provider: TracerProvider, status: int, outcome: str
) -> None:
    use_tasks(provider, "checkout=POST api/checkout/")
    tracer = provider.get_tracer("django-test")
    request = SimpleNamespace(META={}, method="POST")
    token = context_api.attach(context_api.Context())
    try:
        with tracer.start_as_current_span("POST", kind=trace.SpanKind.SERVER) as span:
            impact_django.request_hook(span, request)
            span.set_attribute("http.route", "api/checkout/")  # process_view
            impact_django.response_hook(span, request, SimpleNamespace(status_code=status))
    finally:
        context_api.detach(token)
    assert task_attributes(span) == {**ROOT_OK, "impact.task.outcome": outcome}  # type: ignore[arg-type]


# -- ASGI ---------------------------------------------------------------------------------------------


def test_asgi_server_span_is_stamped_when_the_response_starts(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    use_tasks(provider, "checkout=POST /api/checkout")
    impact_asgi.arm(tasks=True)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b"busy"})

    middleware = OpenTelemetryMiddleware(
        app,
        tracer_provider=provider,
        default_span_details=lambda scope: ("POST /api/checkout", {"http.route": "/api/checkout"}),
    )

    call_once(middleware, "POST", "/api/checkout")
    (server,) = servers(exporter)
    assert task_attributes(server) == ROOT_FAILED


# -- gRPC -----------------------------------------------------------------------------------------------


def test_grpc_server_span_gets_the_task_and_the_status_codes_outcome(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    use_tasks(provider, "checkout=grpc /shop.Checkout/Pay,listing=grpc /shop.Checkout/List", "NOT_FOUND")
    otel_grpc = GrpcInstrumentorServer()
    otel_grpc.instrument(tracer_provider=provider)
    impact_grpc.arm()

    def pay(request: bytes, context: Any) -> bytes:
        if request == b"internal":
            context.abort(grpc.StatusCode.INTERNAL, "boom")
        if request == b"invalid":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad card")
        if request == b"missing":
            context.set_code(grpc.StatusCode.NOT_FOUND)
            return b""
        if request == b"raise":
            raise RuntimeError("unexpected")
        return b"ok"

    handler = grpc.method_handlers_generic_handler(
        "shop.Checkout",
        {"Pay": grpc.unary_unary_rpc_method_handler(pay), "Other": grpc.unary_unary_rpc_method_handler(pay)},
    )
    pool = futures.ThreadPoolExecutor(max_workers=2)
    server = grpc.server(pool)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    codes = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            for request in (b"ok", b"internal", b"invalid", b"missing", b"raise"):
                try:
                    channel.unary_unary("/shop.Checkout/Pay")(request, timeout=10)
                    codes.append("OK")
                except grpc.RpcError as error:
                    codes.append(error.code().name)
            channel.unary_unary("/shop.Checkout/Other")(b"ok", timeout=10)
    finally:
        server.stop(grace=None)
        pool.shutdown(wait=False)
        otel_grpc.uninstrument()
    assert codes == ["OK", "INTERNAL", "INVALID_ARGUMENT", "NOT_FOUND", "UNKNOWN"]
    spans = servers(exporter)
    assert [task_attributes(span).get("impact.task.outcome") for span in spans[:5]] == [
        "success",
        "failure",  # INTERNAL: the server's fault
        "success",  # INVALID_ARGUMENT: the client's
        "failure",  # NOT_FOUND, added by OTEL_IMPACT_TASK_FAILURE
        "failure",  # an exception
    ]
    assert all(task_attributes(span)["impact.task.root"] is True for span in spans[:5])
    assert task_attributes(spans[5]) == {}  # /shop.Checkout/Other is named by no entry


# -- start-up -------------------------------------------------------------------------------------


def test_bad_entries_warn_once_at_start_up_and_the_good_ones_apply(
    provider: TracerProvider, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_IMPACT_TASKS", "checkout=POST /api/checkout,oops,search=GET")
    monkeypatch.setattr(auto, "installed_instrumentors", lambda: {"flask"})
    caplog.set_level(logging.WARNING, logger="otel_impact")
    status = auto.enable(provider)
    assert status.enabled and "flask" in status.hooks  # armed for the tasks, with no customer source
    assert _task_stamp.rules is not None and _task_stamp.rules.match_http("POST", "/api/checkout") == "checkout"
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "'oops'" in warnings[0] and "'search=GET'" in warnings[1]
    assert all("NAME=METHOD ROUTE" in warning for warning in warnings)
    auto.disable()
    assert _task_stamp.rules is None


@pytest.mark.parametrize(
    ("env", "installed", "disabled", "warns"),
    [
        ({"OTEL_IMPACT_CUSTOMER_HEADER": "X-Customer-Id"}, set(), "", True),
        ({"OTEL_IMPACT_TASKS": "checkout=POST /api/checkout"}, {"requests", "urllib3"}, "", True),
        ({"OTEL_IMPACT_CUSTOMER_HEADER": "X-Customer-Id"}, {"flask"}, "flask", True),
        ({"OTEL_IMPACT_CUSTOMER_HEADER": "X-Customer-Id"}, {"flask"}, "*", True),
        ({"OTEL_IMPACT_CUSTOMER_HEADER": "X-Customer-Id"}, {"flask"}, "", False),
        ({"OTEL_IMPACT_TASKS": "pay=grpc /a.B/C"}, {"grpc_server"}, "", False),
        ({}, set(), "", False),  # nothing to read from requests: nothing to say
    ],
)
def test_one_warning_names_the_packages_when_nothing_hooked_is_installed(
    provider: TracerProvider,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    env: dict[str, str],
    installed: set[str],
    disabled: str,
    warns: bool,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", disabled)
    monkeypatch.setattr(auto, "installed_instrumentors", lambda: installed)
    caplog.set_level(logging.WARNING, logger="otel_impact")
    auto.enable(provider)
    found = [r.getMessage() for r in caplog.records if "no framework instrumentation" in r.getMessage()]
    if not warns:
        assert found == []
        return
    assert len(found) == 1
    assert "pip install opentelemetry-instrumentation-flask" in found[0]
    assert "opentelemetry-bootstrap -a install" in found[0]
    auto.disable()


def test_the_installed_instrumentors_are_read_from_the_entry_points() -> None:
    assert {"flask", "django", "fastapi", "grpc_server", "otel_impact"} <= auto.installed_instrumentors()
    assert not auto.warn_if_nothing_hooked(ExtractionSettings(customer_header="X-Customer-Id"), TaskRules(), ())
