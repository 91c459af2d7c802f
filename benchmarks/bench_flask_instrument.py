"""Flask hello-world under ``opentelemetry-instrument``, with and without otel-impact, in the same run.

Three server processes run the same app (`_flask_hello.py`: Flask on werkzeug, one thread,
keep-alive) under ``opentelemetry-instrument`` with opentelemetry-distro, exporting every span
over OTLP/HTTP to a receiver that discards it:

* ``without otel-impact``: otel-impact installed but switched off
  (``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otel_impact``), the baseline;
* ``otel-impact, header extraction``: customer and tier read from headers on every request
  (1,000 distinct customers), pseudonymized, put in context and baggage, stamped on the span;
* ``otel-impact, no extraction``: only the span processor, PII guard and baggage filter.

This process is the load generator: one keep-alive connection per server, requests one after
the other, every request carrying the same customer headers whichever server gets it. Rounds
alternate between the servers. Reported per request: the client-observed time (the inverse of
requests/s) and the server process's CPU time (from /proc), each as the median of paired-round
ratios to the baseline, with the minimum and maximum of those ratios. Server CPU is read in
nanoseconds from schedstat and counted from a round's start to the next round's start of the same
server, so a round owns the export of its own spans; a round is a multiple of the batch
processor's 512-span batch, so every round exports the same number of full batches. The load
average is printed before and after: the load generator and anything else on the machine share
its cores with the servers.

With ``--instructions`` (valgrind installed) it counts instead the instructions per request of
each case, every thread of the server included: ``server`` serves the requests on the socket as
above; ``in-process`` (the default) calls the app in-process (no socket, no HTTP parsing: a
smaller denominator, so larger ratios than the server's). The count does not depend on the
machine's load, which the timings do.

    python benchmarks/bench_flask_instrument.py [--quick] [--json FILE] [--instructions [{in-process,server}]]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from _harness import Case, measure, report, write_json

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
KEY = "5f1e0c7a9b3d2e4f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7"  # benchmark-only key
TIERS = ("free", "pro", "enterprise")


class _Discard(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def otlp_discard() -> Iterator[str]:
    """An OTLP/HTTP receiver that accepts and drops everything; yields its traces URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Discard)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    finally:
        server.shutdown()
        server.server_close()


def server_env(traces_url: str, extra_env: dict[str, str]) -> dict[str, str]:
    """The environment of a benchmark server: this one without ``OTEL_*``, plus the case's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(
        {
            "OTEL_SERVICE_NAME": "bench-flask",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": traces_url,
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_IMPACT_HASH_KEY": KEY,
            **extra_env,
        }
    )
    return env


@contextmanager
def flask_server(traces_url: str, extra_env: dict[str, str]) -> Iterator[tuple[int, int]]:
    """Run the app under opentelemetry-instrument; yield (port, pid)."""
    env = server_env(traces_url, extra_env)
    command = [str(BIN / "opentelemetry-instrument"), sys.executable, str(HERE / "_flask_hello.py")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=HERE)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"the benchmark server did not start: {line!r}")
        yield int(line), process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid``'s live threads so far, in ns steps (Linux ``/proc/PID/task/*/schedstat``),
    or from ``/proc/PID/stat`` in clock ticks when schedstat is missing; NaN elsewhere."""
    tasks = Path(f"/proc/{pid}/task")
    try:
        return sum(int((task / "schedstat").read_text().split()[0]) for task in tasks.iterdir()) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return float("nan")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServerLoad:
    """``run(n)``: n sequential keep-alive requests with customer headers to one server.

    The server's CPU time is read when each round starts. A round's CPU is what the server used
    from its start to the start of its next round (`finish` takes the last reading), so the
    export of the round's spans, which the batch processor does on its own thread and may finish
    while another server is being loaded, is counted in the round that made them.
    """

    def __init__(self, port: int, pid: int) -> None:
        self.pid = pid
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.counter = 0
        self.round_starts: list[tuple[float, int]] = []  # (CPU seconds, requests so far)

    def run(self, n: int) -> None:
        self.round_starts.append((cpu_seconds(self.pid), self.counter))
        connection = self.connection
        for _ in range(n):
            i = self.counter = self.counter + 1
            headers = {"X-Customer-Id": f"customer-{i % 1000}", "X-Customer-Tier": TIERS[i % 3]}
            connection.request("GET", "/", headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")

    def finish(self) -> list[float]:
        """Server CPU µs per request of each round, the warm-up's included."""
        readings = [*self.round_starts, (cpu_seconds(self.pid), self.counter)]
        return [
            (cpu_after - cpu_before) / (done_after - done_before) * 1e6
            for (cpu_before, done_before), (cpu_after, done_after) in itertools.pairwise(readings)
        ]


CASES = {
    "without otel-impact": {"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "otel_impact"},
    "otel-impact, header extraction": {
        "OTEL_IMPACT_CUSTOMER_HEADER": "X-Customer-Id",
        "OTEL_IMPACT_TIER_HEADER": "X-Customer-Tier",
    },
    "otel-impact, no extraction": {},
}


def instructions(traces_url: str, extra_env: dict[str, str], n: int, mode: str) -> int:
    """Instructions (callgrind's Ir, every thread) of the app under opentelemetry-instrument for
    512 warm-up requests and then ``n``, every span exported: called in-process (``in-process``)
    or served on its socket to this process (``server``), which then asks it to stop."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--trace-children=yes",  # opentelemetry-instrument execs the interpreter
        "--callgrind-out-file=/dev/null",
        str(BIN / "opentelemetry-instrument"),
        sys.executable,
        str(HERE / "_flask_hello.py"),
        *(["--drive", str(n)] if mode == "in-process" else ["--until-stop"]),
    ]
    env = server_env(traces_url, extra_env)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=HERE)
    assert process.stdout is not None and process.stderr is not None
    if mode == "server":
        port = int(process.stdout.readline().strip())
        served = ServerLoad(port, process.pid)
        served.run(512 + n)
        served.connection.request("GET", "/stop")
        served.connection.getresponse().read()
        served.connection.close()
    stderr = process.communicate(timeout=3600)[1]
    counts = re.findall(r"Collected : (\d+)", stderr)
    if process.returncode != 0 or not counts:
        raise RuntimeError(f"callgrind failed: {stderr[-500:]}")
    return sum(int(count) for count in counts)


def count_instructions(mode: str, quick: bool) -> None:
    """Instructions per request of each case: the difference of two runs, 512 and 1,536 requests
    after the warm-up, over 1,024 (start-up and warm-up cancel). Deterministic: the machine's
    load does not move it."""
    low, high = (512, 1024) if quick else (512, 1536)
    per_request: dict[str, float] = {}
    with otlp_discard() as traces_url:
        for name, extra_env in CASES.items():
            counts = [instructions(traces_url, extra_env, n, mode) for n in (low, high)]
            per_request[name] = (counts[1] - counts[0]) / (high - low)
    base = per_request["without otel-impact"]
    print(f"\nFlask hello-world under opentelemetry-instrument, {mode} (instructions per request)\n")
    print("| case | instructions/request | ratio |")
    print("|---|---|---|")
    for name, value in per_request.items():
        print(f"| {name} | {value:,.0f} | {value / base:.3f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few short rounds, to check that it runs")
    parser.add_argument("--json", help="write the summary here")
    parser.add_argument(
        "--instructions",
        nargs="?",
        const="in-process",
        choices=("in-process", "server"),
        help="count instructions per request under valgrind's callgrind instead: the app called in-process "
        "(the default) or served on its socket",
    )
    args = parser.parse_args()
    if args.instructions:
        count_instructions(args.instructions, args.quick)
        return
    requests_per_round, rounds = (256, 3) if args.quick else (1024, 31)
    load_before = [round(value, 2) for value in os.getloadavg()]
    print(f"load average (1, 5, 15 min) at the start: {load_before}")

    with ExitStack() as stack:
        traces_url = stack.enter_context(otlp_discard())
        cases: list[Case] = []
        loads: dict[str, ServerLoad] = {}
        for name, extra_env in CASES.items():
            port, pid = stack.enter_context(flask_server(traces_url, extra_env))
            loads[name] = ServerLoad(port, pid)
            cases.append(Case(name, loads[name].run))
        measure(cases, operations=requests_per_round, rounds=rounds, warmup=1)
        time.sleep(0.5)  # the last round's exports finish
        cpu = {name: server.finish() for name, server in loads.items()}

    baseline = "without otel-impact"
    base_case = next(case for case in cases if case.name == baseline)
    time_spread = {
        case.name: spread([c / b for c, b in zip(case.samples_us, base_case.samples_us, strict=True)]) for case in cases
    }
    cpu_spread = {  # the first sample is the warm-up round; a round too short for one clock tick is skipped
        name: spread([c / b for c, b in zip(samples[1:], cpu[baseline][1:], strict=True) if b] or [1.0])
        for name, samples in cpu.items()
    }
    extra = {
        "requests_per_round": requests_per_round,
        "rounds": rounds,
        "load_average_at_start": load_before,
        "requests_per_second": {case.name: round(1e6 / case.median_us) for case in cases},
        "server_cpu_us_per_request": {name: round(statistics.median(s[1:]), 1) for name, s in cpu.items()},
        "server_cpu_ratio_to_baseline": {name: ratios[1] for name, ratios in cpu_spread.items()},
        "time_ratio_min_median_max": time_spread,
        "server_cpu_ratio_min_median_max": cpu_spread,
    }
    summary = report("Flask hello-world under opentelemetry-instrument (µs per request)", cases, baseline, extra=extra)
    print(
        "\n| case | requests/s | time ratio min / median / max | server CPU µs/request "
        "| server CPU ratio min / median / max |"
    )
    print("|---|---|---|---|---|")
    for case in cases:
        print(
            f"| {case.name} | {extra['requests_per_second'][case.name]} | {_triple(time_spread[case.name])} | "
            f"{extra['server_cpu_us_per_request'][case.name]} | {_triple(cpu_spread[case.name])} |"
        )
    write_json(summary, args.json)


def spread(ratios: list[float]) -> tuple[float, float, float]:
    """Minimum, median and maximum of per-round ratios, rounded to 3 places."""
    return (round(min(ratios), 3), round(statistics.median(ratios), 3), round(max(ratios), 3))


def _triple(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{value:.3f}×" for value in values)


if __name__ == "__main__":
    main()
