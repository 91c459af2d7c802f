"""A processor fed with a healthy release and a failing canary, for the on-call tool tests."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import otel_impact
from otel_impact import SdkSettings, load_hash_key
from support.canaries import TEST_KEY_HEX
from support.processor import Processor, get_json

CONFIG = """
sli:
  dimensions:
    - {name: tier, attribute: impact.customer.tier}
    - {name: version, attribute: service.version}
slos:
  - name: checkout-availability
    task: checkout
    by: [tier]
    objective: 99
    window: 30d
    team: payments
    runbook: https://runbooks.example.com/checkout
alerting:
  evaluation_interval: 1s
dashboard:
  refresh: 5s
  runbooks:
    checkout: https://runbooks.example.com/checkout-dashboard
"""
TIERS = ("free", "pro", "enterprise")
PER_VERSION = 450  # checkout tasks per release


def send_release(processor: Processor, version: str, fail_every: int | None) -> None:
    """Checkouts from ``version``; every ``fail_every``-th one fails (none when None)."""
    provider = TracerProvider(resource=Resource({"service.name": "checkout", "service.version": version}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=processor.grpc_endpoint, insecure=True)))
    key = load_hash_key({"OTEL_IMPACT_HASH_KEY": TEST_KEY_HEX})
    otel_impact.configure(provider, settings=SdkSettings(hash_key=key))
    tracer = provider.get_tracer("test")
    for i in range(PER_VERSION):
        with tracer.start_as_current_span("POST /checkout"):
            otel_impact.set_customer(f"customer-{version}-{i}", tier=TIERS[(i // 3) % 3])
            with otel_impact.user_task("checkout", value=10.0, tracer_provider=provider) as task:
                if fail_every is not None and i % fail_every == 0:
                    task.fail("payment_declined")
    assert provider.force_flush()
    provider.shutdown()


def send_canary_release(processor: Processor) -> None:
    """A healthy 1.4 and a 1.5 that fails a third of checkouts, waited for until every checkout is
    counted and the SLO engine has evaluated after the counts."""
    send_release(processor, "1.4", None)
    send_release(processor, "1.5", 3)
    processor.wait_for(
        lambda: get_json(processor, "/api/v1/impact?task=checkout&window=5m")["events"]["total"] == 2 * PER_VERSION,
        what="every checkout counted",
    )
    processor.wait_for(
        lambda: get_json(processor, "/api/v1/slos")["slos"][0]["segments"],
        what="the SLO evaluated after the counts",
    )
