"""The SLI engine's cost per span, against parsing the same bytes, in the same run; and its memory.

Each batch is one OTLP request of 512 spans with 12 attributes each from 3 tasks, with 3
segment dimensions (tier from a span attribute, region from the resource, a flag variant from
``impact.feature_flags``), varying independently: see ``_workload.py``. Two mixes:

* **mixed**: a quarter task roots (the events), half inherited task spans (attribution only,
  ``impact.task.root=false``), a quarter spans without a task;
* **all roots**: every span is a task event (the worst case).

Cases, each timed per span over the same pre-serialized batches:

* ``parse (lean view)``: ``view.parse_traces`` only, the baseline (the pipeline parses anyway);
* ``parse (full OTLP classes)``: ``ExportTraceServiceRequest.FromString``, for reference;
* ``parse + analyze``: the lean parse plus ``SliEngine.analyze`` (derive), per mix.

Memory: bytes per active series (every count and sketch bucket of every tier filled, as after
35 days of steady traffic) and the engine's memory after 1M distinct customers.

    python benchmarks/bench_sli.py [--quick] [--json FILE] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import time
from typing import Any

from _harness import Case, measure, report, write_json
from _workload import BATCH, MIXES, REGIONS, SLI_CONFIG, TIERS, build_request
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otel_impact.processors.batch import TraceBatch
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.shared.encode import FlushEncoder, SharedLayout
from otel_impact.processors.shared.keys import SharedKeys
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.aggregates import BatchArrays, PendingGroup
from otel_impact.processors.sli.deltas import DeltaBuffer
from otel_impact.proto import view

MINUTE = 60 * 10**9
T0 = 1_800_000_000 * 10**9 // MINUTE * MINUTE
RECEIVED = T0 + 5 * MINUTE
SPANS_END = RECEIVED - 20 * 10**9
"""Every span ends within one minute, 20 s before the batch arrives."""
CONFIG = SliConfig.from_mapping(SLI_CONFIG)
FLUSH_BATCHES = 400
"""Batches between two takes of the delta buffer: 2 s (the default flush) at about 100k spans/s."""


def per_span_cases(batches: dict[str, list[bytes]], engines: dict[str, SliEngine]) -> list[Case]:
    mixed = batches["mixed"]

    def looping(work: Any, data: list[bytes]) -> Any:
        def run(spans: int) -> None:
            for index in range(spans // BATCH):
                work(data[index % len(data)])

        return run

    def analyze(name: str) -> Any:
        engine = engines[name]

        def work(data: bytes) -> None:
            engine.analyze(TraceBatch(data, view.parse_traces(data), BATCH, RECEIVED, "grpc"))

        return work

    def analyze_sharing() -> Any:
        """The mixed case with shared state's delta recording and flush encoding (no Redis):
        what a replica pays in-process; deltas are taken and encoded every `FLUSH_BATCHES`."""
        engine = engines["sharing"]
        buffer = DeltaBuffer(1 << 30)
        engine.state.deltas = buffer
        encoder = FlushEncoder(SharedKeys("bench"), SharedLayout.of(CONFIG))
        done = [0]

        def work(data: bytes) -> None:
            engine.analyze(TraceBatch(data, view.parse_traces(data), BATCH, RECEIVED, "grpc"))
            done[0] += 1
            if done[0] % FLUSH_BATCHES == 0:
                for task, delta in buffer.take().items():
                    encoder.encode(task, delta)

        return work

    return [
        Case("parse (lean view)", looping(view.parse_traces, mixed)),
        Case("parse (full OTLP classes)", looping(ExportTraceServiceRequest.FromString, mixed)),
        Case("parse + analyze, mixed", looping(analyze("mixed"), mixed)),
        Case("parse + analyze, mixed, sharing deltas", looping(analyze_sharing(), mixed)),
        Case("parse + analyze, all roots", looping(analyze("all roots"), batches["all roots"])),
    ]


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bytes_per_active_series(series_count: int, users_per_cell: dict[int, int]) -> dict[str, float]:
    """Fill every bucket of every tier of ``series_count`` series, as 35 days of steady traffic would.

    ``users_per_cell`` gives the distinct users in each 1-minute, 1-hour and 1-day sketch cell.
    """
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(CONFIG, clock=clock)
    task = engine.tasks["checkout"]
    before = rss_bytes()
    for index in range(series_count):
        series = engine.new_series(task, (f"t{index}", "r", "on"), T0)
        for tier, slots in enumerate(engine.count_layout.slots):
            for slot in range(slots):
                series.counts._place(tier, slot + 10 * slots, series.cumulative + 1)
        for tier, slots in enumerate(engine.sketch_layout.slots):
            for slot in range(slots):
                cell = series.sketches._cell(tier, slot + 10 * slots)
                assert cell is not None
                users = [f"{index:08x}{tier:04x}{slot:04x}{u:016x}" for u in range(users_per_cell[tier])]
                cell.add([float(u % 500) for u in range(users_per_cell[tier])], users, {u: 1 for u in users[:5]}, {})
    measured = (rss_bytes() - before) / series_count
    approx = engine.approx_bytes() / series_count
    return {"rss_bytes_per_series": round(measured), "approx_bytes_per_series": round(approx)}


def memory_at_customers(customers: int) -> dict[str, float]:
    """Engine memory after ``customers`` distinct customers over one hour in 18 series of one task."""
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(CONFIG, clock=clock)
    task = engine.tasks["checkout"]
    segments = [(tier, region, variant) for tier in TIERS for region in REGIONS for variant in ("on", "off")]
    series_list = [engine.new_series(task, segment, T0) for segment in segments]
    before = rss_bytes()
    per_group = customers // (60 * len(series_list))
    next_customer = 0
    for minute in range(60):
        for series in series_list:
            users = {f"{c:032x}" for c in range(next_customer, next_customer + per_group)}
            next_customer += per_group
            bad = {u: 1 for u in list(users)[: per_group // 20]}
            durations = [20_000_000] * per_group
            group = PendingGroup(task, series, T0 // MINUTE + minute, bad=len(bad), durations_ns=durations)
            group.users, group.bad_users, group.top_keys = users, bad, bad
            series.fold(group, BatchArrays.of([group]), 0)
    return {
        "customers": next_customer,
        "series": len(series_list),
        "rss_bytes": rss_bytes() - before,
        "approx_bytes": engine.approx_bytes(),
    }


def measure_in_subprocess(kind: str, quick: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--measure-memory", kind, *(["--quick"] if quick else [])]
    output = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few short rounds, to check that it runs")
    parser.add_argument("--json", help="write the summary here")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of analyze (all roots)")
    parser.add_argument("--measure-memory", choices=["series", "customers"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_memory:  # in a fresh process, so RSS growth is this measurement's alone
        if args.measure_memory == "series":
            cells = {0: 5, 1: 200, 2: 2_000} if args.quick else {0: 50, 1: 2_500, 2: 20_000}
            result: dict[str, Any] = bytes_per_active_series(2 if args.quick else 20, cells)
            result["users_per_sketch_cell"] = cells
        else:
            result = memory_at_customers(20_000 if args.quick else 1_000_000)
        print(json.dumps(result))
        return
    spans, rounds = (BATCH * 8, 3) if args.quick else (BATCH * 200, 15)

    batches = {mix: [build_request(seed, mix=mix, end_ns=SPANS_END) for seed in range(24)] for mix in MIXES}
    engines = {name: SliEngine(CONFIG, clock=ManualClock(start_ns=T0)) for name in [*batches, "sharing"]}
    if args.profile:
        profiler = cProfile.Profile()
        engine = engines["all roots"]
        profiler.enable()
        for data in batches["all roots"] * 20:
            engine.analyze(TraceBatch(data, view.parse_traces(data), BATCH, RECEIVED, "grpc"))
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    cases = per_span_cases(batches, engines)
    measure(cases, operations=spans, rounds=rounds)
    base = cases[0].median_us
    derive = {case.name: round(case.median_us - base, 3) for case in cases[2:]}
    started = time.perf_counter()
    memory_series = measure_in_subprocess("series", args.quick)
    memory_customers = measure_in_subprocess("customers", args.quick)
    summary = report(
        "SLI engine cost per span (512-span batches, 3 tasks, 3 dimensions)",
        cases,
        "parse (lean view)",
        extra={
            "derive_us_per_span": derive,
            "memory_per_active_series": memory_series,
            "memory_at_customers": memory_customers,
        },
    )
    print(f"\nderive µs/span (parse+analyze minus parse): {derive}")
    print(f"bytes per active series (all tiers full): {memory_series}")
    print(f"memory after {memory_customers['customers']:,} distinct customers: {memory_customers}")
    print(f"(memory measured in {time.perf_counter() - started:.1f} s)")
    write_json(summary, args.json)


if __name__ == "__main__":
    main()
