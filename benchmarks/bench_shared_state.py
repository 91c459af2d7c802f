"""Shared state through Redis: what it costs the full path, how fast a 30-day answer is, and
how much Redis memory it takes.

1. **Full path, shared state on vs off.** Two ``otel-impact serve`` processes with the SLI
   engine on (3 tasks, 3 dimensions), each forwarding to its own raw downstream, one of them
   with ``--shared-state`` to a Redis started here; the same load generator as
   ``bench_forward.py`` (512-span requests, the realistic mix), in interleaved rounds. Reported:
   spans/s and server CPU µs per span of each, and their ratio (target at least 0.9 of off).
2. **A 30-day impact query over 200 segments.** Redis is filled through the real flush path
   (`FlushEncoder` and the apply script) with 200 series (tier x region x variant values) of
   one task over 30 days, an hourly flush per series, then `SharedQueries.impact` over 30 days
   is timed (target < 200 ms), against `SharedQueries.counts` alone. For the choice of distinct
   counts: the same answer from serialized DataSketches HLLs would merge one sketch per
   replica, segment and day at query time; the cost of merging 200 x 31 x 50 of them in-process
   (50 replicas; the transfer from Redis not counted) is measured beside it.
3. **Redis memory.** ``used_memory`` after (2), per series; then 1M customers spread over the
   200 series and 30 days (each active on 3 days), per customer.

    python benchmarks/bench_shared_state.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import datasketches as ds
import numpy as np
import redis
from _harness import Case, report, write_json
from bench_forward import Target, measure, serve_config, start_raw_server, start_serve, stop_processes

from otel_impact.processors.clock import ManualClock
from otel_impact.processors.durations import MINUTE_NS, SECOND_NS
from otel_impact.processors.shared.connection import SharedConnection
from otel_impact.processors.shared.encode import FlushEncoder, SharedLayout
from otel_impact.processors.shared.flush import SharedWriter
from otel_impact.processors.shared.keys import SharedKeys
from otel_impact.processors.shared.reader import SharedQueries
from otel_impact.processors.shared.settings import parse_redis_url
from otel_impact.processors.sli.config import SliConfig
from otel_impact.processors.sli.deltas import DeltaBuffer

DAY_NS = 86_400 * SECOND_NS
CONFIG = {
    "dimensions": [
        {"name": "tier", "attribute": "impact.customer.tier"},
        {"name": "region", "attribute": "cloud.region"},
        {"name": "variant", "flag": "new_ranker"},
    ],
    "tasks": [{"name": "checkout", "latency_thresholds": ["300ms", "1s"]}],
}


def start_redis(scratch: str, processes: list[subprocess.Popen[str]]) -> str:
    port = _free_port()
    process = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", scratch],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    processes.append(process)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            client.ping()
            return f"redis://127.0.0.1:{port}"
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- 1. full path -----------------------------------------------------------------------------------


def full_path(scratch: str, url: str, rounds: int, duration: float, warmup: float, requests: int) -> dict[str, Any]:
    processes: list[subprocess.Popen[str]] = []
    try:
        targets = []
        for name, extra in (
            ("full path, shared state off", ()),
            ("full path, shared state on", ("--shared-state", url)),
        ):
            downstream_port, downstream_pid = start_raw_server(processes)
            port, pid, admin = start_serve(
                serve_config(downstream_port, sli=True), scratch, processes, extra_args=extra
            )
            targets.append(Target(name, port, pid, downstream_pid, admin_port=admin))
        cases = [Case(t.name, lambda n: None) for t in targets]
        client = redis.Redis.from_url(url)
        redis_us: list[float] = []
        for _ in range(rounds):
            for index, (target, case) in enumerate(zip(targets, cases, strict=True)):
                before = _redis_cpu(client)
                case.samples_us.append(measure(target, warmup, duration, requests))
                if index == 1:  # Redis's own CPU per span while the shared-state case ran
                    spans = target.spans_per_s[-1] * duration
                    redis_us.append((_redis_cpu(client) - before) * 1e6 / max(spans, 1.0))
    finally:
        stop_processes(processes)
    summary = report("Full path, server CPU µs per span (shared state on vs off)", cases, cases[0].name)
    rates = [statistics.median(t.spans_per_s) for t in targets]
    paired = [on / off for off, on in zip(targets[0].spans_per_s, targets[1].spans_per_s, strict=True)]
    summary["throughput"] = {
        "off_spans_per_s": round(rates[0]),
        "on_spans_per_s": round(rates[1]),
        "ratio_median": round(statistics.median(paired), 3),
        "ratio_min": round(min(paired), 3),
        "ratio_max": round(max(paired), 3),
    }
    summary["redis_cpu_us_per_span"] = _spread(redis_us)
    print(f"\nthroughput, shared state on vs off: {summary['throughput']}")
    print(f"Redis server CPU µs per span (shared state on): {summary['redis_cpu_us_per_span']}")
    return summary


def _redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# -- 2 and 3. query latency and memory ------------------------------------------------------------


def segments() -> list[tuple[str, str, str]]:
    tiers = ["free", "pro", "enterprise", "team", "trial"]
    regions = [f"region-{n}" for n in range(20)]
    return [(t, r, v) for t in tiers for r in regions for v in ("on", "off")]  # 200


def fill(url: str, prefix: str, now_ns: int, *, customers: int, days: int, active_days: int) -> SharedQueries:
    """Write ``days`` of one task through the real flush path; returns queries over it."""
    config = SliConfig.from_mapping(CONFIG)
    keys = SharedKeys(prefix)
    clock = ManualClock(start_ns=now_ns)
    connection = SharedConnection(parse_redis_url(url), 30.0)
    writer = SharedWriter(
        connection, keys, FlushEncoder(keys, SharedLayout.of(config)), "bench", max_bytes=1 << 34, clock=clock,
        coverage_start_ns=now_ns - days * DAY_NS,
    )  # fmt: skip
    series = segments()
    rng = random.Random(7)
    activity: dict[tuple[int, int], list[str]] = {}  # (hour, series) -> customers
    for customer in range(customers):
        home = customer % len(series)
        for day in rng.sample(range(days), active_days):
            hour = day * 24 + rng.randrange(24)
            activity.setdefault((hour, home), []).append(f"{customer:032x}")
    first_minute = (now_ns - days * DAY_NS) // MINUTE_NS
    row = np.array([10.0, 1.0, 9.5, 8.0, 9.0])
    for hour in range(days * 24):
        buffer = DeltaBuffer(1 << 34)
        minute = first_minute + hour * 60 + 30
        for index, values in enumerate(series):
            users = activity.get((hour, index), [])
            bad = users[: max(1, len(users) // 10)] if users else []
            expo = (40, np.array([3, 4, 2, 1], dtype=np.int64), 0)
            buffer.record("checkout", values, minute, row, expo, users, bad, {u: 1 for u in bad})
        writer.flush(buffer.take())
    return SharedQueries(connection, keys, config, writer, clock, 2.0)


def query_latency(url: str, now_ns: int, quick: bool) -> dict[str, Any]:
    days = 3 if quick else 30  # quick: only to check that it runs
    queries = fill(url, "bench-query", now_ns, customers=2_000 if quick else 200_000, days=days, active_days=3)
    start = now_ns - days * DAY_NS
    report_ = queries.impact("checkout", start, now_ns)
    assert len(report_.segments) == len(segments()), len(report_.segments)
    runs = 3 if quick else 15
    impact_ms, counts_ms = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        queries.impact("checkout", start, now_ns)
        impact_ms.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        queries.counts("checkout", start, now_ns)
        counts_ms.append((time.perf_counter() - t0) * 1000)
    result = {
        "days": days,
        "impact_200_segments_ms": _spread(impact_ms),
        "counts_only_ms": _spread(counts_ms),
        "datasketches_merge_alternative_ms": datasketches_alternative(quick),
    }
    print(f"\n30-day impact query over 200 segments: {result}")
    return result


def datasketches_alternative(quick: bool) -> dict[str, Any]:
    """Merging one serialized HLL per (replica, segment, day) at query time, in-process."""
    replicas = 5 if quick else 50
    sketch = ds.hll_sketch(14, ds.tgt_hll_type.HLL_4)
    for n in range(300):
        sketch.update(f"user-{n}")
    blob = sketch.serialize_compact()
    sketches = [ds.hll_sketch.deserialize(blob) for _ in range(31)]
    t0 = time.perf_counter()
    for _segment in range(200):
        union = ds.hll_union(14)
        for _replica in range(replicas):
            for cell in sketches:
                union.update(cell)
        union.get_estimate()
    elapsed = (time.perf_counter() - t0) * 1000
    return {"replicas": replicas, "sketches_merged": 200 * 31 * replicas, "ms": round(elapsed, 1)}


def memory(url: str, now_ns: int, quick: bool) -> dict[str, Any]:
    client = redis.Redis.from_url(url)
    client.flushall()
    base = int(client.info("memory")["used_memory"])
    days = 3 if quick else 30
    fill(url, "bench-series", now_ns, customers=0, days=days, active_days=0)
    per_series = (int(client.info("memory")["used_memory"]) - base) / len(segments())
    client.flushall()
    base = int(client.info("memory")["used_memory"])
    customers = 2_000 if quick else 1_000_000
    fill(url, "bench-customers", now_ns, customers=customers, days=days, active_days=3)
    used = int(client.info("memory")["used_memory"]) - base
    result = {
        "days": days,
        "bytes_per_series_without_users": round(per_series),
        "customers": customers,
        "bytes_with_customers_30d": used,
        "bytes_per_customer": round(used / customers, 1),
        "keys": int(client.dbsize()),
    }
    print(f"\nRedis memory: {result}")
    return result


def _spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 2), "median": round(statistics.median(values), 2), "max": round(max(values), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short rounds, to check that it runs")
    parser.add_argument("--json", help="write the summary here")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--skip-throughput", action="store_true", help="leave out the full-path part")
    parser.add_argument("--skip-memory", action="store_true", help="leave out the Redis memory part")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 5)
    duration = args.duration or (0.6 if args.quick else 5.0)
    load_before = os.getloadavg()
    now_ns = time.time_ns() // MINUTE_NS * MINUTE_NS
    processes: list[subprocess.Popen[str]] = []
    summary: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            url = start_redis(scratch, processes)
            if not args.skip_throughput:
                summary["full_path"] = full_path(
                    scratch, url, rounds, duration, 0.4 if args.quick else 1.5, 4 if args.quick else 24
                )
                summary["rows"] = summary["full_path"]["rows"]
            summary["query"] = query_latency(url, now_ns, args.quick)
            if not args.skip_memory:
                summary["memory"] = memory(url, now_ns, args.quick)
    finally:
        stop_processes(processes)
    summary["load_average"] = {
        "before": [round(x, 2) for x in load_before],
        "after": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"\nload average before {summary['load_average']['before']}, after {summary['load_average']['after']}")
    write_json(summary, args.json)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
