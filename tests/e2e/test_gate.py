"""The canary gate against a running processor: CLI exit codes and the JSON verdict."""

from __future__ import annotations

import subprocess

from support.oncall import PER_VERSION
from support.processor import CLI, Processor, get_json


def gate(processor: Processor, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "gate", "--admin", processor.admin_url, "--task", "checkout", "--window", "5m", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_failing_canary_fails_the_gate(fed: tuple[Processor, float]) -> None:
    processor, _ = fed
    result = gate(processor, "--baseline", "service.version=1.4", "--canary", "service.version=1.5")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("FAIL")
    assert f"failed {PER_VERSION // 3} of {PER_VERSION}" in result.stdout  # the canary's numbers
    assert "Newcombe" in result.stdout
    answer = get_json(
        processor, "/api/v1/gate?task=checkout&window=5m&baseline=service.version=1.4&canary=service.version=1.5"
    )
    assert answer["verdict"] == "fail" and answer["exit_code"] == 1
    success = answer["signals"][0]
    assert success["canary"] == {"failures": 150, "total": 450, "rate": 150 / 450}
    assert success["baseline"]["failures"] == 0 and success["lower"] > 0.25


def test_the_same_release_passes_with_a_tolerance_the_data_can_confirm(fed: tuple[Processor, float]) -> None:
    processor, _ = fed
    result = gate(
        processor,
        "--baseline",
        "version=1.4",  # the dimension's name works as well as its attribute
        "--canary",
        "service.version=1.4",
        "--max-degradation",
        "0.03",
        "--max-latency-degradation",
        "0.03",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("PASS")


def test_too_little_data_is_inconclusive(fed: tuple[Processor, float]) -> None:
    processor, _ = fed
    result = gate(processor, "--baseline", "version=1.4", "--canary", "version=1.5", "--min-events", "5000")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.startswith("INCONCLUSIVE") and "too few events" in result.stdout


def test_an_unknown_dimension_is_an_error_that_says_how_to_fix_it(fed: tuple[Processor, float]) -> None:
    processor, _ = fed
    result = gate(processor, "--baseline", "k8s.pod.name=a", "--canary", "k8s.pod.name=b")
    assert result.returncode == 3
    assert "k8s.pod.name" in result.stderr and "sli.dimensions" in result.stderr
    missing = gate(processor, "--baseline", "version", "--canary", "version=1.5")
    assert missing.returncode == 3 and "DIMENSION=VALUE" in missing.stderr


def test_an_unreachable_processor_is_an_error_not_a_verdict() -> None:
    result = subprocess.run(
        [CLI, "gate", "--admin", "127.0.0.1:9", "--timeout", "2", "--task", "t", "--baseline", "a=1", "--canary", "a"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3 and "cannot read" in result.stderr
