"""Mixed load: do gRPC and HTTP senders each get their share of one ``otel-impact serve``?

One ``serve`` (no downstream, default config) on loopback; N gRPC senders and N HTTP senders,
each a separate load process sending small OTLP/protobuf requests (10 spans) back to back with
``--clients`` calls in flight. Phases of ``--duration`` seconds after a warm-up: gRPC alone,
HTTP alone (twice each) and both at once (``--rounds`` times); the machine's load drifts, so
each figure is the median over its phases. Reported per transport: requests/s and the median
latency, alone and mixed, and the mixed-load share (gRPC requests per HTTP request, the median
of the rounds). The ratio column is the median latency against gRPC alone in the same run.
Two servers, measured in interleaved rounds: one ``serve`` (both transports on one event loop),
and ``serve --workers 2`` with ``receivers.separate_grpc`` (HTTP on the main process, gRPC on
the extra one).

Usage::

    python benchmarks/bench_intake_fairness.py [--quick] [--json FILE] [--clients N] [--duration S] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import Case, report, write_json

CLI = str(Path(sys.executable).parent / "otel-impact")
METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def role_load(transport: str, port: int, clients: int, warmup: float, duration: float) -> None:
    """Send for ``warmup`` s, then ``duration`` s more; print ``{"ok": n, "seconds": s, "p50_ms": m}``."""
    import aiohttp  # noqa: PLC0415
    from grpc import aio  # noqa: PLC0415
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: PLC0415
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: PLC0415
    from opentelemetry.proto.trace.v1.trace_pb2 import Span  # noqa: PLC0415

    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    for number in range(1, 11):
        spans.append(
            Span(
                trace_id=number.to_bytes(16, "big"),
                span_id=number.to_bytes(8, "big"),
                name="GET /checkout",
                kind=2,
                start_time_unix_nano=1_700_000_000_000_000_000,
                end_time_unix_nano=1_700_000_000_001_000_000,
                attributes=[KeyValue(key="http.route", value=AnyValue(string_value="/checkout"))],
            )
        )
    body = request.SerializeToString()

    async def run() -> None:
        latencies: list[float] = []
        measuring = False
        stop = False
        channel = aio.insecure_channel(f"127.0.0.1:{port}")
        call = channel.unary_unary(METHOD)
        session = aiohttp.ClientSession()
        url = f"http://127.0.0.1:{port}/v1/traces"

        async def send() -> None:
            if transport == "grpc":
                await call(body, timeout=30)
            else:
                async with session.post(url, data=body, headers={"Content-Type": "application/x-protobuf"}) as reply:
                    await reply.read()
                    reply.raise_for_status()

        async def worker() -> None:
            while not stop:
                started = time.perf_counter()
                await send()
                if measuring:
                    latencies.append(time.perf_counter() - started)

        tasks = [asyncio.create_task(worker()) for _ in range(clients)]
        await asyncio.sleep(warmup)
        measuring, began = True, time.monotonic()
        await asyncio.sleep(duration)
        measuring, seconds = False, time.monotonic() - began
        stop = True
        await asyncio.gather(*tasks)
        await session.close()
        await channel.close()
        p50 = statistics.median(latencies) * 1000 if latencies else 0.0
        print(json.dumps({"ok": len(latencies), "seconds": seconds, "p50_ms": p50}), flush=True)

    asyncio.run(run())


SEPARATE = "serve --workers 2, separate_grpc"
SERVERS = ("serve", SEPARATE)
"""One process serving both transports (the default), and the main process serving OTLP/HTTP
while an extra intake process serves OTLP/gRPC (``receivers.separate_grpc``)."""


def start_serve(scratch: str, name: str) -> tuple[subprocess.Popen[str], dict[str, int]]:
    log_path = Path(scratch) / f"serve-{SERVERS.index(name)}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_IMPACT_")}
    extra: list[str] = []
    if name == SEPARATE:
        config = Path(scratch) / "separate.yaml"
        config.write_text("receivers:\n  separate_grpc: true\n")
        extra = ["--workers", "2", "--config", str(config)]
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [CLI, "serve", "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0", "--admin", "none", *extra],
            stdout=log, stderr=subprocess.STDOUT, text=True, env=env, cwd=scratch,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log_path.read_text()
        ports = dict(re.findall(r"(otlp_grpc|otlp_http)=[^ ]*:(\d+)", text))
        if len(ports) == 2:
            return process, {name: int(port) for name, port in ports.items()}
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"serve did not start:\n{log_path.read_text()}")


def phase(transports: list[str], ports: dict[str, int], clients: int, warmup: float, duration: float) -> dict[str, Any]:
    """Run one load process per transport at once; their results by transport."""
    loads = {
        transport: subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--role",
                transport,
                str(ports[f"otlp_{transport}"]),
                str(clients),
                str(warmup),
                str(duration),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for transport in transports
    }
    results = {}
    for transport, process in loads.items():
        out, _ = process.communicate(timeout=warmup + duration + 120)
        if process.returncode != 0:
            raise RuntimeError(f"the {transport} load failed")
        results[transport] = json.loads(out.strip().splitlines()[-1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short phases, to check that it runs")
    parser.add_argument("--json", help="write the summary here")
    parser.add_argument("--clients", type=int, default=16, help="calls in flight per transport")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per phase")
    parser.add_argument("--rounds", type=int, default=5, help="mixed-load rounds per server (interleaved)")
    parser.add_argument("--role", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        transport, port, clients, warmup, duration = args.role
        role_load(transport, int(port), int(clients), float(warmup), float(duration))
        return
    clients, warmup, duration = (4, 0.5, 1.0) if args.quick else (args.clients, 1.0, args.duration)
    rounds = 1 if args.quick else args.rounds
    samples: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        servers = {name: start_serve(scratch, name) for name in SERVERS}
        try:
            for index in range(rounds):  # interleaved: the machine's load drifts between rounds
                for name, (_, ports) in servers.items():
                    kinds = (["grpc"], ["http"], ["grpc", "http"]) if index < 2 else (["grpc", "http"],)
                    for transports in kinds:
                        label = "mixed" if len(transports) == 2 else "alone"
                        for transport, result in phase(transports, ports, clients, warmup, duration).items():
                            samples.setdefault(f"{name}: {transport} {label}", []).append(result)
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(timeout=30)
    cases = []
    figures: dict[str, Any] = {}
    for name, results in samples.items():
        case = Case(name, lambda n: None)
        case.samples_us.append(max(statistics.median(r["p50_ms"] for r in results) * 1000, 1e-3))
        cases.append(case)
        figures[name] = {
            "requests_per_s": round(statistics.median(r["ok"] / r["seconds"] for r in results), 1),
            "p50_ms": round(statistics.median(r["p50_ms"] for r in results), 2),
            "rounds": len(results),
        }
    shares = {
        name: round(
            statistics.median(
                g["ok"] / max(h["ok"], 1)
                for g, h in zip(samples[f"{name}: grpc mixed"], samples[f"{name}: http mixed"], strict=True)
            ),
            3,
        )
        for name in SERVERS
    }
    print(f"\n{clients} calls in flight per transport, small protobuf requests (10 spans); medians over rounds\n")
    print("| server | transport | alone: requests/s | alone: p50 ms | mixed: requests/s | mixed: p50 ms |")
    print("|---|---|---|---|---|---|")
    for server in SERVERS:
        for transport in ("grpc", "http"):
            alone, mixed_figure = figures[f"{server}: {transport} alone"], figures[f"{server}: {transport} mixed"]
            print(
                f"| {server} | {transport} | {alone['requests_per_s']:.0f} | {alone['p50_ms']:.1f} "
                f"| {mixed_figure['requests_per_s']:.0f} | {mixed_figure['p50_ms']:.1f} |"
            )
    for server, share in shares.items():
        print(f"{server}: gRPC requests per HTTP request under mixed load (median of rounds): {share:.2f}")
    summary = report(
        "p50 latency in µs per request, ratio to gRPC alone",
        cases,
        "serve: grpc alone",
        extra={"figures": figures, "grpc_per_http_mixed": shares, "clients": clients, "duration_s": duration},
    )
    write_json(summary, args.json)


if __name__ == "__main__":
    main()
