"""Analysis workers: lag under a burst, what a full ring costs, and memory at many customers.

Each case runs ``otel-impact serve`` (forwarding to a bare raw gRPC server in another process,
with the SLI config of the full-path benchmark) and sends it a burst of pre-built 512-span
requests of the full-path workload (``_workload.py``) over one gRPC channel with 16 calls in
flight, as fast as it accepts them:

1. **Lag.** ``analysis: {workers: 1}``, a burst of every-span-a-root requests. Reported: how
   long the burst took to be accepted, the most spans waiting for analysis while it ran
   (``impact_sli_analysis_backlog_spans``, polled), and the lag: from the last request accepted
   to the backlog reaching zero. Baseline in the same run: ``workers: 0`` (analysis on the
   intake loop has no lag, and accepts the burst that much slower).
2. **Bound hit.** The same burst with ``analysis: {workers: 1, buffer: 1MiB}``, the worker
   stopped (SIGSTOP) while it is sent, so the ring fills: spans counted unanalysed
   (``impact_sli_unanalysed_spans_total{reason="buffer_full"}``) and the check that analysed
   + unanalysed = accepted.
3. **Memory.** Memory (proportional set size, so the shared ring counts once) of the intake
   process and of its analysis worker after ``--customers``
   distinct customers (default 1M; every span a task root with its own customer), with 0 and 1
   workers.

    python benchmarks/bench_analysis.py [--quick] [--json FILE] [--customers N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

from _harness import write_json
from _workload import BATCH, build_request
from bench_forward import METHOD, serve_config, start_raw_server, start_serve, stop_processes
from grpc import aio
from prometheus_client.parser import text_string_to_metric_families

IN_FLIGHT = 16


def metrics(admin_port: int) -> dict[str, float]:
    """Every sample of ``/metrics`` by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=30) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def total(samples: dict[str, float], name: str, **labels: str) -> float:
    wanted = [f"{k}={v}" for k, v in labels.items()]
    return sum(
        value
        for key, value in samples.items()
        if key.split("{", 1)[0] == name and all(label in key for label in wanted)
    )


def send(port: int, payloads: list[bytes]) -> float:
    """Send every payload (16 in flight); returns the seconds until the last was accepted."""

    async def run() -> float:
        channel = aio.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", -1)])
        call = channel.unary_unary(METHOD)
        queue = list(reversed(payloads))
        started = time.monotonic()

        async def worker() -> None:
            while queue:
                payload = queue.pop()
                while True:
                    try:
                        await call(payload, timeout=30)
                        break
                    except aio.AioRpcError:
                        await asyncio.sleep(0.01)

        await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))
        elapsed = time.monotonic() - started
        await channel.close()
        return elapsed

    return asyncio.run(run())


def children(pid: int) -> list[int]:
    """``pid``'s analysis worker processes (not its other children, such as the resource tracker)."""
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            for child in handle.read().split():
                with open(f"/proc/{child}/cmdline", "rb") as command:
                    if b"otel_impact.processors.analysis.worker" in command.read():
                        found.append(int(child))
    return found


def rss_mb(pid: int) -> float:
    """``pid``'s proportional set size: the pages it shares with its workers (the ring) count
    half in each, so the sum over the processes is what they hold together."""
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return 0.0


def start(scratch: str, processes: list[subprocess.Popen[str]], analysis: str) -> tuple[int, int, int]:
    downstream_port, _ = start_raw_server(processes)
    config = serve_config(downstream_port, sli=True).replace("analysis: {workers: 1}", f"analysis: {analysis}")
    port, pid, admin = start_serve(config, scratch, processes)
    wait_for_workers(pid, expected=0 if "workers: 0" in analysis else 1)
    return port, pid, admin


def wait_for_workers(pid: int, expected: int) -> None:
    deadline = time.monotonic() + 30
    while len(children(pid)) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # let the worker finish importing


def lag_case(scratch: str, payloads: list[bytes], workers: int) -> dict[str, float]:
    processes: list[subprocess.Popen[str]] = []
    try:
        port, _, admin = start(scratch, processes, f"{{workers: {workers}}}")
        peak = 0.0
        done = threading.Event()

        def poll() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, total(metrics(admin), "impact_sli_analysis_backlog_spans"))
                time.sleep(0.02)

        poller = threading.Thread(target=poll)
        poller.start()
        seconds = send(port, payloads)
        accepted_at = time.monotonic()
        lag = 0.0  # on the intake loop, a batch is analysed before its sender hears back
        if workers:
            while total(metrics(admin), "impact_sli_analysis_backlog_spans") > 0:
                time.sleep(0.005)
            lag = time.monotonic() - accepted_at
        done.set()
        poller.join()
        final = metrics(admin)
        spans = len(payloads) * BATCH
        return {
            "workers": workers,
            "spans": spans,
            "accept_seconds": round(seconds, 3),
            "accepted_spans_per_s": round(spans / seconds),
            "peak_backlog_spans": peak,
            "lag_seconds": round(lag, 3),
            "unanalysed": total(final, "impact_sli_unanalysed_spans_total"),
            "events": total(final, "impact_task_events_total"),
        }
    finally:
        stop_processes(processes)


def bound_case(scratch: str, payloads: list[bytes]) -> dict[str, float]:
    processes: list[subprocess.Popen[str]] = []
    try:
        port, pid, admin = start(scratch, processes, "{workers: 1, buffer: 1MiB}")
        (worker,) = children(pid)
        os.kill(worker, signal.SIGSTOP)
        try:
            send(port, payloads)
        finally:
            os.kill(worker, signal.SIGCONT)
        while total(metrics(admin), "impact_sli_analysis_backlog_spans") > 0:
            time.sleep(0.01)
        final = metrics(admin)
        accepted = total(final, "otel_impact_receiver_spans_total", outcome="accepted")
        unanalysed = total(final, "impact_sli_unanalysed_spans_total", reason="buffer_full")
        events = total(final, "impact_task_events_total")  # every span is a root: events = analysed spans
        if events + unanalysed != accepted:
            raise SystemExit(f"analysed {events} + unanalysed {unanalysed} != accepted {accepted}")
        return {"accepted_spans": accepted, "unanalysed_spans": unanalysed, "analysed_spans": events}
    finally:
        stop_processes(processes)


def memory_case(scratch: str, customers: int, workers: int) -> dict[str, float]:
    processes: list[subprocess.Popen[str]] = []
    try:
        port, pid, admin = start(scratch, processes, f"{{workers: {workers}}}")
        idle = rss_mb(pid)
        end_ns = time.time_ns() - 10**9
        requests = -(-customers // BATCH)
        for first in range(0, requests, 200):  # built in slices: a million spans are 500 MB of bytes
            chunk = range(first, min(first + 200, requests))
            send(port, [build_request(s, mix="all roots", end_ns=end_ns, customers=customers) for s in chunk])
        while total(metrics(admin), "impact_sli_analysis_backlog_spans") > 0:
            time.sleep(0.05)
        worker_mb = sum(rss_mb(child) for child in children(pid))
        return {
            "workers": workers,
            "customers": customers,
            "intake_rss_mb_idle": round(idle, 1),
            "intake_rss_mb": round(rss_mb(pid), 1),
            "workers_rss_mb": round(worker_mb, 1),
            "total_rss_mb": round(rss_mb(pid) + worker_mb, 1),
        }
    finally:
        stop_processes(processes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small bursts, to check that it runs")
    parser.add_argument("--json", help="write the summary here")
    parser.add_argument("--customers", type=int, help="distinct customers for the memory case (default 1M)")
    args = parser.parse_args()
    burst = 40 if args.quick else 400
    customers = args.customers or (20_000 if args.quick else 1_000_000)
    load_before = os.getloadavg()
    end_ns = time.time_ns() - 10**9
    payloads = [build_request(seed, mix="all roots", end_ns=end_ns) for seed in range(burst)]
    with tempfile.TemporaryDirectory() as scratch:
        lag = [lag_case(scratch, payloads, workers) for workers in (0, 1)]
        bound = bound_case(scratch, payloads)
        memory = [memory_case(scratch, customers, workers) for workers in (0, 1)]
    load_after = os.getloadavg()

    print(f"Burst of {burst} requests × {BATCH} spans (every span a task root), {IN_FLIGHT} in flight:")
    print("| analysis | accepted spans/s | peak backlog (spans) | lag after the last accept |")
    print("|---|---|---|---|")
    for row in lag:
        where = "on the intake loop" if row["workers"] == 0 else f"{row['workers']} worker"
        print(
            f"| {where} | {row['accepted_spans_per_s']:,} | {row['peak_backlog_spans']:,.0f} "
            f"| {row['lag_seconds']:.3f} s |"
        )
    ratio = lag[1]["accepted_spans_per_s"] / lag[0]["accepted_spans_per_s"]
    print(f"accepting the burst with a worker: {ratio:.2f}× as fast as on the loop")
    print(
        f"\nRing of 1 MiB, worker stopped during the burst: {bound['unanalysed_spans']:,.0f} of "
        f"{bound['accepted_spans']:,.0f} accepted spans counted unanalysed (buffer_full), "
        f"{bound['analysed_spans']:,.0f} analysed; nothing else lost"
    )
    print(f"\nMemory after {customers:,} distinct customers:")
    print("| analysis | intake PSS idle | intake PSS | workers PSS | total |")
    print("|---|---|---|---|---|")
    for row in memory:
        where = "on the intake loop" if row["workers"] == 0 else f"{row['workers']} worker"
        print(
            f"| {where} | {row['intake_rss_mb_idle']} MB | {row['intake_rss_mb']} MB "
            f"| {row['workers_rss_mb']} MB | {row['total_rss_mb']} MB |"
        )
    print(f"load average before {[round(v, 2) for v in load_before]}, after {[round(v, 2) for v in load_after]}")
    summary = {
        "rows": [
            {
                "case": "burst accepted, 1 worker vs on the loop",
                "median_us": 1e6 / lag[1]["accepted_spans_per_s"],
                "ratio_to_baseline": round(lag[0]["accepted_spans_per_s"] / lag[1]["accepted_spans_per_s"], 3),
            }
        ],
        "lag": lag,
        "bound": bound,
        "memory": memory,
        "load_average": {"before": list(load_before), "after": list(load_after)},
    }
    write_json(summary, args.json)


if __name__ == "__main__":
    main()
