"""The trace workload of the SLI and full-path benchmarks: OTLP requests of task spans.

Each request has one resource (8 attributes, ``cloud.region`` among them) and 512 spans with
12 attributes each, like a busy HTTP service's. Spans belong to 3 tasks (checkout, search,
login) and carry the 3 segment dimensions the benchmarks configure (`SLI_CONFIG`): the tier
(a span attribute), the region (from the resource) and the ``new_ranker`` flag variant (from
``impact.feature_flags``). Task, tier and variant vary independently from span to span, so a
request touches every (task, tier, variant) series: 18 per request, the region being one per
request. 10,000 distinct customers; one task execution in 50 fails (HTTP 500, status ERROR).
The spans of one execution share a random-looking trace id (as real ones are: the trace-sampled
pass of ``sli.propagation`` reads it) and are children of its first span.

Mixes (``kind`` of span ``i``):

* **mixed**: per 4 spans, one task root (the event), two inherited task spans
  (``impact.task.root=false``: attribution only) and one span without a task. A task execution
  of three spans (its server span, a database call, a downstream call) among a quarter of other
  traffic. Real traces usually have more child spans per root, which makes events rarer and
  the analysis cheaper per span: this mix is on the heavy side on purpose.
* **all roots**: every span is a task root (the worst case: every span is an event).
"""

from __future__ import annotations

import hashlib
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

BATCH = 512
TASKS = ("checkout", "search", "login")
TIERS = ("free", "pro", "enterprise")
REGIONS = ("eu-west-1", "us-east-1", "ap-south-1")
VARIANTS = ("off", "on")
CUSTOMERS = 10_000
MIXES = ("mixed", "all roots")

SLI_CONFIG: dict[str, Any] = {
    "dimensions": [
        {"name": "tier", "attribute": "impact.customer.tier"},
        {"name": "region", "attribute": "cloud.region"},
        {"name": "new_ranker", "flag": "new_ranker"},
    ],
    "tasks": [{"name": name, "latency_thresholds": ["300ms", "1s"]} for name in TASKS],
}
"""The ``sli:`` section both benchmarks use: 3 tasks, 3 dimensions."""


def _kv(key: str, value: Any) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        items = [AnyValue(string_value=v) for v in value]
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=items)))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def build_request(seed: int, *, mix: str, end_ns: int, customers: int = CUSTOMERS) -> bytes:
    """Request number ``seed`` of ``mix``; its spans end within the second before ``end_ns`` and
    last 20 to 420 ms. Executions cycle through ``customers`` distinct customers."""
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}, not {mix!r}")
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    for key, value in {
        "service.name": "shop",
        "service.version": "1.4.2",
        "cloud.region": REGIONS[seed % len(REGIONS)],
        "host.name": f"host-{seed % 7}",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": "1.45.2",
        "deployment.environment": "prod",
    }.items():
        resource_spans.resource.attributes.append(_kv(key, value))
    spans = resource_spans.scope_spans.add().spans
    for i in range(BATCH):
        n = seed * BATCH + i
        kind = 0 if mix == "all roots" else i % 4  # 0: task root, 1-2: inherited task span, 3: no task
        execution = n if mix == "all roots" else n // 4  # the spans of one execution share task and customer
        customer = hashlib.md5(str(execution % customers).encode()).hexdigest()
        status = 500 if execution % 50 == 0 else 200
        attributes: dict[str, Any] = {
            "http.request.method": "POST",
            "http.route": "/api/checkout",
            "http.response.status_code": status,
            "url.scheme": "https",
            "server.address": "shop.example.com",
            "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)",
            "impact.customer.hash": customer,
            "impact.customer.tier": TIERS[(execution // 3) % 3],
            "impact.feature_flags": [f"new_ranker={VARIANTS[(execution // 9) % 2]}"],
        }
        if kind < 3:
            attributes["impact.task.name"] = TASKS[execution % 3]
            attributes["impact.task.root"] = kind == 0
            attributes["impact.task.value"] = 12.5
        else:
            attributes["app.request.tokens"] = 812
            attributes["app.cache.hit"] = True
            attributes["app.shard"] = "s-3"
        root = n - kind  # the execution's first span
        span = spans.add(
            # random-looking like real ids (the trace-sampled pass reads them), one per execution
            trace_id=hashlib.md5(b"trace %d" % execution).digest(),
            span_id=(n + 1).to_bytes(8, "big"),
            parent_span_id=(root + 1).to_bytes(8, "big") if n != root else b"",
            name="POST /api/checkout",
            kind=trace_pb2.Span.SPAN_KIND_SERVER,
            start_time_unix_nano=end_ns - (n % 1000 + 20 + n % 400) * 1_000_000,
            end_time_unix_nano=end_ns - (n % 1000) * 1_000_000,
        )
        span.attributes.extend(_kv(k, v) for k, v in attributes.items())
        if status == 500:
            span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
    return request.SerializeToString()  # type: ignore[no-any-return]
