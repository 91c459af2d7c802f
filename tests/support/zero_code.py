"""Helpers for running test apps under ``opentelemetry-instrument`` and reading what they export."""

from __future__ import annotations

import os
import secrets
import sys
import time
from pathlib import Path

import jwt

from otel_impact import Pseudonymizer, load_hash_key
from support.canaries import TEST_KEY_HEX
from support.otlp_sink import OtlpSink, SpanRecord

APPS = Path(__file__).parent / "apps"
BIN = Path(sys.executable).parent
INSTRUMENT = [str(BIN / "opentelemetry-instrument"), sys.executable]
"""The command prefix: ``opentelemetry-instrument python <script>``."""

SERVER = 2  # OTLP span kinds
CLIENT = 3

_TEST_KEY = load_hash_key({"OTEL_IMPACT_HASH_KEY": TEST_KEY_HEX})
assert _TEST_KEY is not None
_PSEUDONYMIZER = Pseudonymizer(_TEST_KEY)


JWT_SECRET = "zero-code-tests-only-hmac-secret-32b"


def make_jwt(claims: dict[str, object]) -> str:
    """A real HS256 JWT (otel-impact reads the claims without verifying them)."""
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def pseudonym(customer_id: str | int) -> str:
    """The pseudonym the apps (all keyed with the test key) give ``customer_id``."""
    value = _PSEUDONYMIZER.pseudonymize(customer_id)
    assert value is not None
    return value


def app_env(sink: OtlpSink, service_name: str, *, grpc_export: bool = False, **extra: str) -> dict[str, str]:
    """A clean environment for an app under ``opentelemetry-instrument`` exporting to ``sink``.

    Nothing ``OTEL_*`` is inherited from the test process. The key is the test key; ``extra``
    adds or overrides variables (an empty string removes one).
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "DJANGO_"))}
    env.update(
        {
            "OTEL_SERVICE_NAME": service_name,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_IMPACT_HASH_KEY": TEST_KEY_HEX,
            "PYTHONPATH": str(APPS),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if grpc_export:
        env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "grpc"
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = sink.grpc_endpoint
    else:
        env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] = "http/protobuf"
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = sink.http_traces_url
    for key, value in extra.items():
        if value == "":
            env.pop(key, None)
        else:
            env[key] = value
    return env


def new_trace() -> tuple[dict[str, str], bytes]:
    """A ``traceparent`` header starting a fresh sampled trace, and that trace's id: each test
    request gets its own trace, so its spans can be told apart in a shared sink."""
    trace_id = secrets.token_bytes(16)
    header = f"00-{trace_id.hex()}-{secrets.token_bytes(8).hex()}-01"
    return {"traceparent": header}, trace_id


def trace_spans(sink: OtlpSink, trace_id: bytes, *, count: int, timeout: float = 15.0) -> list[SpanRecord]:
    """The spans of ``trace_id`` once at least ``count`` arrived (or what arrived by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        spans = [span for span in sink.spans() if span.trace_id == trace_id]
        if len(spans) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.05)


def by_service(spans: list[SpanRecord], service_name: str) -> list[SpanRecord]:
    return [span for span in spans if span.resource.get("service.name") == service_name]


def impact_attributes(span: SpanRecord) -> dict[str, object]:
    return {key: value for key, value in span.attributes.items() if key.startswith("impact.")}
