"""Running ``otel-impact serve`` as a subprocess for tests, and reading its /metrics."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from demo.child_processes import listening_ports, stop_process
from prometheus_client.parser import text_string_to_metric_families

from otel_impact.proto.prefilter import PURE_PYTHON_ENV

CLI = str(Path(sys.executable).parent / "otel-impact")


class Processor:
    """A running ``otel-impact serve``: its ports, process, log and metrics."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.ports: dict[str, int] = {}
        self.final_log: str | None = None

    def log(self) -> str:
        """Everything the process wrote so far (kept after it stopped)."""
        if self.final_log is not None:
            return self.final_log
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ports = listening_ports(self.log())
            if ports is not None:
                self.ports.update(ports)
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"otel-impact serve did not start (exit {self.process.poll()}):\n{self.log()}")

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['otlp_grpc']}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['otlp_http']}/v1/traces"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['admin']}"

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics as ``name{label="v",...}`` → value (labels sorted)."""
        with urllib.request.urlopen(self.admin_url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples

    def metric_sum(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples whose labels include ``labels``."""
        total = 0.0
        wanted = [f'{k}="{v}"' for k, v in labels.items()]
        for key, value in self.metrics().items():
            if key.split("{", 1)[0] == name and all(w in key for w in wanted):
                total += value
        return total

    def wait_for(self, predicate: object, timeout: float = 30.0, what: str = "condition") -> None:
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def terminate(self, timeout: float = 30.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@contextmanager
def serve(
    *args: str, env: Mapping[str, str] | None = None, config: str | None = None, state: str | None = None
) -> Iterator[Processor]:
    """Run ``otel-impact serve`` on free loopback ports with extra ``args``; stop it afterwards."""
    with tempfile.TemporaryDirectory() as scratch:
        argv: list[str] = [
            CLI,
            "serve",
            "--otlp-grpc",
            "127.0.0.1:0",
            "--otlp-http",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            *args,
        ]
        if config is not None:
            config_path = Path(scratch) / "config.yaml"
            config_path.write_text(config)
            argv += ["--config", str(config_path)]
        if state is not None:
            argv += ["--state", state]
        log_path = Path(scratch) / "serve.log"
        # The test's own OTEL_IMPACT_* settings stay out, but for the switch to the pure-Python
        # paths, which the suite's second pass sets for the processor too.
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_IMPACT_") or k == PURE_PYTHON_ENV}
        full_env.update(env or {})
        with open(log_path, "wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=scratch)
        processor = Processor(process, log_path)
        try:
            processor.wait_listening()
            yield processor
        finally:
            stop_process(process, timeout=30)
            processor.final_log = log_path.read_text(errors="replace")


def get_status(processor: Processor, path: str) -> tuple[int, Any]:
    """The status and JSON body of a GET on the admin API, whatever the status."""
    try:
        with urllib.request.urlopen(processor.admin_url + path, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def get_json(processor: Processor, path: str) -> Any:
    """GET ``path`` (with its query) from the processor's admin API, parsed."""
    with urllib.request.urlopen(processor.admin_url + path, timeout=10) as response:
        return json.load(response)


def forward_args(urls: Sequence[str]) -> list[str]:
    return [arg for url in urls for arg in ("--forward", url)]


EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TRANSPORTS = ("grpc", "http/protobuf", "http/json")
DROP_REASONS = ("permanent_error", "max_elapsed_time", "shutdown")


def books(processor: Processor, exporter: str) -> dict[str, float]:
    """The accounting terms for ``exporter`` from /metrics (one scrape)."""
    metrics = processor.metrics()

    def total(name: str, **labels: str) -> float:
        wanted = [f'{k}="{v}"' for k, v in labels.items()]
        return sum(v for k, v in metrics.items() if k.split("{", 1)[0] == name and all(w in k for w in wanted))

    return {
        "accepted": total("otel_impact_receiver_spans_total", outcome="accepted"),
        "rejected": total("otel_impact_receiver_spans_total", outcome="rejected"),
        "restored": total("otel_impact_queue_restored_spans_total", exporter=exporter),
        "sent": total("otel_impact_exporter_sent_spans_total", exporter=exporter),
        "dropped": total("otel_impact_exporter_dropped_spans_total", exporter=exporter),
        "queued": total("otel_impact_queue_spans", exporter=exporter),
        "redelivered": total("otel_impact_queue_redelivered_spans_total", exporter=exporter),
        "retried": total("otel_impact_exporter_retried_spans_total", exporter=exporter),
    }


def assert_books_balance(processor: Processor, exporter: str) -> dict[str, float]:
    """received (accepted) + restored = forwarded + dropped + still queued, for ``exporter``."""
    terms = books(processor, exporter)
    left = terms["accepted"] + terms["restored"]
    right = terms["sent"] + terms["dropped"] + terms["queued"]
    assert left == right, f"accounting does not balance for {exporter}: {terms}"
    return terms


def grpc_export(port: int, body: bytes, metadata: Sequence[tuple[str, str]] = (), timeout: float = 10) -> None:
    """One raw OTLP/gRPC Export call; raises ``grpc.RpcError`` when refused."""
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", -1)]) as channel:
        channel.unary_unary(EXPORT_METHOD)(body, timeout=timeout, metadata=tuple(metadata) or None)


def state_begun(directory: Path, seconds_ago: float, config: str) -> None:
    """Make ``directory`` the ``--state`` of a processor that began watching ``seconds_ago`` and
    saw no event since: one restored from it has that history, so a window of the last hour is
    covered and its answers are complete, with upper bounds (a fresh processor's are not)."""
    with serve(config=config, state=str(directory)):
        pass  # stopping writes the checkpoint
    begun = time.time_ns() - int(seconds_ago * 1e9)
    db = sqlite3.connect(directory / "sli" / "sli-state.sqlite")
    try:
        with db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'coverage_start_ns'", (str(begun),))
    finally:
        db.close()
