"""The OpenFeature hook with the real OpenFeature SDK, beside OpenFeature's own TracingHook, on the
real OTel SDK with the PII guard in the export path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openfeature import api
from openfeature.contrib.hook.opentelemetry import TracingHook
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider
from opentelemetry import baggage, propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.canaries import CANARY_EMAIL, CANARY_NUMBER, assert_no_canary
from support.zero_code import pseudonym

import otel_impact
from otel_impact.instrumentation.openfeature import ImpactFeatureFlagHook, register_global_hook

targeted_keys: list[str | None] = []


def _targeting(flag: InMemoryFlag[bool], context: EvaluationContext) -> FlagResolutionDetails[bool]:
    targeted_keys.append(context.targeting_key)
    if context.targeting_key == CANARY_EMAIL:
        return FlagResolutionDetails(value=True, variant="on", reason=Reason.TARGETING_MATCH)
    return FlagResolutionDetails(value=False, variant="off", reason=Reason.DEFAULT)


def _no_variant(value: Any) -> Any:
    def evaluate(flag: InMemoryFlag[Any], context: EvaluationContext) -> FlagResolutionDetails[Any]:
        return FlagResolutionDetails(value=value, reason=Reason.STATIC)

    return evaluate


FLAGS = {
    "new_checkout": InMemoryFlag("off", {"on": True, "off": False}, context_evaluator=_targeting),
    "dark_mode": InMemoryFlag("x", {"x": True}, context_evaluator=_no_variant(True)),
    "max_items": InMemoryFlag("x", {"x": 10}, context_evaluator=_no_variant(10)),
    "theme": InMemoryFlag("x", {"x": "blue"}, context_evaluator=_no_variant("blue")),
    "ratio": InMemoryFlag("x", {"x": 0.25}, context_evaluator=_no_variant(0.25)),
    "layout": InMemoryFlag("x", {"x": {"cols": 3}}, context_evaluator=_no_variant({"cols": 3})),
}


@pytest.fixture
def traced(hash_key: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    monkeypatch.setenv("OTEL_IMPACT_PII_ATTRIBUTES", "enduser.id")  # a custom list: the targeting key stays guarded
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel_impact.configure(provider)
    api.set_provider(InMemoryProvider(FLAGS))
    api.add_hooks([TracingHook(), ImpactFeatureFlagHook()])
    targeted_keys.clear()
    yield provider, exporter
    api.clear_hooks()
    api.clear_providers()


def test_each_evaluation_lands_on_the_span_and_in_baggage_with_a_pseudonymized_targeting_key(
    traced: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = traced
    tracer = provider.get_tracer("test")
    client = api.get_client()
    carrier: dict[str, str] = {}
    with tracer.start_as_current_span("request"):
        assert client.get_boolean_value("new_checkout", False, EvaluationContext(targeting_key=CANARY_EMAIL))
        with tracer.start_as_current_span("child"):
            propagate.inject(carrier)
            flags_in_baggage = baggage.get_baggage("impact.feature_flags")
    assert targeted_keys == [CANARY_EMAIL]  # the provider evaluated the real key
    request, child = sorted(exporter.get_finished_spans(), key=lambda s: s.name != "request")
    assert request.attributes["impact.feature_flags"] == ("new_checkout=on",)
    assert child.attributes["impact.feature_flags"] == ("new_checkout=on",)
    assert flags_in_baggage == "new_checkout=on"
    assert "impact.feature_flags=new_checkout%3Don" in carrier["baggage"]
    (event,) = [e for e in request.events if e.name == "feature_flag.evaluation"]
    assert event.attributes["feature_flag.result.variant"] == "on"
    assert event.attributes["feature_flag.context.id"] == pseudonym(CANARY_EMAIL)  # TracingHook's, guarded
    assert_no_canary(
        repr([(s.attributes, [e.attributes for e in s.events]) for s in (request, child)]).encode(), where="spans"
    )


@pytest.mark.parametrize(
    ("flag", "default", "recorded"),
    [
        ("dark_mode", False, "dark_mode=true"),
        ("max_items", 0, "max_items=10"),
        ("theme", "", "theme=blue"),
        ("ratio", 0.0, None),  # floats make poor segments: not recorded
        ("layout", {}, None),  # objects may hold data: not recorded
        ("missing_flag", False, "missing_flag=false"),  # error: the default the app received
    ],
)
def test_without_a_variant_the_value_stands_in_when_usable(
    traced: tuple[TracerProvider, InMemorySpanExporter], flag: str, default: Any, recorded: str | None
) -> None:
    provider, exporter = traced
    client = api.get_client()
    evaluate = {
        bool: client.get_boolean_value,
        int: client.get_integer_value,
        float: client.get_float_value,
        str: client.get_string_value,
        dict: client.get_object_value,
    }[type(default)]
    with provider.get_tracer("test").start_as_current_span("request"):
        evaluate(flag, default)
    (span,) = exporter.get_finished_spans()
    assert span.attributes.get("impact.feature_flags") == ((recorded,) if recorded else None)


def test_the_hook_never_raises_into_the_evaluation(traced: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = traced
    api.set_provider(InMemoryProvider({"bad=key": InMemoryFlag("on", {"on": True})}))
    with provider.get_tracer("test").start_as_current_span("request"):
        assert api.get_client().get_boolean_value("bad=key", False) is True
    (span,) = exporter.get_finished_spans()
    assert "impact.feature_flags" not in span.attributes


def test_numeric_targeting_keys_are_pseudonymized_too(traced: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    provider, exporter = traced
    with provider.get_tracer("test").start_as_current_span("request"):
        api.get_client().get_boolean_value("new_checkout", False, EvaluationContext(targeting_key=CANARY_NUMBER))
    (span,) = exporter.get_finished_spans()
    (event,) = span.events
    assert event.attributes["feature_flag.context.id"] == pseudonym(CANARY_NUMBER)


def test_global_registration_is_once() -> None:
    try:
        assert register_global_hook() is True
        assert register_global_hook() is False
        assert sum(isinstance(hook, ImpactFeatureFlagHook) for hook in api.get_hooks()) == 1
    finally:
        api.clear_hooks()
