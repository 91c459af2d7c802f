"""Forwarding and full-path throughput: ``otel-impact serve`` against a bare raw-bytes gRPC server.

Every case is fed by a load generator in its own process (one grpc.aio channel, 8 calls in
flight) sending pre-serialized 512-span requests of the SLI workload (``_workload.py``: 12
attributes per span, about 520 B per span, 3 tasks, tier, region and a flag variant), their
spans ending about a second before they are sent:

(a) ``bare raw gRPC server``: a Python grpc.aio server with a raw-bytes generic handler that
    only answers: the ceiling for any Python OTLP server.
(a2) ``bare gRPC pass-through``: a grpc.aio server with the same raw-bytes handler that forwards
    each request to a downstream raw server (another process) and waits for its answer before
    answering: the honest limit for anything that forwards (the ceiling cannot be reached by a
    server that also sends every request on).
(b) ``serve, forwarding``: ``otel-impact serve`` forwarding to a downstream raw server (another
    process), in-memory queue, default settings (consecutive requests merged downstream), with
    the SLI engine switched off (``sli: {enabled: false}``).
(b0) ``serve, forwarding, engines not attached``: (b) with the SLI and SLO engines not attached
    to the service at all (this benchmark patches them out): forwarding alone. A switched-off SLI
    engine stays registered as an analyzer, so (b) still parses every request; the difference
    between (b) and (b0) is that parse.
(c) ``serve, no merging``: (b) with ``max_batch_bytes: 0`` (one downstream call per request).
(d) ``serve, pseudonymization on``: (b) with processor-side pseudonymization of ``enduser.id``
    configured, which no span carries (the cost of looking).
(e) ``serve, persistent queue``: (b) with ``--state`` (every request written to a file before
    it is acknowledged, deleted once delivered).
(f0) ``serve, full path, analysis on the loop, mixed``: the full path (receive, derive,
    forward) as it ran before analysis workers: (b) with the SLI engine on, configured with 3
    tasks and 3 segment dimensions, ``analysis: {workers: 0}``, fed the realistic mix (a quarter
    task roots, half inherited task spans, a quarter without a task).
(f) ``serve, full path, 1 analysis worker, mixed``: the same with the default analysis worker
    process (the intake process hands task spans over through shared memory).
(g) ``serve, full path, 1 analysis worker, all roots``: (f) fed requests in which every span is
    a task root (the worst case).

Each round measures every case for the same duration, interleaved. Reported per case: accepted
spans/s and the server's CPU µs per span (utime+stime of the server process from /proc over
the window; for serve, its downstream's CPU is shown apart). The ratio rows are CPU per span
against (a); ``throughput_ratio`` is a case's spans/s over (a)'s, ``vs_passthrough`` over
(a2)'s, ``vs_forwarding`` over (b)'s, each the median of per-round ratios. The CPU of serve's
analysis worker processes is measured apart (``analysis CPU µs/span``); the intake process's
CPU is the server CPU.

    python benchmarks/bench_forward.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from _harness import Case, report, write_json
from _workload import BATCH, MIXES, SLI_CONFIG, build_request
from grpc import aio
from prometheus_client.parser import text_string_to_metric_families

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
IN_FLIGHT = 8
CLK_TCK = os.sysconf("SC_CLK_TCK")
CLI = str(Path(sys.executable).parent / "otel-impact")


# -- roles run in their own processes ------------------------------------------------------------


async def _serve_export(export: Callable[[bytes, object], Awaitable[bytes]]) -> None:
    """A grpc.aio server with a raw-bytes Export handler: print its port, serve until killed."""
    server = aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        {"Export": grpc.unary_unary_rpc_method_handler(export)},
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


def role_raw_server() -> None:
    """Print the port, then answer every Export with an empty response, parsing nothing."""

    async def export(request: bytes, context: object) -> bytes:
        return b""

    asyncio.run(_serve_export(export))


def role_passthrough(downstream: str) -> None:
    """Print the port, then forward every Export's bytes to ``downstream`` and answer when it has."""

    async def serve() -> None:
        channel = aio.insecure_channel(downstream, options=[("grpc.max_send_message_length", -1)])
        forward = channel.unary_unary(METHOD)

        async def export(request: bytes, context: object) -> bytes:
            await forward(request, timeout=10)
            return b""

        await _serve_export(export)

    asyncio.run(serve())


def role_load(target: str, mix: str, requests: int, warmup: float, duration: float) -> None:
    """Send for ``warmup`` s, print ``start``, send ``duration`` s more, print ``end <ok> <seconds>``.

    Sends ``requests`` distinct requests of ``mix`` in turn (10,000 customers over them).
    """
    end_ns = time.time_ns() - 10**9
    payloads = [build_request(seed, mix=mix, end_ns=end_ns) for seed in range(requests)]

    async def run() -> None:
        channel = aio.insecure_channel(target, options=[("grpc.max_send_message_length", -1)])
        call = channel.unary_unary(METHOD)
        ok = 0
        stop = False

        async def worker(first: int) -> None:
            nonlocal ok
            sent = first
            while not stop:
                try:
                    await call(payloads[sent % len(payloads)], timeout=10)
                    ok += 1
                    sent += 1
                except aio.AioRpcError:
                    await asyncio.sleep(0.01)

        tasks = [asyncio.create_task(worker(index)) for index in range(IN_FLIGHT)]
        await asyncio.sleep(warmup)
        first, started = ok, time.monotonic()
        print("start", flush=True)
        await asyncio.sleep(duration)
        print(f"end {ok - first} {time.monotonic() - started:.6f}", flush=True)
        stop = True
        await asyncio.gather(*tasks)
        await channel.close()

    asyncio.run(run())


# -- orchestration -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid``'s live child processes (serve's analysis workers)."""
    total = 0.0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            for child in handle.read().split():
                with contextlib.suppress(FileNotFoundError):  # it exited meanwhile
                    total += cpu_seconds(int(child))
    return total


@dataclass
class Target:
    """One case: a server process and the requests it is fed."""

    name: str
    port: int
    pid: int
    helper_pid: int | None = None
    mix: str = "mixed"
    admin_port: int | None = None
    spans_per_s: list[float] = field(default_factory=list)
    helper_us: list[float] = field(default_factory=list)
    analysis_us: list[float] = field(default_factory=list)
    """CPU µs per span of the server's child processes (serve's analysis workers)."""
    unanalysed_share: list[float] = field(default_factory=list)
    """Share of the window's spans counted unanalysed (analysis behind, its buffer full)."""


def start_raw_server(processes: list[subprocess.Popen[str]], *, forward_to: int | None = None) -> tuple[int, int]:
    """A raw server (or, with ``forward_to``, a pass-through to that port); its port and pid."""
    role = (
        ["--role", "raw-server"]
        if forward_to is None
        else ["--role", "passthrough", "--target", f"127.0.0.1:{forward_to}"]
    )
    process = subprocess.Popen([sys.executable, __file__, *role], stdout=subprocess.PIPE, text=True)
    processes.append(process)
    assert process.stdout is not None
    return int(process.stdout.readline()), process.pid


def role_serve_without_engines(argv: list[str]) -> None:
    """``otel-impact serve`` with the impact engines not attached: the forwarding path alone."""
    from otel_impact.processors import cli, components  # noqa: PLC0415

    components.attach_impact = lambda service: None
    raise SystemExit(cli.main(argv))


def start_serve(
    config: str,
    scratch: str,
    processes: list[subprocess.Popen[str]],
    *,
    state: str | None = None,
    engines: bool = True,
    extra_args: tuple[str, ...] = (),
    cli: str = CLI,
) -> tuple[int, int, int]:
    """Start ``otel-impact serve`` (``cli``: the ``otel-impact`` command of the build to run, this
    checkout's by default); returns its OTLP gRPC port, pid and admin port."""
    config_path = Path(scratch) / f"config-{len(processes)}.yaml"
    config_path.write_text(config)
    log_path = Path(scratch) / f"serve-{len(processes)}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_IMPACT_")}
    env["OTEL_IMPACT_HASH_KEY"] = "00" * 32
    with open(log_path, "w") as log:
        command = [cli] if engines else [sys.executable, __file__, "--role", "serve-without-engines"]
        process = subprocess.Popen(
            [*command, "serve", "--config", str(config_path), "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "none",
             "--admin", "127.0.0.1:0", *(["--state", state] if state else []), *extra_args],
            stdout=log, stderr=subprocess.STDOUT, text=True, env=env, cwd=scratch,
        )  # fmt: skip
    processes.append(process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log_path.read_text()
        grpc_port, admin_port = re.search(r"otlp_grpc=[^ ]*:(\d+)", text), re.search(r"admin=[^ ]*:(\d+)", text)
        if grpc_port and admin_port:
            return int(grpc_port.group(1)), process.pid, int(admin_port.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"serve did not start:\n{log_path.read_text()}")


def measure(target: Target, warmup: float, duration: float, requests: int) -> float:
    """Run the load against ``target``; returns server CPU µs per span (and records spans/s)."""
    load = subprocess.Popen(
        [sys.executable, __file__, "--role", "load", "--target", f"127.0.0.1:{target.port}", "--mix", target.mix,
         "--requests", str(requests), "--warmup", str(warmup), "--duration", str(duration)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert load.stdout is not None
    assert load.stdout.readline().strip() == "start"
    cpu0 = cpu_seconds(target.pid)
    helper0 = cpu_seconds(target.helper_pid) if target.helper_pid else 0.0
    children0 = children_cpu_seconds(target.pid)
    unanalysed0 = unanalysed_spans(target)
    _, count, seconds = load.stdout.readline().split()
    cpu1 = cpu_seconds(target.pid)
    helper1 = cpu_seconds(target.helper_pid) if target.helper_pid else 0.0
    children1 = children_cpu_seconds(target.pid)
    unanalysed1 = unanalysed_spans(target)
    load.wait(timeout=30)
    load.stdout.close()
    spans = max(int(count) * BATCH, 1)
    target.spans_per_s.append(spans / float(seconds))
    # The window's requests were accepted during it; their analysis may finish a little later.
    target.unanalysed_share.append((unanalysed1 - unanalysed0) / spans)
    if target.helper_pid:
        target.helper_us.append((helper1 - helper0) * 1e6 / spans)
    target.analysis_us.append((children1 - children0) * 1e6 / spans)
    time.sleep(0.3)  # let the queue drain before the next case
    return (cpu1 - cpu0) * 1e6 / spans


def measure_rounds(
    targets: list[Target], rounds: int, warmup: float, duration: float, requests: int
) -> dict[str, list[float]]:
    """Feed every target in turn, ``rounds`` times (interleaved; each round starts one target later,
    so no target always goes first): each target's server CPU µs per span in each round, by name
    (spans/s and the rest are recorded on the targets, in round order)."""
    intake: dict[str, list[float]] = {target.name: [] for target in targets}
    for round_index in range(rounds):
        shift = round_index % len(targets)
        for target in targets[shift:] + targets[:shift]:
            intake[target.name].append(measure(target, warmup, duration, requests))
    return intake


def stop_processes(processes: list[subprocess.Popen[str]]) -> None:
    """SIGTERM every process, then wait for each (killing it after 30 s)."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def unanalysed_spans(target: Target) -> float:
    """What the target's serve counted as accepted but not analysed so far (0 for other servers)."""
    if target.admin_port is None:
        return 0.0
    return sli_counters(target.admin_port)["unanalysed"]


def sli_counters(admin_port: int) -> dict[str, float]:
    """What the SLI engine of a serve process counted, from its ``/metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    totals = {"events": 0.0, "clamped": 0.0, "analysis_errors": 0.0, "analyzer_errors": 0.0, "unanalysed": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "impact_task_events_total":
                totals["events"] += sample.value
            elif sample.name == "impact_sli_clamped_events_total":
                totals["clamped"] += sample.value
            elif sample.name == "impact_sli_analysis_errors_total":
                totals["analysis_errors"] += sample.value
            elif sample.name == "otel_impact_analyzer_errors_total":
                totals["analyzer_errors"] += sample.value
            elif sample.name == "impact_sli_unanalysed_spans_total":
                totals["unanalysed"] += sample.value
    return totals


def serve_config(
    downstream_port: int, *, sli: bool, queue: str = "{}", extra: str = "", analysis_workers: int = 1
) -> str:
    section = json.dumps(SLI_CONFIG) if sli else "{enabled: false}"
    return (
        f"{extra}sli: {section}\nanalysis: {{workers: {analysis_workers}}}\n"
        f"exporters:\n  - endpoint: grpc://127.0.0.1:{downstream_port}\n    queue: {queue}\n"
    )


def start_targets(scratch: str, processes: list[subprocess.Popen[str]]) -> list[Target]:
    port, pid = start_raw_server(processes)
    targets = [Target("bare raw gRPC server (ceiling)", port, pid)]
    downstream_port, downstream_pid = start_raw_server(processes)
    port, pid = start_raw_server(processes, forward_to=downstream_port)
    targets.append(Target("bare gRPC pass-through (forwards each request)", port, pid, downstream_pid))
    forwarding: dict[str, dict[str, str]] = {
        "serve, forwarding": {},
        "serve, forwarding, engines not attached": {},
        "serve, no merging": {"queue": "{max_batch_bytes: 0}"},
        "serve, pseudonymization on": {"extra": "pseudonymization:\n  attributes: [enduser.id]\n"},
        "serve, persistent queue": {},
    }
    for name, options in forwarding.items():
        downstream_port, downstream_pid = start_raw_server(processes)
        state = str(Path(scratch) / "state") if name == "serve, persistent queue" else None
        config = serve_config(downstream_port, sli=False, **options)
        engines = name != "serve, forwarding, engines not attached"
        serve_port, serve_pid, admin_port = start_serve(config, scratch, processes, state=state, engines=engines)
        targets.append(Target(name, serve_port, serve_pid, downstream_pid, admin_port=admin_port))
    downstream_port, downstream_pid = start_raw_server(processes)
    config = serve_config(downstream_port, sli=True, analysis_workers=0)
    serve_port, serve_pid, admin_port = start_serve(config, scratch, processes)
    name = "serve, full path, analysis on the loop, mixed"
    targets.append(Target(name, serve_port, serve_pid, downstream_pid, admin_port=admin_port))
    downstream_port, downstream_pid = start_raw_server(processes)
    serve_port, serve_pid, admin_port = start_serve(serve_config(downstream_port, sli=True), scratch, processes)
    for mix in MIXES:
        name = f"serve, full path, 1 analysis worker, {mix}"
        targets.append(Target(name, serve_port, serve_pid, downstream_pid, mix=mix, admin_port=admin_port))
    return targets


FULL_PATH_CASES = 3
"""The last targets are the full-path ones (SLI analysis on)."""


def main() -> None:
    if sys.argv[1:3] == ["--role", "serve-without-engines"]:
        role_serve_without_engines(sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short rounds, to check that it runs")
    parser.add_argument("--json", help="write the summary here")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--role", choices=["raw-server", "passthrough", "load"], help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--mix", choices=MIXES, default="mixed", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, default=12, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "raw-server":
        role_raw_server()
        return
    if args.role == "passthrough":
        role_passthrough(args.target)
        return
    if args.role == "load":
        role_load(args.target, args.mix, args.requests, args.warmup, args.duration)
        return

    rounds = args.rounds or (1 if args.quick else 5)
    duration = args.duration or (0.6 if args.quick else 5.0)
    warmup = 0.4 if args.quick else 1.5
    requests = 4 if args.quick else 24
    load_before = os.getloadavg()
    processes: list[subprocess.Popen[str]] = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            targets = start_targets(scratch, processes)
            cases = [Case(t.name, lambda n: None) for t in targets]
            for _ in range(rounds):
                for target, case in zip(targets, cases, strict=True):
                    case.samples_us.append(measure(target, warmup, duration, requests))
            admins = sorted({t.admin_port for t in targets[-FULL_PATH_CASES:] if t.admin_port is not None})
            counts = [sli_counters(port) for port in admins]
    finally:
        stop_processes(processes)
    for counted in counts:
        if not counted["events"] or counted["analysis_errors"] or counted["analyzer_errors"] or counted["clamped"]:
            raise SystemExit(f"the SLI engine did not analyze the full-path load as expected: {counted}")
    counted = {key: sum(c[key] for c in counts) for key in counts[0]}

    summary = report(f"Server CPU µs per span, {BATCH}-span batches over gRPC", cases, cases[0].name)
    ceiling, passthrough, forwarding = targets[0], targets[1], targets[2]

    def ratios(target: Target, base: Target) -> list[float]:
        return [t / b for t, b in zip(target.spans_per_s, base.spans_per_s, strict=True)]

    print("\n| case | spans/s (median) | vs ceiling (min/median/max of rounds) | vs pass-through "
          "| vs forwarding serve | intake CPU µs/span | analysis CPU µs/span | downstream CPU µs/span "
          "| unanalysed |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    extra = []
    for target, case in zip(targets, cases, strict=True):
        rate = statistics.median(target.spans_per_s)
        to_ceiling = ratios(target, ceiling)
        ratio = statistics.median(to_ceiling)
        vs_pass = statistics.median(ratios(target, passthrough))
        vs_forwarding = statistics.median(ratios(target, forwarding))
        helper = f"{statistics.median(target.helper_us):.2f}" if target.helper_us else "-"
        analysis = statistics.median(target.analysis_us) if target.analysis_us else 0.0
        per_core = 1e6 / case.median_us
        unanalysed = statistics.median(target.unanalysed_share) if target.unanalysed_share else 0.0
        print(
            f"| {target.name} | {rate:,.0f} | {min(to_ceiling):.2f} / {ratio:.2f} / {max(to_ceiling):.2f}× "
            f"| {vs_pass:.2f}× | {vs_forwarding:.2f}× | {case.median_us:.2f} | {analysis:.2f} | {helper} "
            f"| {unanalysed:.1%} |"
        )
        extra.append(
            {
                "case": target.name,
                "spans_per_s": round(rate),
                "throughput_ratio": round(ratio, 3),
                "throughput_ratio_min": round(min(to_ceiling), 3),
                "throughput_ratio_max": round(max(to_ceiling), 3),
                "vs_passthrough": round(vs_pass, 3),
                "vs_forwarding": round(vs_forwarding, 3),
                "analysis_cpu_us_per_span": round(analysis, 3),
                "unanalysed_share": round(unanalysed, 4),
                "spans_per_s_per_core": round(per_core),
                "downstream_cpu_us_per_span": round(statistics.median(target.helper_us), 3)
                if target.helper_us
                else None,
            }
        )
    load_after = os.getloadavg()
    summary["throughput"] = extra
    summary["throughput_ratio"] = extra[2]["throughput_ratio"]
    summary["cpu_capacity_ratio"] = round(cases[0].median_us / cases[2].median_us, 3)
    summary["sli_counted"] = counted
    summary["load_average"] = {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in load_after]}
    for row, case in zip(extra[1:4], cases[1:4], strict=True):
        print(
            f"\n{row['case']} vs ceiling: throughput {row['throughput_ratio']:.2f}× "
            f"(vs pass-through {row['vs_passthrough']:.2f}×), "
            f"per-core capacity (CPU per span) {cases[0].median_us / case.median_us:.2f}×"
        )
    for row, case in zip(extra[-FULL_PATH_CASES:], cases[-FULL_PATH_CASES:], strict=True):
        print(
            f"{row['case']}: {row['spans_per_s']:,} spans/s = {row['throughput_ratio']:.2f}× the ceiling, "
            f"{row['vs_passthrough']:.2f}× the pass-through, {row['vs_forwarding']:.2f}× forwarding-only serve; "
            f"{case.median_us:.2f} server CPU µs per span = {row['spans_per_s_per_core']:,} spans/s per core "
            f"({cases[0].median_us / case.median_us:.2f}× the ceiling's)"
        )
    print(f"SLI engine counted: {counted}")
    average = summary["load_average"]
    print(f"load average (1, 5, 15 min) before {average['before']}, after {average['after']}")
    write_json(summary, args.json)


if __name__ == "__main__":
    main()
