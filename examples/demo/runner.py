"""Running the demo: the processor, two services, the traffic and the live view; Ctrl-C stops all."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from demo.child_processes import listening_ports, stop_process
from demo.table import render
from demo.traffic import Traffic, make_customers
from otel_impact.processors.cli._admin_client import AdminConnection, AdminError

CONFIG = """\
sli:
  dimensions:
    - {name: tier, attribute: impact.customer.tier}
    - {name: new_checkout, flag: new_checkout}
slos:
  - name: checkout-availability
    task: checkout
    by: [tier]
    objective: 99.5
    window: 30d
    team: payments
    route: payments-oncall
    runbook: https://runbooks.example.com/checkout
alerting:
  evaluation_interval: 5s
dashboard:
  refresh: 5s
  default_window: 5m
  runbooks:
    checkout: https://runbooks.example.com/checkout
"""


@dataclass(frozen=True)
class DemoOptions:
    duration: float | None
    rate: float
    customers: int
    fault_rate: float
    admin_port: int
    refresh: float


class Demo:
    """Owns the demo's processes and scratch directory; `stop` is safe to call twice."""

    def __init__(self, options: DemoOptions, out: TextIO) -> None:
        self.options = options
        self.out = out
        self.workdir = Path(tempfile.mkdtemp(prefix="otel-impact-demo-"))
        examples = str(Path(__file__).resolve().parent.parent)  # demo.services runs as a module from here
        path = os.pathsep.join(p for p in (examples, os.environ.get("PYTHONPATH", "")) if p)
        self.env = {**os.environ, "OTEL_IMPACT_HASH_KEY": secrets.token_hex(32), "PYTHONPATH": path}
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.traffic: Traffic | None = None
        self.admin_url = ""

    # -- start -----------------------------------------------------------------------------------
    def start(self) -> None:
        config = self.workdir / "config.yaml"
        config.write_text(CONFIG)
        admin_port = self.options.admin_port if _port_free(self.options.admin_port) else 0
        log = self.workdir / "processor.log"
        serve = [sys.executable, "-m", "otel_impact.processors.cli", "serve", "--config", str(config)]
        serve += ["--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0", "--admin", f"127.0.0.1:{admin_port}"]
        self._spawn("processor", [*serve, "--state", str(self.workdir / "state")], log)
        ports = self._wait_listening(log)
        self.admin_url = f"http://127.0.0.1:{ports['admin']}"
        otlp = f"http://127.0.0.1:{ports['otlp_grpc']}"
        payments = self._service("payments", ["--otlp", otlp, "--fault-rate", str(self.options.fault_rate)])
        checkout = self._service(
            "checkout", ["--otlp", otlp, "--payments", f"http://127.0.0.1:{payments}/pay"], trust=False
        )
        self.traffic = Traffic(
            f"http://127.0.0.1:{checkout}/checkout", make_customers(self.options.customers), self.options.rate
        )
        self.traffic.start()

    def _spawn(
        self, name: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with open(log, "wb") as handle:
            process = subprocess.Popen(
                list(argv),
                stdout=subprocess.PIPE if name != "processor" else handle,
                stderr=handle,
                env=env or self.env,
                cwd=self.workdir,  # not the caller's directory: a source checkout there would shadow the package
                start_new_session=True,  # Ctrl-C reaches the demo only; it stops the others in order
            )
        self.processes.append((name, process))
        return process

    def _service(self, name: str, args: Sequence[str], *, trust: bool = True) -> int:
        env = {**self.env, "OTEL_IMPACT_TRUST_INCOMING_BAGGAGE": "true" if trust else "false"}
        argv = [sys.executable, "-m", "demo.services", name, *args]
        process = self._spawn(name, argv, self.workdir / f"{name}.log", env)
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        if not first.isdigit():
            raise RuntimeError(f"the {name} service did not start; see {self.workdir / f'{name}.log'}")
        return int(first)

    def _wait_listening(self, log: Path, timeout: float = 30.0) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ports = listening_ports(log.read_text(errors="replace"))
            if ports is not None:
                return ports
            if self.processes[0][1].poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the processor did not start:\n{log.read_text(errors='replace')[-2000:]}")

    # -- run -------------------------------------------------------------------------------------
    def show(self, started: float) -> None:
        impact: dict[str, Any] | None
        slos: dict[str, Any] | None
        admin = AdminConnection(self.admin_url, timeout=5)
        try:
            impact = admin.get_json(
                "/api/v1/impact", [("task", "checkout"), ("window", "5m"), ("by", "tier"), ("by", "flag:new_checkout")]
            )
            slos = admin.get_json("/api/v1/slos")
        except AdminError:
            impact = slos = None
        traffic = self.traffic
        text = render(
            impact,
            slos,
            dashboard_url=f"{self.admin_url}/",
            sent=traffic.sent if traffic else 0,
            failed=traffic.failed if traffic else 0,
            uptime=_duration(time.monotonic() - started),
        )
        if self.out.isatty():
            self.out.write("\x1b[H\x1b[2J")
        else:
            self.out.write("\n")
        self.out.write(text)
        self.out.flush()

    # -- stop ------------------------------------------------------------------------------------
    def stop(self) -> None:
        if self.traffic is not None:
            self.traffic.stop()
            self.traffic = None
        for _, process in reversed(self.processes):  # checkout, payments, then the processor
            stop_process(process, timeout=20)
            if process.stdout is not None:
                process.stdout.close()
        self.processes.clear()

    def cleanup(self, keep: bool) -> None:
        if keep:
            self.out.write(f"logs and state kept in {self.workdir}\n")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)


def run_demo(options: DemoOptions, out: TextIO | None = None, *, keep: bool = False) -> int:
    """Run until ``options.duration`` seconds pass or Ctrl-C; 0 on a clean stop, 1 if it could not start."""
    out = out or sys.stdout
    demo = Demo(options, out)
    started = time.monotonic()
    try:
        demo.start()
        out.write(f"otel-impact demo running. Dashboard: {demo.admin_url}/\n")
        out.flush()
        while options.duration is None or time.monotonic() - started < options.duration:
            time.sleep(options.refresh)
            demo.show(started)
    except KeyboardInterrupt:
        out.write("\nstopping…\n")
    except RuntimeError as error:
        out.write(f"otel-impact demo: {error}\n")
        demo.stop()
        demo.cleanup(keep=True)
        return 1
    finally:
        demo.stop()
    out.write("demo stopped: traffic, services and processor are down.\n")
    demo.cleanup(keep)
    return 0


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
