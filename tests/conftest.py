"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import propagate
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.canaries import TEST_KEY_HEX

from otel_impact import _log, _runtime


@pytest.fixture(autouse=True)
def clean_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts from the environment it sets, with a fresh runtime and propagator."""
    for name in (
        "OTEL_IMPACT_HASH_KEY",
        "OTEL_IMPACT_HASH_KEY_FILE",
        "OTEL_IMPACT_HASH_ALGORITHM",
        "OTEL_IMPACT_TRUST_INCOMING_BAGGAGE",
        "OTEL_IMPACT_PII_ATTRIBUTES",
        "OTEL_IMPACT_HASH_MEMO_SIZE",
    ):
        monkeypatch.delenv(name, raising=False)
    saved_propagator = propagate.get_global_textmap()
    _runtime.reset_runtime()
    _log.forget_logged()
    yield
    propagate.set_global_textmap(saved_propagator)
    _runtime.reset_runtime()


@pytest.fixture
def hash_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OTEL_IMPACT_HASH_KEY", TEST_KEY_HEX)
    return TEST_KEY_HEX


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """An SDK provider exporting to memory; not installed globally."""
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": "test"}))
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider
