"""The span pre-filter: parsing only the task spans of a request against parsing all of it, per span.

The request: 100 spans in one resource (8 attributes) and two scopes, every span with 10
attributes like an HTTP service's; one span in ten is a task event (it also carries
``impact.task.name``, ``impact.task.root`` and ``impact.task.value``). Cases, timed per span of
the whole request over the same requests, in interleaved rounds:

* **count_spans + parse_traces (whole request)**, the baseline: counting and parsing every span;
* **parse_traces + span_total (the pipeline today)**: what the pipeline does now when an analyzer
  is registered;
* **filter_spans + parse_traces(kept)**: the pre-filter keeps the task spans, the view parses those;
* **count_spans alone**, the baseline of the next: what forwarding alone costs;
* **filter_spans alone**: the pre-filter's own cost;
* **filter_spans (pure-Python fallback) + parse_traces**: what an install without the extension does.

Reported: each case's µs per span, and its ratio to its baseline as the minimum, median and
maximum over rounds of the paired (back-to-back) ratio. Needs the compiled extension
(``prefilter.NATIVE``); without it the filtered cases measure the fallback, and the summary says so.

Usage::

    python benchmarks/bench_prefilter.py [--quick] [--json FILE] [--rounds N]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from _harness import Case, measure, report, write_json
from _workload import _kv
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1 import trace_pb2

from otel_impact.proto import prefilter, view

SPANS = 100
TASK_EVERY = 10
KEY = b"impact.task.name"


def build_request(seed: int) -> bytes:
    """Request number ``seed``: 100 spans, one in ten a task event."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    for key, value in {
        "service.name": "shop",
        "service.version": "1.4.2",
        "cloud.region": "eu-west-1",
        "host.name": f"host-{seed % 7}",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": "1.45.2",
        "deployment.environment": "prod",
    }.items():
        resource_spans.resource.attributes.append(_kv(key, value))
    scopes = [resource_spans.scope_spans.add() for _ in range(2)]
    scopes[0].scope.name, scopes[1].scope.name = "opentelemetry.instrumentation.flask", "app"
    for i in range(SPANS):
        n = seed * SPANS + i
        attributes: dict[str, Any] = {
            "http.request.method": "POST",
            "http.route": "/api/checkout",
            "http.response.status_code": 200,
            "url.scheme": "https",
            "server.address": "shop.example.com",
            "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)",
            "impact.customer.hash": f"{n % 1000:032x}",
            "impact.customer.tier": "pro",
            "app.shard": "s-3",
            "app.cache.hit": n % 3 == 0,
        }
        if i % TASK_EVERY == 0:
            attributes |= {"impact.task.name": "checkout", "impact.task.root": True, "impact.task.value": 12.5}
        span = scopes[i % 2].spans.add(
            trace_id=n.to_bytes(16, "big"),
            span_id=(n + 1).to_bytes(8, "big"),
            parent_span_id=n.to_bytes(8, "big"),
            name="POST /api/checkout",
            kind=trace_pb2.Span.SPAN_KIND_SERVER,
            start_time_unix_nano=1_700_000_000_000_000_000 + n,
            end_time_unix_nano=1_700_000_000_020_000_000 + n,
        )
        span.attributes.extend(_kv(k, v) for k, v in attributes.items())
    return request.SerializeToString()  # type: ignore[no-any-return]


def whole(data: bytes) -> None:
    view.count_spans(data)
    view.parse_traces(data)


def today(data: bytes) -> None:
    view.span_total(view.parse_traces(data))


def filtered(data: bytes) -> None:
    _, kept = prefilter.filter_spans(data, KEY)
    view.parse_traces(kept)


def fallback(data: bytes) -> None:
    _, kept = prefilter._filter_spans_python(data, KEY)
    view.parse_traces(kept)


def cases(requests: list[bytes]) -> list[Case]:
    def looping(work: Callable[[bytes], object]) -> Callable[[int], None]:
        def run(spans: int) -> None:
            for index in range(spans // SPANS):
                work(requests[index % len(requests)])

        return run

    return [
        Case("count_spans + parse_traces (whole request)", looping(whole)),
        Case("parse_traces + span_total (the pipeline today)", looping(today)),
        Case("filter_spans + parse_traces(kept)", looping(filtered)),
        Case("filter_spans (pure-Python fallback) + parse_traces", looping(fallback)),
        Case("count_spans alone", looping(view.count_spans)),
        Case("filter_spans alone", looping(lambda data: prefilter.filter_spans(data, KEY))),
    ]


def ratio_spread(case: Case, base: Case) -> dict[str, float]:
    """Min, median and max over rounds of case/base, each pair timed back to back."""
    ratios = sorted(c / b for c, b in zip(case.samples_us, base.samples_us, strict=True))
    return {"min": round(ratios[0], 3), "median": round(ratios[len(ratios) // 2], 3), "max": round(ratios[-1], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few short rounds, to check that it runs")
    parser.add_argument("--json", help="write the summary here")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (at least 5 for the figures)")
    args = parser.parse_args()
    count, spans, rounds = (4, SPANS * 40, 3) if args.quick else (50, SPANS * 2_000, args.rounds)
    requests = [build_request(seed) for seed in range(count)]
    for data in requests:  # the filtered path sees exactly the task spans
        total, kept = prefilter.filter_spans(data, KEY)
        assert total == SPANS
        assert view.count_spans(kept) == (SPANS // TASK_EVERY if prefilter.NATIVE else SPANS)
    timed = cases(requests)
    measure(timed, operations=spans, rounds=rounds)
    by_name = {case.name: case for case in timed}
    whole_case, alone_base = by_name["count_spans + parse_traces (whole request)"], by_name["count_spans alone"]
    spreads = {
        case.name: ratio_spread(case, alone_base if case.name.endswith("alone") else whole_case) for case in timed
    }
    summary = report(
        f"Span pre-filter, µs per span ({SPANS}-span requests, 1 in {TASK_EVERY} a task span, 10 attributes)",
        timed,
        whole_case.name,
        extra={
            "native": prefilter.NATIVE,
            "bytes_per_span": round(sum(map(len, requests)) / (count * SPANS)),
            "ratios_min_median_max": spreads,
            "rounds": rounds,
        },
    )
    print(f"\nextension in use: {prefilter.NATIVE}; ratios over {rounds} paired rounds (min / median / max):\n")
    print("| case | baseline | min | median | max |")
    print("|---|---|---|---|---|")
    for name, spread in spreads.items():
        base = alone_base.name if name.endswith("alone") else whole_case.name
        print(f"| {name} | {base} | {spread['min']:.3f}× | {spread['median']:.3f}× | {spread['max']:.3f}× |")
    write_json(summary, args.json)


if __name__ == "__main__":
    main()
