"""OTLP/JSON intake against OTLP/protobuf intake of the same spans, per span.

The workload is `_workload`'s (512 spans of 12 attributes per request, the mixed kind), each
request also written as OTLP/JSON the way the collector writes it (hex ids, integer enums,
lowerCamelCase keys, 64-bit integers as strings). Cases, each timed per span over the same
requests, in interleaved rounds:

* **protobuf: parse (full OTLP classes)**, the baseline: ``ExportTraceServiceRequest.FromString``
  of the protobuf bytes, a full decode of every span (upb);
* **protobuf: parse (lean view)**: what the pipeline parses when an analyzer needs the spans;
* **json: json + ParseDict (before)**: the decoder as it was, ``json.loads`` then
  ``json_format.ParseDict`` and a serialization, kept here as the before figure;
* **json: orjson.loads alone**: parsing the JSON into Python objects and nothing more, for
  reference (no Python decoder can be faster);
* **json: Python walk**: the intake's decoder without its compiled fast path (``orjson``, a
  table-driven walk, one upb constructor call), JSON bytes to the same protobuf bytes, as
  installs without a C compiler run it;
* **json: json_to_protobuf (compiled)**: the intake's decoder as it runs where the compiled
  transcoder is built (left out, with a note, where it is not).

The JSON decoder's target is 5 times the baseline or less.

Usage::

    python benchmarks/bench_json_intake.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import time
from typing import Any

import orjson
from _harness import Case, measure, report, write_json
from _otlp_json import otlp_json_document
from _workload import BATCH, build_request
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_impact.processors.intake.otlp_json import (
    NATIVE_JSON,
    _json_to_protobuf_python,
    json_to_protobuf,
    try_compiled,
)
from otel_impact.proto import view

TARGET_RATIO = 5.0


def to_otlp_json(data: bytes) -> bytes:
    """``data`` (OTLP/protobuf) as OTLP/JSON bytes."""
    return orjson.dumps(otlp_json_document(data))


def before(body: bytes) -> bytes:
    """The decoder as it was (ids from hex to base64, then protobuf's ParseDict), for the before figure."""
    document = json.loads(body)
    for resource_spans in document.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                for node in (span, *span.get("links", ())):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if node.get(key):
                            node[key] = base64.b64encode(bytes.fromhex(node[key])).decode("ascii")
    request = ExportTraceServiceRequest()
    json_format.ParseDict(document, request, ignore_unknown_fields=True)
    return request.SerializeToString()  # type: ignore[no-any-return]


def cases(protobuf: list[bytes], otlp_json: list[bytes]) -> list[Case]:
    def looping(work: Any, data: list[bytes]) -> Any:
        def run(spans: int) -> None:
            for index in range(spans // BATCH):
                work(data[index % len(data)])

        return run

    return [
        Case("protobuf: parse (full OTLP classes)", looping(ExportTraceServiceRequest.FromString, protobuf)),
        Case("protobuf: parse (lean view)", looping(view.parse_traces, protobuf)),
        Case("json: json + ParseDict (before)", looping(before, otlp_json)),
        Case("json: orjson.loads alone", looping(orjson.loads, otlp_json)),
        Case("json: Python walk", looping(_json_to_protobuf_python, otlp_json)),
        *([Case("json: json_to_protobuf (compiled)", looping(json_to_protobuf, otlp_json))] if NATIVE_JSON else []),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few short rounds, to check that it runs")
    parser.add_argument("--json", help="write the summary here")
    args = parser.parse_args()
    requests, spans, rounds = (2, BATCH * 2, 3) if args.quick else (8, BATCH * 8, 15)
    end_ns = time.time_ns()
    protobuf = [build_request(seed, mix="mixed", end_ns=end_ns) for seed in range(requests)]
    otlp_json = [to_otlp_json(data) for data in protobuf]
    for data, body in zip(protobuf, otlp_json, strict=True):  # the same spans, the same bytes, either way
        assert _json_to_protobuf_python(body) == data
        assert try_compiled(body) == (data if NATIVE_JSON else None)  # the compiled side never declines here
    if not NATIVE_JSON:
        print("The compiled transcoder is not built (or OTEL_IMPACT_PURE_PYTHON=1): its case is left out.")
    timed = cases(protobuf, otlp_json)
    measure(timed, operations=spans, rounds=rounds)
    baseline = timed[0].name
    summary = report(
        "OTLP/JSON intake vs OTLP/protobuf parsing, µs per span (512-span requests, 12 attributes)",
        timed,
        baseline,
        extra={
            "target_ratio": TARGET_RATIO,
            "native_json": NATIVE_JSON,
            "json_bytes_per_span": round(sum(map(len, otlp_json)) / (requests * BATCH)),
            "protobuf_bytes_per_span": round(sum(map(len, protobuf)) / (requests * BATCH)),
        },
    )
    spread = {}
    for case in timed[3:]:  # the JSON decoders: how far the paired ratio moves between rounds
        ratios = [c / b for c, b in zip(case.samples_us, timed[0].samples_us, strict=True)]
        spread[case.name] = [round(min(ratios), 2), round(statistics.median(ratios), 2), round(max(ratios), 2)]
        print(
            f"{case.name}: ratio per round min {spread[case.name][0]}×, median {spread[case.name][1]}×, max "
            f"{spread[case.name][2]}× (target: {TARGET_RATIO}×)"
        )
    summary["ratio_per_round_min_median_max"] = spread
    write_json(summary, args.json)


if __name__ == "__main__":
    main()
