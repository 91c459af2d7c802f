"""A newcomer's first start: a busy port is one line naming the server and the address (exit 1),
with no raw gRPC core log line and no drain message; unknown variables are warned about; a
config the ``sli`` section proves wrong is refused; ``check-config`` takes its file once."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest
from support.processor import CLI

SERVERS = {"--otlp-grpc": "OTLP/gRPC", "--otlp-http": "OTLP/HTTP", "--admin": "admin"}
GRPC_CORE_LINE = re.compile(r"^[EWID]\d{4} |add_port\.cc", re.MULTILINE)


def run(*argv: str, environ: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(environ or {})},
    )


@pytest.mark.parametrize("flag", sorted(SERVERS))
def test_a_port_in_use_is_one_line_naming_the_server_and_the_address(flag: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        argv = {"--otlp-grpc": "127.0.0.1:0", "--otlp-http": "127.0.0.1:0", "--admin": "127.0.0.1:0", flag: address}
        result = run("serve", *(part for pair in argv.items() for part in pair))
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"otel-impact serve: cannot start: cannot listen on {address} for {SERVERS[flag]}: address already in use "
        f"(choose another with {flag} or stop the other process)"
    ]
    assert not GRPC_CORE_LINE.search(result.stderr)
    assert "delivered" not in result.stderr + result.stdout and "drain" not in result.stderr + result.stdout


def test_serve_warns_once_about_an_unknown_variable() -> None:
    with socket.socket() as holder:  # a busy port ends the start at once, after the config is read
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        result = run(
            "serve", "--otlp-grpc", address, "--otlp-http", "none", "--admin", "none",
            environ={"OTEL_IMPACT_FORWRD": "grpc://collector:4317"},
        )  # fmt: skip
    assert result.returncode == 1
    warnings = [line for line in result.stderr.splitlines() if "OTEL_IMPACT_FORWRD" in line]
    assert warnings == [
        "otel-impact: warning: OTEL_IMPACT_FORWRD is not a variable otel-impact reads (ignored); "
        "did you mean OTEL_IMPACT_FORWARD?"
    ]


def test_serve_refuses_an_slo_the_sli_section_cannot_count(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "sli:\n  dimensions: [{name: tier, attribute: impact.customer.tier}]\n"
        "  tasks: [{name: checkout, latency_thresholds: [300ms]}]\n"
        "slos:\n  - {name: a, task: checkout, objective: 99, by: [region]}\n"
        "  - {name: b, task: checkout, objective: 99, sli: {kind: latency, threshold_seconds: 0.5}}\n"
    )
    result = run(
        "serve", "--config", str(config), "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "none", "--admin", "none"
    )
    assert result.returncode == 2
    assert "slos[0].by[0]: dimension 'region' is not defined in sli.dimensions (it has: tier)" in result.stderr
    assert "Fix: add 0.5s to sli.tasks[0].latency_thresholds or use one of 0.3s" in result.stderr
    checked = run("check-config", str(config))
    assert (
        checked.returncode == 2
        and "slos[0].by[0]" in checked.stderr
        and "slos[1].sli.threshold_seconds" in checked.stderr
    )


def test_check_config_takes_its_file_as_an_argument_only(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("exporters: [grpc://collector:4317]\n")
    assert run("check-config", str(config)).returncode == 0
    both = run("check-config", str(config), "--config", str(config))
    assert both.returncode == 2 and "unrecognized arguments: --config" in both.stderr
    flag_only = run("check-config", "--config", str(config))
    assert flag_only.returncode == 2
