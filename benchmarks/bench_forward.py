"""Forwarding throughput: ``otel-impact serve`` against a bare raw-bytes gRPC server, same run.

Cases, each fed by a load generator in its own process (one grpc.aio channel, 8 calls in
flight, pre-serialized 512-span requests of about 500 B/span):

(a) ``bare raw gRPC server``: a Python grpc.aio server with a raw-bytes generic handler that
    only answers: the ceiling for any Python OTLP server.
(b) ``serve, forwarding``: ``otel-impact serve`` forwarding to a downstream raw server (another
    process), in-memory queue, default settings (consecutive requests merged downstream).
(c) ``serve, no merging``: the same with ``max_batch_bytes: 0`` (one downstream call per request).
(d) ``serve, pseudonymization on``: the same as (b) with processor-side pseudonymization of
    ``enduser.id`` configured, which no span carries (the cost of looking).
(e) ``serve, persistent queue``: the same as (b) with ``--state`` (every request written to a
    file before it is acknowledged, deleted once delivered).

Each round measures every case for the same duration, interleaved. Reported per case: accepted
spans/s and the server's CPU µs per span (utime+stime of the server process from /proc over
the window; for serve, its downstream's CPU is shown apart). The ratio rows are CPU per span
against (a); ``throughput_ratio`` is (b)'s spans/s over (a)'s.

    python benchmarks/bench_forward.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from _harness import Case, report, write_json
from grpc import aio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
BATCH = 512
IN_FLIGHT = 8
CLK_TCK = os.sysconf("SC_CLK_TCK")
CLI = str(Path(sys.executable).parent / "otel-impact")


def make_request(spans: int, seed: int) -> bytes:
    """An ExportTraceServiceRequest like a busy HTTP service's: 8 resource and 12 span attributes."""

    rng = random.Random(seed)
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    for i in range(8):
        resource_spans.resource.attributes.add(key=f"resource.attr.{i}", value=AnyValue(string_value=f"value-{i}"))
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "bench"
    for i in range(spans):
        span = scope.spans.add()
        span.trace_id, span.span_id = rng.randbytes(16), rng.randbytes(8)
        span.parent_span_id = rng.randbytes(8)
        span.name, span.kind = "GET /checkout", 2
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + i * 1000
        span.end_time_unix_nano = span.start_time_unix_nano + rng.randrange(10**5, 10**8)
        status = 500 if i % 20 == 0 else 200
        span.status.code = 2 if status == 500 else 0
        for key, value in (
            ("http.request.method", "GET"),
            ("http.route", "/checkout"),
            ("url.scheme", "https"),
            ("server.address", "shop.example.com"),
            ("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
            ("impact.customer.hash", f"{rng.getrandbits(128):032x}"),
            ("impact.customer.tier", "pro"),
            ("impact.task.name", "checkout"),
            ("feature_flag.checkout_variant", "b"),
        ):
            span.attributes.add(key=key, value=AnyValue(string_value=value))
        span.attributes.add(key="http.response.status_code", value=AnyValue(int_value=status))
        span.attributes.add(key="feature_flag.new_ranker", value=AnyValue(bool_value=True))
        span.attributes.add(key="app.request.tokens", value=AnyValue(int_value=i))
    return request.SerializeToString()  # type: ignore[no-any-return]


# -- roles run in their own processes ------------------------------------------------------------


def role_raw_server() -> None:
    """Print the port, then answer every Export with an empty response, parsing nothing."""

    async def serve() -> None:
        server = aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])

        async def export(request: bytes, context: object) -> bytes:
            return b""

        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {"Export": grpc.unary_unary_rpc_method_handler(export)},
        )
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        print(port, flush=True)
        await server.wait_for_termination()

    asyncio.run(serve())


def role_load(target: str, warmup: float, duration: float) -> None:
    """Send for ``warmup`` s, print ``start``, send ``duration`` s more, print ``end <ok> <seconds>``."""
    payload = make_request(BATCH, seed=1)

    async def run() -> None:
        channel = aio.insecure_channel(target, options=[("grpc.max_send_message_length", -1)])
        call = channel.unary_unary(METHOD)
        ok = 0
        stop = False

        async def worker() -> None:
            nonlocal ok
            while not stop:
                try:
                    await call(payload, timeout=10)
                    ok += 1
                except aio.AioRpcError:
                    await asyncio.sleep(0.01)

        tasks = [asyncio.create_task(worker()) for _ in range(IN_FLIGHT)]
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


@dataclass
class Target:
    name: str
    port: int
    pid: int
    helper_pid: int | None = None
    spans_per_s: list[float] = field(default_factory=list)
    helper_us: list[float] = field(default_factory=list)


def start_raw_server(processes: list[subprocess.Popen[str]]) -> tuple[int, int]:
    process = subprocess.Popen([sys.executable, __file__, "--role", "raw-server"], stdout=subprocess.PIPE, text=True)
    processes.append(process)
    assert process.stdout is not None
    return int(process.stdout.readline()), process.pid


def start_serve(
    config: str, scratch: str, processes: list[subprocess.Popen[str]], *, state: str | None = None
) -> tuple[int, int]:
    config_path = Path(scratch) / f"config-{len(processes)}.yaml"
    config_path.write_text(config)
    log_path = Path(scratch) / f"serve-{len(processes)}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_IMPACT_")}
    env["OTEL_IMPACT_HASH_KEY"] = "00" * 32
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [CLI, "serve", "--config", str(config_path), "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "none",
             "--admin", "127.0.0.1:0", *(["--state", state] if state else [])],
            stdout=log, stderr=subprocess.STDOUT, text=True, env=env, cwd=scratch,
        )  # fmt: skip
    processes.append(process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"otlp_grpc=[^ ]*:(\d+)", log_path.read_text())
        if match:
            return int(match.group(1)), process.pid
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"serve did not start:\n{log_path.read_text()}")


def measure(target: Target, warmup: float, duration: float) -> float:
    """Run the load against ``target``; returns server CPU µs per span (and records spans/s)."""
    load = subprocess.Popen(
        [sys.executable, __file__, "--role", "load", "--target", f"127.0.0.1:{target.port}",
         "--warmup", str(warmup), "--duration", str(duration)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert load.stdout is not None
    assert load.stdout.readline().strip() == "start"
    cpu0 = cpu_seconds(target.pid)
    helper0 = cpu_seconds(target.helper_pid) if target.helper_pid else 0.0
    _, count, seconds = load.stdout.readline().split()
    cpu1 = cpu_seconds(target.pid)
    helper1 = cpu_seconds(target.helper_pid) if target.helper_pid else 0.0
    load.wait(timeout=30)
    load.stdout.close()
    spans = max(int(count) * BATCH, 1)
    target.spans_per_s.append(spans / float(seconds))
    if target.helper_pid:
        target.helper_us.append((helper1 - helper0) * 1e6 / spans)
    time.sleep(0.3)  # let the queue drain before the next case
    return (cpu1 - cpu0) * 1e6 / spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short rounds, to check that it runs")
    parser.add_argument("--json", help="write the summary here")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--role", choices=["raw-server", "load"], help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "raw-server":
        role_raw_server()
        return
    if args.role == "load":
        role_load(args.target, args.warmup, args.duration)
        return

    rounds = args.rounds or (1 if args.quick else 5)
    duration = args.duration or (0.6 if args.quick else 5.0)
    warmup = 0.4 if args.quick else 1.5
    processes: list[subprocess.Popen[str]] = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            port, pid = start_raw_server(processes)
            targets = [Target("bare raw gRPC server (ceiling)", port, pid)]
            configs = {
                "serve, forwarding": "",
                "serve, no merging": "",
                "serve, pseudonymization on": "pseudonymization:\n  attributes: [enduser.id]\n",
                "serve, persistent queue": "",
            }
            for name, config in configs.items():
                downstream_port, downstream_pid = start_raw_server(processes)
                queue = "{max_batch_bytes: 0}" if name == "serve, no merging" else "{}"
                config += f"exporters:\n  - endpoint: grpc://127.0.0.1:{downstream_port}\n    queue: {queue}\n"
                state = str(Path(scratch) / "state") if name == "serve, persistent queue" else None
                serve_port, serve_pid = start_serve(config, scratch, processes, state=state)
                targets.append(Target(name, serve_port, serve_pid, downstream_pid))
            cases = [Case(t.name, lambda n: None) for t in targets]
            for _ in range(rounds):
                for target, case in zip(targets, cases, strict=True):
                    case.samples_us.append(measure(target, warmup, duration))
    finally:
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

    summary = report(f"Server CPU µs per span, {BATCH}-span batches over gRPC", cases, cases[0].name)
    ceiling = statistics.median(targets[0].spans_per_s)
    print("\n| case | spans/s (median) | throughput vs ceiling | spans/s per core (1/CPU) | downstream CPU µs/span |")
    print("|---|---|---|---|---|")
    extra = []
    for target, case in zip(targets, cases, strict=True):
        rate = statistics.median(target.spans_per_s)
        helper = f"{statistics.median(target.helper_us):.2f}" if target.helper_us else "-"
        per_core = 1e6 / case.median_us
        print(f"| {target.name} | {rate:,.0f} | {rate / ceiling:.2f}× | {per_core:,.0f} | {helper} |")
        extra.append(
            {
                "case": target.name,
                "spans_per_s": round(rate),
                "throughput_ratio": round(rate / ceiling, 3),
                "spans_per_s_per_core": round(per_core),
            }
        )
    summary["throughput"] = extra
    summary["throughput_ratio"] = extra[1]["throughput_ratio"]
    summary["cpu_capacity_ratio"] = round(cases[0].median_us / cases[1].median_us, 3)
    print(
        f"\nserve forwarding vs ceiling: throughput {summary['throughput_ratio']:.2f}×, "
        f"per-core capacity (CPU per span) {summary['cpu_capacity_ratio']:.2f}×"
    )
    write_json(summary, args.json)


if __name__ == "__main__":
    main()
