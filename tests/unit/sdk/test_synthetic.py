"""Synthetic traffic in the SDK: ``user_task(..., synthetic=True)``, the baggage that carries the
mark downstream, and ``OTEL_IMPACT_SYNTHETIC_HEADER`` in zero-code mode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import flask
import pytest
from flask import jsonify
from opentelemetry import baggage, trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.canaries import CANARY_EMAIL
from support.zero_code import pseudonym

import otel_impact
from otel_impact import ConfigurationError, ImpactSpanProcessor
from otel_impact import _attributes as wire
from otel_impact._baggage import state_from_baggage
from otel_impact._state import ImpactState, current_state
from otel_impact.instrumentation import ExtractionSettings, RequestExtractor, auto
from otel_impact.instrumentation import flask as impact_flask
from otel_impact.instrumentation._attribution import install_extractor
from otel_impact.instrumentation._patching import undo_all
from otel_impact.instrumentation.incoming import WsgiRequest
from otel_impact.instrumentation.settings import KNOWN_VARIABLES, parse_synthetic_header


def impact(span: ReadableSpan) -> dict[str, Any]:
    return {key: value for key, value in (span.attributes or {}).items() if key.startswith("impact.")}


def named(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    (span,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


# -- explicit API --------------------------------------------------------------------------------


def test_a_synthetic_task_marks_its_root_its_children_and_its_baggage(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    provider.add_span_processor(ImpactSpanProcessor())
    tracer = provider.get_tracer("test")
    with otel_impact.user_task("checkout", synthetic=True, tracer_provider=provider):
        assert baggage.get_baggage(wire.BAGGAGE_SYNTHETIC) == "true"
        with tracer.start_as_current_span("db"):
            pass
        with otel_impact.user_task("inner", tracer_provider=provider):  # inside a synthetic task: synthetic
            pass
    assert baggage.get_baggage(wire.BAGGAGE_SYNTHETIC) is None
    assert impact(named(exporter, "checkout"))[wire.SYNTHETIC] is True
    assert impact(named(exporter, "db")) == {
        "impact.task.name": "checkout",
        "impact.task.root": False,
        wire.SYNTHETIC: True,
    }
    assert impact(named(exporter, "inner"))[wire.SYNTHETIC] is True


def test_a_real_task_carries_no_mark(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    provider.add_span_processor(ImpactSpanProcessor())
    with otel_impact.user_task("checkout", tracer_provider=provider):
        assert baggage.get_baggage(wire.BAGGAGE_SYNTHETIC) is None
    assert wire.SYNTHETIC not in impact(named(exporter, "checkout"))


def test_the_mark_is_on_the_root_without_the_span_processor(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    @otel_impact.user_task("search", synthetic=True, tracer_provider=provider)
    def search() -> None:
        pass

    search()
    assert impact(named(exporter, "search"))[wire.SYNTHETIC] is True


def test_the_customer_keeps_the_mark(hash_key: str, provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    provider.add_span_processor(ImpactSpanProcessor())
    with otel_impact.user_task("checkout", synthetic=True, tracer_provider=provider):
        with otel_impact.set_customer(CANARY_EMAIL, tier="pro"):
            state = current_state()
            assert state is not None and state.synthetic and state.customer_hash == pseudonym(CANARY_EMAIL)
            with provider.get_tracer("t").start_as_current_span("after-customer"):
                pass
    assert impact(named(exporter, "after-customer"))[wire.SYNTHETIC] is True


@pytest.mark.parametrize(("value", "synthetic"), [("true", True), ("false", False), ("TRUE", False), ("1", False)])
def test_trusted_baggage_carries_the_mark_only_as_true(value: str, synthetic: bool) -> None:
    state = state_from_baggage({wire.BAGGAGE_SYNTHETIC: value, wire.BAGGAGE_TASK_NAME: "checkout"})
    assert state is not None and state.synthetic is synthetic
    alone = state_from_baggage({wire.BAGGAGE_SYNTHETIC: "true"})
    assert alone is not None and alone.synthetic and alone.span_attributes == {wire.SYNTHETIC: True}


def test_a_downstream_service_that_trusts_its_callers_stamps_the_mark(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    provider.add_span_processor(ImpactSpanProcessor(trust_incoming_baggage=True))
    context = baggage.set_baggage(wire.BAGGAGE_SYNTHETIC, "true")
    with provider.get_tracer("t").start_as_current_span("downstream", context=context):
        pass
    assert impact(named(exporter, "downstream")) == {wire.SYNTHETIC: True}


def test_as_synthetic_is_idempotent_and_new_states_are_real() -> None:
    state = ImpactState(task="checkout")
    marked = state.as_synthetic()
    assert not state.synthetic and marked.synthetic and marked.as_synthetic() is marked
    assert marked.with_customer(None, "pro").synthetic


# -- OTEL_IMPACT_SYNTHETIC_HEADER --------------------------------------------------------------


def test_the_variable_is_known_and_parsed() -> None:
    assert "OTEL_IMPACT_SYNTHETIC_HEADER" in KNOWN_VARIABLES
    assert parse_synthetic_header("X-Synthetic") == ("x-synthetic", None)
    assert parse_synthetic_header(" X-Probe = datadog ") == ("x-probe", "datadog")
    settings, problems = ExtractionSettings.from_env({"OTEL_IMPACT_SYNTHETIC_HEADER": "X-Probe=yes"})
    assert problems == [] and settings.synthetic_rule == ("x-probe", "yes") and settings.has_source


@pytest.mark.parametrize(
    ("value", "explanation"),
    [
        ("X Synthetic", "is not an HTTP header name"),
        ("HTTP_X_SYNTHETIC", "WSGI form"),
        ("=true", "is not an HTTP header name"),
        ("X-Synthetic=", "the value after '=' is empty"),
        ("X-Synthetic=" + "v" * 300, "too long"),
        ("X-Synthetic=a\x00b", "not printable"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_fix(value: str, explanation: str) -> None:
    settings, problems = ExtractionSettings.from_env({"OTEL_IMPACT_SYNTHETIC_HEADER": value})
    assert settings.synthetic_header is None
    (problem,) = problems
    assert problem.setting == "OTEL_IMPACT_SYNTHETIC_HEADER"
    assert explanation in str(problem) and "Fix:" in str(problem) and "X-Synthetic" in problem.fix
    with pytest.raises(ConfigurationError, match="OTEL_IMPACT_SYNTHETIC_HEADER"):
        ExtractionSettings(synthetic_header=value)


@pytest.mark.parametrize(
    ("rule", "headers", "synthetic"),
    [
        ("X-Synthetic", {"HTTP_X_SYNTHETIC": ""}, True),
        ("x-synthetic", {"HTTP_X_SYNTHETIC": "anything"}, True),
        ("X-Synthetic", {}, False),
        ("X-Probe=datadog", {"HTTP_X_PROBE": " datadog "}, True),
        ("X-Probe=datadog", {"HTTP_X_PROBE": "Datadog"}, False),
        ("X-Probe=datadog", {}, False),
    ],
)
def test_presence_or_value_marks_a_request(rule: str, headers: dict[str, str], synthetic: bool) -> None:
    extractor, _ = RequestExtractor.from_settings(ExtractionSettings(synthetic_header=rule))
    assert extractor.active
    assert extractor.is_synthetic(WsgiRequest(headers, "flask")) is synthetic


@pytest.fixture
def flask_hooks(hash_key: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(auto, "_status", auto.AutoInstrumentationStatus(False, "not started"))
    yield
    undo_all()
    install_extractor(None)


@pytest.mark.usefixtures("flask_hooks")
@pytest.mark.parametrize("with_customer", [True, False])
def test_flask_marks_synthetic_requests_with_or_without_a_customer(
    provider: TracerProvider, exporter: InMemorySpanExporter, with_customer: bool
) -> None:
    otel_impact.configure(provider)
    sources: dict[str, str] = {"synthetic_header": "X-Synthetic=true"}
    if with_customer:
        sources["customer_header"] = "X-Customer-Id"
    extractor, problems = RequestExtractor.from_settings(ExtractionSettings(**sources))
    assert problems == []
    install_extractor(extractor)
    impact_flask.arm()
    instrumentor = FlaskInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        app = flask.Flask(__name__)

        @app.get("/work")
        def work() -> Any:
            with trace.get_tracer("app", tracer_provider=provider).start_as_current_span("inner"):
                pass
            return jsonify(baggage.get_baggage(wire.BAGGAGE_SYNTHETIC))

        client = app.test_client()
        headers = {"X-Customer-Id": CANARY_EMAIL}
        assert client.get("/work", headers={**headers, "X-Synthetic": "true"}).json == "true"
        assert client.get("/work", headers={**headers, "X-Synthetic": "no"}).json is None
        assert client.get("/work", headers=headers).json is None
    finally:
        instrumentor.uninstrument()
    servers = [s for s in exporter.get_finished_spans() if s.kind is trace.SpanKind.SERVER]
    inners = [s for s in exporter.get_finished_spans() if s.name == "inner"]
    assert [impact(s).get(wire.SYNTHETIC) for s in servers] == [True, None, None]
    assert [impact(s).get(wire.SYNTHETIC) for s in inners] == [True, None, None]
    if with_customer:
        assert impact(servers[0])["impact.customer.hash"] == pseudonym(CANARY_EMAIL)
