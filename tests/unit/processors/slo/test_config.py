"""The slos: and alerting: sections: table-driven over testdata/config.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_impact._exceptions import ConfigurationError
from otel_impact.processors.slo import ConfigurationErrors, SloSettings, load_slo_settings
from otel_impact.processors.slo.alerting_config import AlertingConfig
from otel_impact.processors.slo.config import SliSpec, SloConfig, WindowSpec

TESTDATA = Path(__file__).parent / "testdata" / "config.yaml"
CASES: dict[str, Any] = yaml.safe_load(TESTDATA.read_text())

# Each invalid case: the field paths that must be named, and a word of the fix for each.
INVALID = {
    "invalid_objective_ratio": [("slos[0].objective", "write 99.9")],
    "invalid_objective_range": [("slos[0].objective", "99.9")],
    "invalid_window": [("slos[0].window", "7d, 28d or 30d")],
    "invalid_time_zone": [("slos[0].window.time_zone", "IANA")],
    "invalid_latency_without_threshold": [("slos[0].sli.threshold_seconds", "threshold")],
    "invalid_by": [
        ("slos[0].by[0]", "flag's dimension"),
        ("slos[0].by[1]", "[a-z_]"),
        ("slos[0].by[2]", "rename"),
    ],
    "invalid_duplicate_and_missing": [("slos[1].task", "set `task`"), ("slos[1].name", "rename")],
    "invalid_typo": [("slos[0].objectve", "objective"), ("slos[0].objective", "set `objective`")],
    "invalid_budgeting": [("slos[0].budgeting", "occurrences")],
    "invalid_alerting": [
        ("alerting.evaluation_interval", "30s"),
        ("alerting.alertmanager.urls[0]", "http://"),
        ("alerting.severity", "SEV1"),
        ("alerting.page_at_severity", "SEV1"),
        ("alerting.low_traffic_guard.min_events", ">= 0"),
    ],
}


def test_every_case_in_testdata_is_covered() -> None:
    assert {name for name in CASES if name.startswith("invalid_")} == set(INVALID)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_config_names_every_field_and_fix(name: str) -> None:
    with pytest.raises(ConfigurationErrors) as caught:
        SloSettings.from_mapping(CASES[name])
    problems = {problem.setting: problem for problem in caught.value.problems}
    for path, fix_word in INVALID[name]:
        assert path in problems, f"{path} not reported; got {sorted(problems)}"
        problem = problems[path]
        assert fix_word in f"{problem.problem} {problem.fix}", str(problem)
    # one message lists them all, each with its path
    for path, _ in INVALID[name]:
        assert path in str(caught.value)
    assert len(problems) == len(INVALID[name]), sorted(problems)


def test_full_config_loads_every_field() -> None:
    settings = SloSettings.from_mapping(CASES["valid_full"])
    availability, latency, weekly = settings.slos
    assert availability == SloConfig(
        name="checkout-availability",
        task="checkout",
        objective=99.9,
        sli=SliSpec("success_ratio"),
        window=WindowSpec("rolling", 30 * 86400.0),
        by=("tier",),
        owner="payments-oncall",
        team="payments",
        route="payments-pager",
        runbook="https://runbooks.example.com/checkout",
        description="Checkout completes for every tier.",
        labels=(("service_group", "storefront"),),
    )
    assert availability.error_budget == pytest.approx(0.001)
    assert availability.routing_labels() == {
        "owner": "payments-oncall",
        "team": "payments",
        "route": "payments-pager",
        "service_group": "storefront",
    }
    assert latency.sli == SliSpec("latency", 0.3)
    assert latency.window == WindowSpec("calendar_month", time_zone="Europe/Paris")
    assert weekly.window.rolling_seconds == 7 * 86400.0
    alerting = settings.alerting
    assert alerting.evaluation_interval == 15.0
    assert alerting.alertmanager_urls == ("http://127.0.0.1:9093",)
    assert alerting.webhooks[0].headers == (("Authorization", "Bearer not-a-real-token"),)
    assert alerting.delivery.initial_backoff == 0.5
    assert alerting.delivery.max_elapsed == 120.0
    assert alerting.delivery.queue_size == 50
    assert alerting.low_traffic_guard.min_events == 50
    assert alerting.scoring.weight("enterprise") == 20.0
    assert alerting.scoring.weight("trial") == 0.5
    assert alerting.scoring.window == 1800.0
    assert alerting.severity.classify(500) == "SEV1"
    assert alerting.severity.classify(49.9) == "SEV3"
    assert alerting.severity.classify(4.9) == "SEV4"
    assert alerting.page_at_severity == "SEV1"


def test_defaults() -> None:
    settings = SloSettings.from_mapping(CASES["valid_minimal"])
    (slo,) = settings.slos
    assert slo.window.label == "30d"
    assert slo.sli.kind == "success_ratio"
    assert settings.alerting == AlertingConfig()
    assert SloSettings.from_mapping(CASES["valid_empty"]) == SloSettings()


def test_file_loading_reports_yaml_syntax_with_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("slos:\n  - name: a\n    task: [unclosed\n")
    with pytest.raises(ConfigurationError) as caught:
        load_slo_settings(bad)
    assert "line" in str(caught.value) and "bad.yaml" in str(caught.value)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_slo_settings(tmp_path / "missing.yaml")


def test_file_loading_ignores_other_sections(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"receivers": {"otlp": {}}, **CASES["valid_minimal"]}))
    assert load_slo_settings(path).slos[0].name == "checkout"


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ("not a list", "slos"),
        (
            [{"name": "a", "task": "t", "objective": 99.9, "window": {"rolling": "30d", "calendar": "month"}}],
            "slos[0].window",
        ),
        ([{"name": "a b", "task": "t", "objective": 99.9}], "slos[0].name"),
        ([{"name": "a", "task": "t", "objective": "high"}], "slos[0].objective"),
        ([{"name": "a", "task": "t", "objective": 99.9, "runbook": "wiki/page"}], "slos[0].runbook"),
        ([{"name": "a", "task": "t", "objective": 99.9, "labels": {"severity": "x"}}], "slos[0].labels.severity"),
        (
            [{"name": "a", "task": "t", "objective": 99.9, "sli": {"kind": "success_ratio", "threshold_seconds": 1}}],
            "slos[0].sli.threshold_seconds",
        ),
        ([{"name": "a", "task": "t", "objective": 99.9, "sli": "availability"}], "slos[0].sli.kind"),
    ],
)
def test_more_bad_slos(raw: object, path: str) -> None:
    with pytest.raises(ConfigurationErrors) as caught:
        SloSettings.from_mapping({"slos": raw})
    assert path in {problem.setting for problem in caught.value.problems}, str(caught.value)
