"""Running ``otel-impact serve`` as a subprocess for tests, and reading its /metrics."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

CLI = str(Path(sys.executable).parent / "otel-impact")
_LISTENING = re.compile(r"listening: (.*)$", re.MULTILINE)


class Processor:
    """A running ``otel-impact serve``: its ports, process, log and metrics."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path
        self.ports: dict[str, int] = {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.log())
            if match:
                for part in match.group(1).split():
                    name, _, address = part.partition("=")
                    self.ports[name] = int(address.rsplit(":", 1)[1])
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
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_IMPACT_")}
        full_env.update(env or {})
        with open(log_path, "wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=scratch)
        processor = Processor(process, log_path)
        try:
            processor.wait_listening()
            yield processor
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)


def forward_args(urls: Sequence[str]) -> list[str]:
    return [arg for url in urls for arg in ("--forward", url)]
