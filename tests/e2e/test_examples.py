"""``otel-impact check-config`` passes on every YAML example in ``examples/``, run as a newcomer
would run it from a clone: no file outside the repository, only the variables the example names."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.check_config import SECTIONS
from support.paths import ROOT
from support.processor import CLI

EXAMPLES = ROOT / "examples"
KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
ENVIRONMENT = {
    "browser.yaml": {},
    "sidecar.yaml": {},
    "gateway.yaml": {
        "OTEL_IMPACT_INGEST_TOKEN": "ingest",
        "OTEL_IMPACT_ADMIN_TOKEN": "admin",
        "OTEL_IMPACT_HASH_KEY": KEY,
    },
}


def check_config(path: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "check-config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **environ},
    )


@pytest.mark.parametrize("name", sorted(ENVIRONMENT))
def test_check_config_passes_on_the_example(name: str) -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.yaml")) == sorted(ENVIRONMENT)
    result = check_config(EXAMPLES / name, ENVIRONMENT[name])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no warning either
    lines = result.stdout.splitlines()
    assert lines[0] == f"ok: {EXAMPLES / name}"
    assert [line.split(":", 1)[0].strip() for line in lines[1:]] == list(SECTIONS)


def test_the_gateway_summary_and_its_tokens() -> None:
    result = check_config(EXAMPLES / "gateway.yaml", ENVIRONMENT["gateway.yaml"])
    assert "receivers: otlp-grpc 0.0.0.0:4317 (token), otlp-http 0.0.0.0:4318 (token)" in result.stdout
    assert "slos: checkout-availability, checkout-latency" in result.stdout
    assert "alerting: alertmanager alertmanager:9093" in result.stdout
    assert "ingest" not in result.stdout + result.stderr
    unset = check_config(EXAMPLES / "gateway.yaml", {"OTEL_IMPACT_HASH_KEY": KEY})
    assert unset.returncode == 2
    assert (
        "receivers.grpc.auth.bearer_token: refers to ${env:OTEL_IMPACT_INGEST_TOKEN}, but OTEL_IMPACT_INGEST_TOKEN "
        "is not set. Fix: set OTEL_IMPACT_INGEST_TOKEN or write the value in the file"
    ) in unset.stderr
    assert "receivers.http.auth.bearer_token" in unset.stderr and "admin.auth.bearer_token" in unset.stderr
