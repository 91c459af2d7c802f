"""Generated Prometheus rules, checked and unit-tested by a real promtool (Debian ``prometheus``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from support.paths import ROOT
from support.tools import require_tool

from otel_impact.processors.cli import main

RULES_TESTS = ROOT / "tests" / "e2e" / "rules_tests"
CONFIG = RULES_TESTS / "slos.yaml"


def _generate(tmp_path: Path, config: Path = CONFIG) -> Path:
    out = tmp_path / "rules.yaml"
    assert main(["rules", "--config", str(config), "--output", str(out)]) == 0
    for test_file in RULES_TESTS.glob("test_*.yaml"):
        shutil.copy(test_file, tmp_path / test_file.name)
    return out


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool", package="prometheus")
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_generated_rules_pass_promtool_check(tmp_path: Path) -> None:
    rules = _generate(tmp_path)
    result = _promtool("check", "rules", str(rules), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("test_file", sorted(p.name for p in RULES_TESTS.glob("test_*.yaml")))
def test_promtool_unit_tests_pass(tmp_path: Path, test_file: str) -> None:
    _generate(tmp_path)
    result = _promtool("test", "rules", test_file, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_catch_a_missing_guard(tmp_path: Path) -> None:
    # Without the low-traffic guard the enterprise tier (1 failure in 10 requests) pages too, and the
    # shipped unit test must notice.
    raw = yaml.safe_load(CONFIG.read_text())
    raw["alerting"]["low_traffic_guard"] = {"min_events": 1, "min_bad_events": 1}
    unguarded = tmp_path / "unguarded.yaml"
    unguarded.write_text(yaml.safe_dump(raw))
    _generate(tmp_path, unguarded)
    result = _promtool("test", "rules", "test_burn_alerts.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert 'tier="enterprise"' in result.stdout + result.stderr
