"""Intake processes: ``otel-impact serve --workers 2`` against ``--workers 1``, in the same run.

Four cases, each fed by one load generator process with 4 gRPC channels (4 TCP connections,
each its own subchannel, so the kernel can spread them over the intake processes; 4 calls in
flight per channel) sending pre-serialized 512-span requests of the SLI workload (the
``mixed`` mix of ``_workload.py``), each case forwarding to a raw downstream gRPC server in
another process:

(a) ``forwarding, 1 intake process``: ``sli: {enabled: false}``, in-memory queue.
(b) ``forwarding, 2 intake processes``: (a) with ``--workers 2``.
(c) ``full path, 1 intake process``: the SLI engine on (3 tasks, 3 dimensions), one analysis
    worker process.
(d) ``full path, 2 intake processes``: (c) with ``--workers 2`` (each intake process has its own
    analysis worker; the extra one relays its results to the main one).

Every round measures each case for the same duration, interleaved. Reported per case: accepted
spans/s and CPU µs per span (utime+stime from /proc over the window) of the intake processes
(the main one and the extra ones apart), of the analysis workers and of the downstream. The
ratio rows are (b)/(a) and (d)/(c) per round: min / median / max over the rounds. The machine's
load average is printed before and after.

    python benchmarks/bench_intake_processes.py [--quick] [--rounds N] [--duration S] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from _harness import write_json
from _workload import BATCH, build_request
from bench_forward import cpu_seconds, serve_config, start_raw_server, start_serve, stop_processes
from grpc import aio

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
CHANNELS = 4
IN_FLIGHT_PER_CHANNEL = 4


def role_load(target: str, requests: int, warmup: float, duration: float) -> None:
    """Send over `CHANNELS` connections for ``warmup`` s, print ``start``, send ``duration`` s
    more, print ``end <ok> <seconds>``."""
    end_ns = time.time_ns() - 10**9
    payloads = [build_request(seed, mix="mixed", end_ns=end_ns) for seed in range(requests)]

    async def run() -> None:
        options = [("grpc.max_send_message_length", -1), ("grpc.use_local_subchannel_pool", 1)]
        channels = [aio.insecure_channel(target, options=options) for _ in range(CHANNELS)]
        calls = [channel.unary_unary(METHOD) for channel in channels]
        ok = 0
        stop = False

        async def worker(index: int) -> None:
            nonlocal ok
            call = calls[index % CHANNELS]
            sent = index
            while not stop:
                try:
                    await call(payloads[sent % len(payloads)], timeout=10)
                    ok += 1
                    sent += 1
                except aio.AioRpcError:
                    await asyncio.sleep(0.01)

        tasks = [asyncio.create_task(worker(index)) for index in range(CHANNELS * IN_FLIGHT_PER_CHANNEL)]
        await asyncio.sleep(warmup)
        first, started = ok, time.monotonic()
        print("start", flush=True)
        await asyncio.sleep(duration)
        print(f"end {ok - first} {time.monotonic() - started:.6f}", flush=True)
        stop = True
        await asyncio.gather(*tasks)
        for channel in channels:
            await channel.close()

    asyncio.run(run())


def descendants(pid: int) -> Iterator[int]:
    """Every live descendant of ``pid``."""
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                children = [int(child) for child in handle.read().split()]
        except FileNotFoundError:
            continue
        for child in children:
            yield child
            yield from descendants(child)


def role_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read()
    except FileNotFoundError:
        return "gone"
    if b"intake_processes.child" in command:
        return "extra"
    if b"analysis.worker" in command:
        return "analysis"
    return "other"


def cpu_by_role(pid: int) -> dict[str, float]:
    """CPU seconds of serve's main process, its extra intake processes and all analysis workers."""
    totals = {"main": cpu_seconds(pid), "extra": 0.0, "analysis": 0.0, "other": 0.0}
    for child in descendants(pid):
        role = role_of(child)
        if role == "gone":
            continue
        try:
            totals[role] += cpu_seconds(child)
        except FileNotFoundError:
            continue
    return totals


@dataclass
class Target:
    name: str
    port: int
    pid: int
    downstream_pid: int
    spans_per_s: list[float] = field(default_factory=list)
    cpu_us: dict[str, list[float]] = field(default_factory=dict)


def measure(target: Target, warmup: float, duration: float, requests: int) -> None:
    load = subprocess.Popen(
        [sys.executable, __file__, "--role", "load", "--target", f"127.0.0.1:{target.port}",
         "--requests", str(requests), "--warmup", str(warmup), "--duration", str(duration)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert load.stdout is not None
    assert load.stdout.readline().strip() == "start"
    before = cpu_by_role(target.pid)
    down0 = cpu_seconds(target.downstream_pid)
    _, count, seconds = load.stdout.readline().split()
    after = cpu_by_role(target.pid)
    down1 = cpu_seconds(target.downstream_pid)
    load.wait(timeout=30)
    load.stdout.close()
    spans = max(int(count) * BATCH, 1)
    target.spans_per_s.append(spans / float(seconds))
    used = {role: (after[role] - before[role]) * 1e6 / spans for role in ("main", "extra", "analysis")}
    used["intake"] = used["main"] + used["extra"]
    used["downstream"] = (down1 - down0) * 1e6 / spans
    for role, value in used.items():
        target.cpu_us.setdefault(role, []).append(value)
    time.sleep(0.3)  # let the queues drain before the next case


def start_targets(scratch: str, processes: list[subprocess.Popen[str]]) -> list[Target]:
    targets = []
    for sli, label in ((False, "forwarding"), (True, "full path")):
        for workers in (1, 2):
            downstream_port, downstream_pid = start_raw_server(processes)
            config = serve_config(downstream_port, sli=sli)
            extra = ("--workers", str(workers))
            port, pid, _ = start_serve(config, scratch, processes, extra_args=extra)
            noun = "process" if workers == 1 else "processes"
            targets.append(Target(f"{label}, {workers} intake {noun}", port, pid, downstream_pid))
    return targets


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short rounds, to check that it runs")
    parser.add_argument("--json", help="write the summary here")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--role", choices=["load"], help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=12, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "load":
        role_load(args.target, args.requests, args.warmup, args.duration)
        return

    rounds = args.rounds or (1 if args.quick else 5)
    duration = args.duration or (0.6 if args.quick else 4.0)
    warmup = 0.4 if args.quick else 1.5
    requests = 4 if args.quick else 24
    load_before = os.getloadavg()
    processes: list[subprocess.Popen[str]] = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            targets = start_targets(scratch, processes)
            for _ in range(rounds):
                for target in targets:
                    measure(target, warmup, duration, requests)
    finally:
        stop_processes(processes)
    load_after = os.getloadavg()

    print(f"\n{BATCH}-span requests over {CHANNELS} gRPC connections, {rounds} rounds of {duration:g} s")
    print("| case | spans/s (min / median / max) | intake CPU µs/span (main + extra) | analysis CPU µs/span "
          "| downstream CPU µs/span |")  # fmt: skip
    print("|---|---|---|---|---|")
    rows = []
    for index, target in enumerate(targets):
        base = targets[index - index % 2]  # the 1-process case of the same kind
        cpu = {role: statistics.median(values) for role, values in target.cpu_us.items()}
        rates = target.spans_per_s
        print(
            f"| {target.name} | {min(rates):,.0f} / {statistics.median(rates):,.0f} / {max(rates):,.0f} "
            f"| {cpu['intake']:.2f} ({cpu['main']:.2f} + {cpu['extra']:.2f}) | {cpu['analysis']:.2f} "
            f"| {cpu['downstream']:.2f} |"
        )
        paired = [two / one for one, two in zip(base.spans_per_s, rates, strict=True)]
        rows.append(
            {
                "case": target.name,
                "median_us": round(cpu["intake"] + cpu["analysis"], 3),
                "ratio_to_baseline": round(statistics.median(paired), 3),
                "spans_per_s": [round(rate) for rate in rates],
                "cpu_us_per_span": {role: round(value, 3) for role, value in cpu.items()},
            }
        )
    ratios = {}
    for one, two in ((targets[0], targets[1]), (targets[2], targets[3])):
        per_round = [b / a for a, b in zip(one.spans_per_s, two.spans_per_s, strict=True)]
        ratios[two.name] = per_round
        print(f"{two.name} / {one.name}: throughput {spread(per_round)}× (min / median / max of rounds)")
    print(f"load average (1, 5, 15 min) before {[round(v, 2) for v in load_before]}, "
          f"after {[round(v, 2) for v in load_after]}; {os.cpu_count()} CPUs")  # fmt: skip
    summary = {
        "rows": rows,
        "throughput_ratio_2_vs_1": {name: [round(r, 3) for r in values] for name, values in ratios.items()},
        "load_average": {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in load_after]},
        "cpus": os.cpu_count(),
    }
    write_json(summary, args.json)


if __name__ == "__main__":
    main()
