"""`otel-impact rules`: generated Prometheus rules, checked and unit-tested with promtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from support.paths import ROOT as REPO_ROOT
from support.tools import require_tool

from otel_impact.processors.cli import main
from otel_impact.processors.slo import SloSettings, generate_rules, load_slo_settings
from otel_impact.processors.slo.alerting_config import AlertingConfig
from otel_impact.processors.slo.config import SliSpec, SloConfig, WindowSpec
from otel_impact.processors.slo.rules import threshold_regex

RULES_TESTS = REPO_ROOT / "tests" / "e2e" / "rules_tests"
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


def test_rule_groups_recordings_and_alerts() -> None:
    settings = load_slo_settings(CONFIG)
    groups = generate_rules(settings.slos, settings.alerting)["groups"]
    assert [g["name"] for g in groups] == [
        "otel-impact-slo-checkout-by-tier",
        "otel-impact-slo-search-latency",
        "otel-impact-slo-browse-latency",
    ]
    rules = groups[0]["rules"]
    records = [r["record"] for r in rules if "record" in r]
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"):
        assert f"impact_slo:events:increase{window}" in records
        assert f"impact_slo:bad_events:increase{window}" in records
    for window in ("5m", "30m", "1h", "2h", "6h", "1d", "3d"):
        assert f"impact_slo:burn_rate:{window}" in records
    events_5m = next(r for r in rules if r.get("record") == "impact_slo:events:increase5m")
    assert events_5m["expr"] == 'sum by (task, tier) (increase(impact_task_events_total{task="checkout"}[5m]))'
    page, ticket = [r for r in rules if "alert" in r]
    assert page["labels"] == {
        "severity": "page",
        "slo": "checkout-by-tier",
        "owner": "payments-oncall",
        "team": "payments",
        "route": "payments-pager",
    }
    assert 'impact_slo:burn_rate:1h{slo="checkout-by-tier"} > 14.4' in page["expr"]
    assert 'impact_slo:burn_rate:30m{slo="checkout-by-tier"} > 6' in page["expr"]
    assert 'impact_slo:error_budget_remaining:ratio{slo="checkout-by-tier"} < 0.25' in page["expr"]
    assert 'impact_slo:events:increase1h{slo="checkout-by-tier"} >= 100' in page["expr"]
    assert 'impact_slo:burn_rate:1d{slo="checkout-by-tier"} > 3' in ticket["expr"]
    assert "\nunless\n" in ticket["expr"]
    calendar = groups[1]["rules"]
    calendar_page = next(r for r in calendar if r.get("alert") and r["labels"]["severity"] == "page")
    assert "scalar(clamp_min(days_in_month() * 0.48, 1))" in calendar_page["expr"]  # 0.02 x 24h/day / 1h


def test_week_window_thresholds_and_quoting() -> None:
    slo = SloConfig(
        name="odd",
        task='say "hi"\\',
        objective=99.5,
        window=WindowSpec("rolling", 7 * 86400.0),
        sli=SliSpec("latency", 1.0),
    )
    (group,) = generate_rules((slo,), AlertingConfig())["groups"]
    page = next(r for r in group["rules"] if r.get("alert") and r["labels"]["severity"] == "page")
    assert "> 3.36" in page["expr"] and "> 1.4" in page["expr"]
    bad = next(r for r in group["rules"] if r.get("record") == "impact_slo:bad_events:increase7d")
    assert 'task="say \\"hi\\"\\\\"' in bad["expr"]
    assert 'threshold=~"1|1\\\\.0"' in bad["expr"]
    assert "/ 0.005" in next(r for r in group["rules"] if r.get("record") == "impact_slo:burn_rate:5m")["expr"]


@pytest.mark.parametrize(
    ("seconds", "matches", "rejects"), [(0.3, ["0.3"], ["0.30", "3"]), (1.0, ["1", "1.0"], ["10"])]
)
def test_threshold_label_regex(seconds: float, matches: list[str], rejects: list[str]) -> None:
    pattern = re.compile(f"^(?:{threshold_regex(seconds)})$")  # Prometheus anchors label regexes
    assert all(pattern.match(text) for text in matches)
    assert not any(pattern.match(text) for text in rejects)


def test_cli_reports_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("slos:\n  - {name: a, task: checkout, objective: 0.999, window: 90d}\n")
    assert main(["rules", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "slos[0].objective" in err and "slos[0].window" in err and "Fix:" in err
    empty = tmp_path / "empty.yaml"
    empty.write_text("alerting: {}\n")
    assert main(["rules", "--config", str(empty)]) == 2
    assert "no `slos:`" in capsys.readouterr().err
    assert main(["rules", "--config", str(tmp_path / "missing.yaml")]) == 2


def test_cli_writes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--config", str(CONFIG)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Prometheus rules generated by `otel-impact rules` from slos.yaml")
    assert yaml.safe_load(out)["groups"][0]["name"] == "otel-impact-slo-checkout-by-tier"


def test_missing_tool_skips_on_a_laptop_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("OTEL_IMPACT_REQUIRE_TOOLS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install prometheus"):
        require_tool("promtool", package="prometheus")
    monkeypatch.setenv("OTEL_IMPACT_REQUIRE_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="must not skip"):
        require_tool("promtool", package="prometheus")


def test_slos_doc_config_and_rules_excerpt_match_the_generator() -> None:
    section = (REPO_ROOT / "docs" / "slos.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    config, excerpt = yaml.safe_load(blocks[0]), yaml.safe_load(blocks[1])
    settings = SloSettings.from_mapping(config)
    (group,) = generate_rules(settings.slos, settings.alerting)["groups"]
    (shown,) = excerpt
    assert shown["name"] == group["name"]
    for rule in shown["rules"]:
        assert rule in group["rules"], rule
