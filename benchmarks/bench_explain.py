"""Explain: what tracking costs the analysis, how fast a window is explained, and its memory.

1. **Analysis with explain tracking on vs off**, per span, in the same run: ``parse + analyze``
   (`SliEngine.analyze` over the lean view) of the SLI workload (``_workload.py``: 512-span
   requests, 12 attributes per span, 8 resource attributes, 3 tasks, 3 dimensions, 1 event in 50
   failing), mixed and all-roots. The ratio reported is off/on throughput. The full path (gRPC
   receive, accounting, forwarding) costs more per span than this part of it and the same with
   explain on or off, so its on/off ratio is at least the analysis-only one.
2. **Query latency** of `explain_task` for a 1h and a 30d window, over 1M events with 40
   candidate attributes (2 to 9 values each, named in ``sli.explain.attributes``), 1 event in 50
   failing and one value over-represented among failures. The events are folded by the real
   `ExplainCollector.fold` and `ExplainTracking.apply` from parsed OTLP spans: once with all
   1M events in the last hour (the 1h window's worst case), once spread over 30 days (every
   bucket of every tier filled: the 30d window's worst case, and the memory figure).
3. **Memory per task** with every bucket filled (Python heap, tracemalloc), against the
   engine's own estimate (`TaskExplain.approx_bytes`).
4. With ``--full-path``: **the full path with explain on vs off**, two ``otel-impact serve``
   processes (one analysis worker each, the SLI config above, forwarding to a raw gRPC server)
   fed by the load generator of ``bench_forward.py``, measured in interleaved rounds: accepted
   spans/s of each, and the ratio on/off per round (median reported), mixed and all-roots; and
   serve's CPU per span (intake process plus analysis worker), off over on: the per-core
   capacity ratio, steadier than throughput on a shared machine.

    python benchmarks/bench_explain.py [--quick] [--full-path] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import tracemalloc
from typing import Any

from _harness import Case, measure, report, write_json
from _workload import BATCH, MIXES, SLI_CONFIG, build_request
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

from otel_impact.processors.batch import TraceBatch
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.explain import explain_task
from otel_impact.processors.sli.explain_tracking import ExplainCollector
from otel_impact.processors.sli.state import SliState
from otel_impact.proto import view

MINUTE = 60 * 10**9
T0 = 1_800_000_000 * 10**9 // MINUTE * MINUTE
RECEIVED = T0 + 5 * MINUTE
SPANS_END = RECEIVED - 20 * 10**9
ATTRIBUTES = tuple((f"bench.attr_{index}", 2 + index % 8) for index in range(40))
"""The 40 candidate attributes of the query benchmark: (key, number of values)."""
CAUSE = ("bench.attr_7", "v1")
"""The value over-represented among failures in the query benchmark."""


def analysis_cases(quick: bool) -> list[Case]:
    batches = {mix: [build_request(seed, mix=mix, end_ns=SPANS_END) for seed in range(24)] for mix in MIXES}
    off = SliConfig.from_mapping({**SLI_CONFIG, "explain": {"enabled": False}})
    on = SliConfig.from_mapping(SLI_CONFIG)

    def analyze(config: SliConfig, data: list[bytes]) -> Any:
        engine = SliEngine(config, clock=ManualClock(start_ns=T0))

        def run(spans: int) -> None:
            for index in range(spans // BATCH):
                raw = data[index % len(data)]
                engine.analyze(TraceBatch(raw, view.parse_traces(raw), BATCH, RECEIVED, "grpc"))

        return run

    cases = []
    for mix in MIXES:
        cases.append(Case(f"parse + analyze, {mix}, explain off", analyze(off, batches[mix])))
        cases.append(Case(f"parse + analyze, {mix}, explain on", analyze(on, batches[mix])))
    return cases


def query_requests(count: int, rng: random.Random) -> list[Any]:
    """Parsed requests of 512 task roots with the 40 candidate attributes (whether an event fails is
    drawn as it is folded: 8 % with `CAUSE`, 0.67 % without, about 2 % in all)."""
    parsed = []
    for _ in range(count):
        request = ExportTraceServiceRequest()
        resource = request.resource_spans.add()
        resource.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="shop")))
        spans = resource.scope_spans.add().spans
        for index in range(BATCH):
            values = {key: f"v{rng.randrange(size)}" for key, size in ATTRIBUTES}
            span = spans.add(name="checkout", kind=trace_pb2.Span.SPAN_KIND_SERVER)
            span.span_id = (index + 1).to_bytes(8, "big")
            attributes = {
                "impact.task.name": "checkout",
                "impact.customer.hash": f"{rng.randrange(10_000):032x}",
                **values,
            }
            span.attributes.extend(KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items())
        parsed.append(view.parse_traces(request.SerializeToString()))
    return parsed


class _Group:
    """What `ExplainCollector.fold` reads of the analyzer's pending groups."""

    def __init__(self, task: Any, minute: int, events: int, bad: int) -> None:
        self.task, self.minute, self.durations_ns, self.bad = task, minute, [0] * events, bad


def fill(
    state: SliState, parsed: list[Any], events: int, minutes: int, end_minute: int, rng: random.Random, stride: int = 1
) -> None:
    """Fold ``events`` task events, spread evenly over the ``minutes`` before ``end_minute``, in
    folds of at most one request (512 events) as the analyzer makes them; with ``stride``, only
    every ``stride``-th minute has events (a quick run)."""
    collector = ExplainCollector(state.config, lambda raw: view.decode_str(raw) or "")
    collector.random = rng.random
    task = state.ensure_task("checkout")
    spans = [span for request in parsed for span in request.resource_spans[0].scope_spans[0].spans]
    per_minute = max(1, events * stride // minutes)
    done = 0
    minute = end_minute - minutes
    cause_key, cause_value = CAUSE[0], AnyValue(string_value=CAUSE[1]).SerializeToString()
    while done < events:
        in_minute = min(per_minute, events - done)
        for first in range(0, in_minute, BATCH):  # one fold per analysed request, as in serve
            kept, bad_count, total = [], 0, min(BATCH, in_minute - first)
            rate = collector.rate  # as the hot loop reads it, once per analysed result
            for index in range(total):
                attrs = spans[(done + first + index) % len(spans)].attributes
                bad = rng.random() < (0.08 if attrs[cause_key] == cause_value else 0.02 / 3)
                bad_count += bad
                if bad or rng.random() < rate:
                    kept.append((task, minute, bad, attrs["impact.customer.hash"], attrs, ()))
            deltas = collector.fold(kept, iter([_Group(task, minute, total, bad_count)]))
            state.explain.apply(deltas, state.tasks.__contains__)
        done += in_minute
        minute += stride


def query_latency(events: int, quick: bool) -> dict[str, Any]:
    rng = random.Random(16)
    config = SliConfig.from_mapping(
        {"tasks": [{"name": "checkout"}], "explain": {"attributes": [key for key, _ in ATTRIBUTES]}}
    )
    parsed = query_requests(4 if quick else 16, rng)
    end_minute = (T0 + 40 * 86_400 * 10**9) // MINUTE
    end_ns = (end_minute + 1) * MINUTE
    out: dict[str, Any] = {"events": events, "candidate_attributes": len(ATTRIBUTES)}
    for label, minutes, window_s in (("1h", 60, 3600), ("30d", 30 * 1440, 30 * 86_400)):
        started = time.perf_counter()
        tracemalloc.start()
        state = SliState(config, now_ns=T0)
        fill(state, parsed, events, minutes, end_minute + 1, rng, 60 if quick and minutes > 60 else 1)
        heap = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        filled_s = time.perf_counter() - started
        timings, answer = [], None
        for _ in range(5 if quick else 20):
            start = time.perf_counter()
            answer = explain_task(state.explain, config.dimensions, "checkout", end_ns - window_s * 10**9, end_ns)
            timings.append((time.perf_counter() - start) * 1000)
        assert answer is not None
        tracked = state.explain.tasks["checkout"]
        out[label] = {
            "query_ms_median": round(statistics.median(timings), 2),
            "query_ms_max": round(max(timings), 2),
            "failing_events": answer.failing_events,
            "passing_events": answer.passing_events,
            "candidates_tested": answer.candidates_tested,
            "first_finding": None
            if not answer.findings
            else f"{answer.findings[0].attribute}={answer.findings[0].value}",
            "findings": len(answer.findings),
            "heap_bytes_per_task": heap,
            "approx_bytes_per_task": tracked.approx_bytes(),
            "columns": len(tracked.names),
            "fill_seconds": round(filled_s, 1),
        }
    return out


def full_path(quick: bool, rounds: int, duration: float) -> dict[str, Any]:
    """Spans/s of serve with explain on and off, interleaved rounds (see the module docstring)."""
    import bench_forward as forward  # noqa: PLC0415 (its roles run as bench_forward.py processes)

    processes: list[Any] = []
    targets = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for enabled in (False, True):
                downstream_port, downstream_pid = forward.start_raw_server(processes)
                sli = {**SLI_CONFIG, "explain": {"enabled": enabled}}
                config = (
                    f"sli: {json.dumps(sli)}\nanalysis: {{workers: 1}}\n"
                    f"exporters:\n  - endpoint: grpc://127.0.0.1:{downstream_port}\n    queue: {{}}\n"
                )
                port, pid, admin = forward.start_serve(config, scratch, processes)
                for mix in MIXES:
                    name = f"full path, {mix}, explain {'on' if enabled else 'off'}"
                    targets.append(forward.Target(name, port, pid, downstream_pid, mix=mix, admin_port=admin))
            warmup, requests = (0.4, 4) if quick else (1.5, 24)
            intake = forward.measure_rounds(targets, rounds, warmup, duration, requests)
    finally:
        forward.stop_processes(processes)
    out: dict[str, Any] = {}
    for mix in MIXES:
        off = next(t for t in targets if t.name == f"full path, {mix}, explain off")
        on = next(t for t in targets if t.name == f"full path, {mix}, explain on")
        per_round = [n / f for n, f in zip(on.spans_per_s, off.spans_per_s, strict=True)]
        cpu = [statistics.median(a) if a else 0.0 for a in (off.analysis_us, on.analysis_us)]
        total = [
            statistics.median(i + a for i, a in zip(intake[t.name], t.analysis_us, strict=True)) for t in (off, on)
        ]
        out[mix] = {
            "spans_per_s_off": round(statistics.median(off.spans_per_s)),
            "spans_per_s_on": round(statistics.median(on.spans_per_s)),
            "ratio_on_off_median": round(statistics.median(per_round), 3),
            "ratio_on_off_rounds": [round(r, 3) for r in per_round],
            "analysis_cpu_us_per_span_off_on": [round(c, 2) for c in cpu],
            "intake_cpu_us_per_span_off_on": [round(statistics.median(intake[t.name]), 2) for t in (off, on)],
            "serve_cpu_per_span_ratio_off_on": round(total[0] / total[1], 3),
            "unanalysed_share_on": round(statistics.median(on.unanalysed_share), 4),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few short rounds, to check that it runs")
    parser.add_argument("--json", help="write the summary here")
    parser.add_argument("--full-path", action="store_true", help="also measure serve with explain on vs off")
    parser.add_argument("--rounds", type=int, help="rounds of the full-path measurement (default 5)")
    parser.add_argument("--duration", type=float, help="seconds per full-path measurement (default 5)")
    args = parser.parse_args()

    served: dict[str, Any] = {}
    if args.full_path:
        served = full_path(
            args.quick, args.rounds or (1 if args.quick else 5), args.duration or (0.6 if args.quick else 5.0)
        )
        print(f"full path, explain on / off: {json.dumps(served, indent=1)}")
    spans, rounds = (BATCH * 8, 3) if args.quick else (BATCH * 200, 15)
    cases = analysis_cases(args.quick)
    measure(cases, operations=spans, rounds=rounds)
    ratios = {}
    for mix in MIXES:
        off = next(case for case in cases if case.name == f"parse + analyze, {mix}, explain off")
        on = next(case for case in cases if case.name == f"parse + analyze, {mix}, explain on")
        ratios[mix] = round(statistics.median(o / n for o, n in zip(off.samples_us, on.samples_us, strict=True)), 3)
    print(f"throughput with explain on / off (median of paired rounds): {ratios}", flush=True)
    queries = query_latency(20_000 if args.quick else 1_000_000, args.quick)
    summary = report(
        "Explain tracking: parse + analyze per span, on vs off (512-span batches, 3 tasks, 3 dimensions)",
        cases,
        "parse + analyze, mixed, explain off",
        extra={"throughput_on_vs_off": ratios, "query": queries, **({"full_path": served} if args.full_path else {})},
    )
    print(f"explain queries: {queries}")
    print(f"load average (1, 5, 15 min): {[round(v, 2) for v in os.getloadavg()]}")
    write_json(summary, args.json)


if __name__ == "__main__":
    main()
