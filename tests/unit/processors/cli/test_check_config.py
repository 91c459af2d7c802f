"""``otel-impact check-config FILE``: the file is positional only, the summary names every section,
unknown variables are warned about, cross-section problems are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.check_config import SECTIONS

from otel_impact.processors.cli import main

CONFIG = """\
exporters: [grpc://collector:4317]
sli:
  dimensions: [{name: tier, attribute: impact.customer.tier}]
  tasks: [{name: checkout}]
slos:
  - {name: checkout-availability, task: checkout, objective: 99.9, by: [tier]}
alerting:
  alertmanager: {urls: ['http://user:pass@alertmanager:9093']}
  webhooks: [{url: 'https://hooks.example.com/secret-path'}]
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_IMPACT_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def test_the_summary_names_every_section_it_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CONFIG)
    assert main(["check-config", path]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {path}\n")
    sections = [line.split(":", 1)[0].strip() for line in out.splitlines()[1:]]
    assert sections == list(SECTIONS)
    assert "shared_state: none (answers cover this process's spans)" in out
    assert "receivers: otlp-grpc localhost:4317, otlp-http localhost:4318" in out
    assert "forward: grpc://collector:4317 (grpc)" in out
    assert (
        "sli: tasks checkout (+ any impact.task.name); dimensions tier; propagation edges from 6.25% of traces" in out
    )
    assert "slos: checkout-availability" in out
    assert "analysis: 1 worker process, 64 MiB buffered each" in out
    assert (
        "explain: the dimensions, flags, 12 common attributes and up to 24 found automatically; "
        "at most 20 values per attribute, 256 per task (answers cover this process's events)"
    ) in out
    assert "alerting: alertmanager alertmanager:9093, webhook hooks.example.com" in out
    assert "pass" not in out and "secret-path" not in out  # user info and paths may hold secrets


def test_the_file_is_given_once_as_an_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CONFIG)
    with pytest.raises(SystemExit) as exited:
        main(["check-config", path, "--config", path])
    assert exited.value.code == 2
    assert "unrecognized arguments: --config" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["check-config", "--config", path])
    assert main(["check-config", path, "--forward", "http://other:4318"]) == 0  # overrides still apply
    assert "forward: http://other:4318 (http)" in capsys.readouterr().out


def test_unknown_variables_are_warned_about_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_IMPACT_FORWRD", "grpc://x:4317")
    assert main(["check-config", write(tmp_path, CONFIG)]) == 0
    err = capsys.readouterr().err
    assert err.count("OTEL_IMPACT_FORWRD") == 1
    assert "otel-impact: warning: OTEL_IMPACT_FORWRD is not a variable" in err
    assert "did you mean OTEL_IMPACT_FORWARD?" in err


def test_an_slo_the_sli_section_cannot_count_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = CONFIG.replace("by: [tier]", "by: [region], sli: {kind: latency, threshold_seconds: 0.5}")
    assert main(["check-config", write(tmp_path, text)]) == 2
    err = capsys.readouterr().err
    assert "otel-impact: config error: slos[0].by[0]: dimension 'region' is not defined in sli.dimensions" in err
    assert "otel-impact: config error: slos[0].sli.threshold_seconds: 0.5s is not a latency threshold" in err


def test_the_receivers_line_shows_the_origins_allowed_from_browsers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cors = "receivers: {http: {cors: {allowed_origins: ['https://*.example.com', 'https://shop.test'], max_age: 2h}}}\n"
    assert main(["check-config", write(tmp_path, cors)]) == 0
    out = capsys.readouterr().out
    assert "otlp-http localhost:4318 (cors from https://*.example.com https://shop.test, max_age 2h)" in out
