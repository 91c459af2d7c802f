"""A tiny service that handles three requests and prints the spans it would export.

Run it with ``python examples/quickstart.py``; it needs only the SDK install. Each span shows the
impact attributes otel-impact stamped on it: the customer's keyed pseudonym (the raw account IDs
below never appear), tier, flags and task.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import otel_impact

if not (os.environ.get("OTEL_IMPACT_HASH_KEY") or os.environ.get("OTEL_IMPACT_HASH_KEY_FILE")):
    # A throw-away key for this run only. Services that must agree on pseudonyms share one key.
    os.environ["OTEL_IMPACT_HASH_KEY"] = secrets.token_hex(32)
    print("(no OTEL_IMPACT_HASH_KEY set: using a random key for this run)\n")


class PrintExporter(SpanExporter):
    """Prints each span on one line with its impact attributes."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            impact = {k: v for k, v in (span.attributes or {}).items() if k.startswith("impact.") or k == "enduser.id"}
            shown = "  ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in impact.items())
            print(f"{span.name:<22} {shown}")
        sys.stdout.flush()
        return SpanExportResult.SUCCESS


provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
provider.add_span_processor(SimpleSpanProcessor(PrintExporter()))
trace.set_tracer_provider(provider)
otel_impact.configure()  # the two lines that enable otel-impact

tracer = trace.get_tracer("example")
print(f"key id on the resource: {otel_impact.impact_resource().attributes.get('impact.hash.key_id')}\n")


def handle_checkout(account_id: str, tier: str, variant: str, total: float, fail: bool) -> None:
    with tracer.start_as_current_span("POST /checkout", kind=trace.SpanKind.SERVER) as server_span:
        server_span.set_attribute("enduser.id", account_id)  # a raw ID set by other code: the guard rewrites it
        otel_impact.set_customer(account_id, tier=tier)
        otel_impact.set_feature_flag("new_checkout", variant)
        try:
            with otel_impact.user_task("checkout", value=total):
                with tracer.start_as_current_span("charge card"):
                    if fail:
                        raise RuntimeError("card declined")
        except RuntimeError:
            server_span.set_attribute("http.response.status_code", 502)


for account, tier, variant, total, fail in [
    ("alice@example.com", "enterprise", "off", 120.0, False),
    ("42", "pro", "on", 30.5, True),
    ("Zoë Ωmega", "free", "on", 9.99, False),
]:
    handle_checkout(account, tier, variant, total, fail)
    print()
