"""Memory stays flat when every attacker-controlled value of task spans is 1 MB.

``serve`` runs with the SLI engine (a tier dimension and a flag dimension); ~1,200 requests each
carry one task span whose customer hash, task name, ``service.name``, HTTP status (as a
string), status message, tier, ``impact.feature_flags`` variant or flag-event variant is a
distinct 1 MB value. The processor's RSS (``VmRSS``, with its analysis workers') must stay within `MAX_GROWTH_MB` of its
warmed-up baseline, and the oversized values must be counted. Loopback only; well under 60 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from support.processor import EXPORT_METHOD, Processor, serve

CONFIG = """\
sli:
  dimensions:
    - {name: tier, attribute: impact.customer.tier}
    - {name: new_checkout, flag: new_checkout}
  tasks:
    - {name: checkout, value: 1000, success: {http_bad: [5xx]}}
"""
REQUESTS = 1_200
VALUE_BYTES = 1 << 20
MAX_GROWTH_MB = 200
T_END = time.time_ns()


def tree_rss_mb(pid: int) -> float:
    """Memory of the processor and its child processes (its analysis workers), as the sum of
    their proportional set sizes: pages they share (the analysis ring) count once."""
    children = [
        int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()
    ]
    return sum(pss_mb(each) for each in (pid, *children))


def pss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no Pss")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def huge(index: int) -> str:
    """A distinct 1 MB value (distinct, so that no cache could serve it twice)."""
    head = f"{index:08d}-"
    return head + "x" * (VALUE_BYTES - len(head))


POSITIONS = (
    "customer hash",
    "task name",
    "service.name",
    "http status as string",
    "status message",
    "tier",
    "impact.feature_flags variant",
    "flag event variant",
)


def attack_request(index: int) -> bytes:
    """One failing task span with one attacker-controlled value at 1 MB, chosen by ``index``."""
    position = POSITIONS[index % len(POSITIONS)]
    value = huge(index)
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    service = value if position == "service.name" else "checkout-api"
    resource_spans.resource.attributes.add(key="service.name", value=AnyValue(string_value=service))
    span = resource_spans.scope_spans.add().spans.add(
        trace_id=index.to_bytes(16, "big"),
        span_id=(index + 1).to_bytes(8, "big"),
        name="POST /checkout",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=T_END - 50_000_000,
        end_time_unix_nano=T_END,
    )
    if position == "status message":
        span.status.code = Status.STATUS_CODE_ERROR
        span.status.message = value
    strings = {
        "impact.task.name": value if position == "task name" else "checkout",
        "impact.customer.tier": value if position == "tier" else "pro",
        "impact.customer.hash": value if position == "customer hash" else "0" * 32,
        "http.response.status_code": value if position == "http status as string" else "503",
    }
    for key, text in strings.items():
        span.attributes.add(key=key, value=AnyValue(string_value=text))
    flags = AnyValue()
    variant = value if position == "impact.feature_flags variant" else "on"
    flags.array_value.values.add(string_value=f"new_checkout={variant}")
    if position == "flag event variant":
        event = span.events.add(name="feature_flag.evaluation", time_unix_nano=T_END)
        event.attributes.add(key="feature_flag.key", value=AnyValue(string_value="new_checkout"))
        event.attributes.add(key="feature_flag.result.variant", value=AnyValue(string_value=value))
    else:
        span.attributes.add(key="impact.feature_flags", value=flags)
    return request.SerializeToString()  # type: ignore[no-any-return]


def normal_requests(count: int) -> Iterator[bytes]:
    for index in range(count):
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.add(key="service.name", value=AnyValue(string_value="checkout-api"))
        span = resource_spans.scope_spans.add().spans.add(
            trace_id=(10**6 + index).to_bytes(16, "big"),
            span_id=(index + 1).to_bytes(8, "big"),
            name="POST /checkout",
            start_time_unix_nano=T_END - 50_000_000,
            end_time_unix_nano=T_END,
        )
        span.attributes.add(key="impact.task.name", value=AnyValue(string_value="checkout"))
        span.attributes.add(key="impact.customer.tier", value=AnyValue(string_value="free"))
        yield request.SerializeToString()


def send(processor: Processor, bodies: Iterator[bytes]) -> int:
    options = [("grpc.max_send_message_length", -1)]
    sent = 0
    with grpc.insecure_channel(f"127.0.0.1:{processor.ports['otlp_grpc']}", options=options) as channel:
        export = channel.unary_unary(EXPORT_METHOD)
        for body in bodies:
            export(body, timeout=10)
            sent += 1
    return sent


def test_rss_stays_flat_under_1mb_values_in_every_attacker_controlled_attribute() -> None:
    started = time.monotonic()
    with serve(config=CONFIG) as processor:
        pid = processor.process.pid
        send(processor, normal_requests(200))  # warm up: imports, caches, allocator arenas
        processor.metric_sum("otel_impact_receiver_spans_total")  # an admin answer waits for analysis to catch up
        baseline = tree_rss_mb(pid)
        sent = send(processor, (attack_request(index) for index in range(REQUESTS)))
        processor.metric_sum("otel_impact_receiver_spans_total")
        time.sleep(0.5)
        after = tree_rss_mb(pid)
        growth = after - baseline
        print(
            f"memory (PSS, with the analysis workers) baseline {baseline:.0f} MB, "
            f"after {REQUESTS} attack requests {after:.0f} MB (+{growth:.0f} MB)"
        )
        assert sent == REQUESTS
        assert processor.metric_sum("otel_impact_receiver_spans_total", outcome="accepted") == 200 + REQUESTS
        for kind in ("task_name", "resource", "status", "http_status", "user", "label"):
            counted = processor.metric_sum(
                "otel_impact_analyzer_values_total", analyzer="sli", kind=f"oversized_{kind}"
            )
            assert counted > 0, kind
        assert growth < MAX_GROWTH_MB, f"RSS grew by {growth:.0f} MB under the attack (baseline {baseline:.0f} MB)"
    assert time.monotonic() - started < 60
