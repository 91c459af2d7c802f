"""Broken propagation per service edge (``sli.propagation``): its cost on the full path, and its memory.

1. **Full path, feature on vs off, same run.** Three ``otel-impact serve`` processes, identical
   (SLI engine with 3 tasks and 3 dimensions, one analysis worker, forwarding to a raw gRPC
   server of their own) but for ``sli.propagation``: off, on at the default ``trace_sample``
   (1/16), and on at 1.0 (every trace: the worst case). They are fed the realistic mix of
   ``_workload.py`` by ``bench_forward.py``'s load generator in interleaved rounds; reported:
   accepted spans/s, intake and analysis-worker CPU per span, each as the median of per-round
   ratios to the off case.
2. **The analysis alone, in this process.** ``SliAnalyzer.results`` over pre-filtered requests
   of the same mix, on vs off (the worker's work, without the processes around it).
3. **Memory of the propagation map at its bound.** An ``EdgeTracker`` fed span ids until both its
   maps are full (children whose parents never come fill the pending map too), at the default
   ``max_spans`` and at ten times it: bytes held (tracemalloc) per span id at the bound.

    python benchmarks/bench_propagation.py [--quick] [--json FILE] [--rounds N] [--duration S]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from typing import Any

import bench_forward as forward
from _harness import Case, measure, report, write_json
from _workload import BATCH, SLI_CONFIG, build_request

from otel_impact.processors.batch import TraceBatch
from otel_impact.processors.sli.analyzer import SliAnalyzer
from otel_impact.processors.sli.config import SliConfig
from otel_impact.processors.sli.propagation import EdgeTracker, PropagationConfig
from otel_impact.processors.sli.state import SliState
from otel_impact.proto import view

SETTINGS = {
    "propagation off": {"enabled": False},
    "propagation on (1/16 of traces)": {"enabled": True},
    "propagation on (every trace)": {"enabled": True, "trace_sample": 1.0},
}


def full_path(rounds: int, warmup: float, duration: float, requests: int) -> dict[str, Any]:
    processes: list[subprocess.Popen[str]] = []
    targets: list[forward.Target] = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            for name, propagation in SETTINGS.items():
                downstream_port, downstream_pid = forward.start_raw_server(processes)
                sli = json.dumps({**SLI_CONFIG, "propagation": propagation})
                config = (
                    f"sli: {sli}\nanalysis: {{workers: 1}}\n"
                    f"exporters:\n  - endpoint: grpc://127.0.0.1:{downstream_port}\n"
                )
                port, pid, admin = forward.start_serve(config, scratch, processes)
                targets.append(forward.Target(name, port, pid, downstream_pid, admin_port=admin))
            intake = forward.measure_rounds(targets, rounds, warmup, duration, requests)
            cases = [Case(t.name, lambda n: None, intake[t.name]) for t in targets]
            counts = [forward.sli_counters(t.admin_port) for t in targets if t.admin_port is not None]
    finally:
        forward.stop_processes(processes)
    for counted in counts:
        if not counted["events"] or counted["analysis_errors"] or counted["analyzer_errors"]:
            raise SystemExit(f"the SLI engine did not analyze the load as expected: {counted}")
    base = targets[0]
    rows = []
    print("\nFull path, 512-span requests of the mixed workload over gRPC, one analysis worker\n")
    print("| case | spans/s (median) | throughput vs off (min / median / max of rounds) "
          "| intake CPU µs/span | analysis CPU µs/span | analysis CPU vs off | unanalysed |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for target, case in zip(targets, cases, strict=True):
        ratios = [t / b for t, b in zip(target.spans_per_s, base.spans_per_s, strict=True)]
        analysis = [t / b for t, b in zip(target.analysis_us, base.analysis_us, strict=True) if b > 0]
        row = {
            "case": target.name,
            "spans_per_s": round(statistics.median(target.spans_per_s)),
            "throughput_vs_off": round(statistics.median(ratios), 3),
            "throughput_vs_off_min": round(min(ratios), 3),
            "throughput_vs_off_max": round(max(ratios), 3),
            "intake_cpu_us_per_span": round(case.median_us, 3),
            "analysis_cpu_us_per_span": round(statistics.median(target.analysis_us), 3),
            "analysis_cpu_vs_off": round(statistics.median(analysis), 3) if analysis else None,
            "unanalysed_share": round(statistics.median(target.unanalysed_share), 4),
        }
        rows.append(row)
        print(
            f"| {row['case']} | {row['spans_per_s']:,} | {row['throughput_vs_off_min']:.2f} / "
            f"**{row['throughput_vs_off']:.2f}** / {row['throughput_vs_off_max']:.2f}× "
            f"| {row['intake_cpu_us_per_span']:.2f} | {row['analysis_cpu_us_per_span']:.2f} "
            f"| {row['analysis_cpu_vs_off'] or 0:.2f}× | {row['unanalysed_share']:.1%} |"
        )
    return {"full_path": rows}


def analysis_alone(rounds: int) -> dict[str, Any]:
    end_ns = time.time_ns() - 10**9
    payloads = [build_request(seed, mix="mixed", end_ns=end_ns) for seed in range(16)]
    cases = []
    for name, propagation in SETTINGS.items():
        config = SliConfig.from_mapping({**SLI_CONFIG, "propagation": propagation})
        analyzer = SliAnalyzer(SliState(config, now_ns=end_ns))
        selected = [analyzer.select(data) for data in payloads]

        def run(n: int, analyzer: SliAnalyzer = analyzer, selected: list[bytes] = selected) -> None:
            for index in range(n // BATCH):
                data = selected[index % len(selected)]
                received = time.time_ns()
                batch = TraceBatch(b"", view.parse_traces(data), BATCH, received, "bench")
                analyzer.results((batch,))

        cases.append(Case(name, run))
    measure(cases, operations=BATCH * 32, rounds=rounds)
    return report(
        "Analysis alone (parse of the pre-filtered request + SliAnalyzer.results), µs per span", cases, cases[0].name
    )


class _Span:
    __slots__ = ("parent_span_id", "span_id", "trace_id")

    def __init__(self, trace_id: bytes, span_id: bytes, parent: bytes) -> None:
        self.trace_id, self.span_id, self.parent_span_id = trace_id, span_id, parent


def memory_at_bound(max_spans: int) -> dict[str, Any]:
    """Bytes an `EdgeTracker` holds with both maps full (tracemalloc, after the fill)."""
    rng = random.Random(7)
    with_customer = {"impact.customer.hash": b"\x0a\x20" + b"a" * 32, "impact.task.name": b"\x0a\x08checkout"}
    services = [f"service-{n}" for n in range(20)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracker = EdgeTracker(PropagationConfig(trace_sample=1.0, max_spans=max_spans), "impact.customer.hash")
    now = time.time_ns()
    for n in range(3 * max_spans):  # parents that never come: the pending map fills as well
        span = _Span(rng.randbytes(16), rng.randbytes(8), rng.randbytes(8))
        tracker.see(span, with_customer, services[n % len(services)], now)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    spans, pending = tracker.held()
    return {
        "max_spans": max_spans,
        "span_ids_held": spans,
        "parents_waiting": pending,
        "bytes": held,
        "bytes_per_span_id": round(held / max(spans, 1), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short rounds, to check that it runs")
    parser.add_argument("--json", help="write the summary here")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--skip-full-path", action="store_true", help="only the in-process parts")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 5)
    duration = args.duration or (0.6 if args.quick else 5.0)
    load_before = [round(v, 2) for v in os.getloadavg()]
    summary = analysis_alone(3 if args.quick else 15)
    bounds = [memory_at_bound(size) for size in ((2_000,) if args.quick else (50_000, 500_000))]
    print("\nMemory of the propagation map at its bound (tracemalloc)\n")
    print("| max_spans | span ids held | parents waiting | MiB held | bytes per span id |")
    print("|---|---|---|---|---|")
    for row in bounds:
        print(
            f"| {row['max_spans']:,} | {row['span_ids_held']:,} | {row['parents_waiting']:,} "
            f"| {row['bytes'] / 2**20:.1f} | {row['bytes_per_span_id']:.0f} |"
        )
    summary["memory_at_bound"] = bounds
    if not args.skip_full_path:
        warmup = 0.4 if args.quick else 1.5
        summary.update(full_path(rounds, warmup, duration, 4 if args.quick else 24))
    summary["load_average"] = {"before": load_before, "after": [round(v, 2) for v in os.getloadavg()]}
    print(f"\nload average (1, 5, 15 min) before {load_before}, after {summary['load_average']['after']}")
    write_json(summary, args.json)


if __name__ == "__main__":
    main()
