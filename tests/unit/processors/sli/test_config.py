"""The `sli:` config section: the testdata examples load, and every bad field is named with its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from otel_impact import ConfigurationError
from otel_impact.processors.sli import SliConfig
from otel_impact.processors.sli.config import SuccessConfig, TierConfig

TESTDATA = Path(__file__).parent / "testdata" / "config.yaml"


@pytest.fixture(scope="module")
def examples() -> dict[str, Any]:
    return yaml.safe_load(TESTDATA.read_text())  # type: ignore[no-any-return]


def test_defaults(examples: dict[str, Any]) -> None:
    config = SliConfig.from_mapping(examples["defaults"])
    assert config == SliConfig() == SliConfig.from_mapping(None)
    assert [d.name for d in config.dimensions] == ["tier"]
    assert config.lateness_s == 300 and config.user_attribute == "impact.customer.hash"


def test_full_example(examples: dict[str, Any]) -> None:
    config = SliConfig.from_mapping(examples["full"])
    checkout = config.task("checkout")
    search = config.task("search")
    assert checkout is not None and search is not None
    assert checkout.latency_thresholds_s == (0.3, 2.0) and checkout.value == 40.0
    assert config.success_for(checkout) == SuccessConfig(
        http_bad=("5xx", "429"), error_types_good=("card_declined",), latency_threshold_s=3.0
    )
    assert config.success_for(search).status_error is False and search.match is not None
    assert search.match.kind == ("server",) and search.match.http_route == ("/api/search",)
    assert config.thresholds_for(None) == (0.25, 1.0)
    assert config.sketch_tiers[1] == TierConfig(3600, 2 * 86_400)
    assert config.loss_detection.window_s == 600 and config.loss_detection.drop_ratio == 0.2
    assert config.metrics_windows_s == (300, 3600, 86_400) and config.checkpoint_interval_s == 10
    assert [d.flag for d in config.dimensions] == [None, None, "new_checkout"]


def test_zero_config_off(examples: dict[str, Any]) -> None:
    config = SliConfig.from_mapping(examples["zero_config_off"])
    assert config.auto_tasks is False and [t.name for t in config.tasks] == ["checkout"]


BAD = [
    ({"max_tasks": "many"}, "sli.max_tasks", "whole number"),
    ({"max_tasks": 0}, "sli.max_tasks", "positive"),
    ({"lateness": "soon"}, "sli.lateness", "300ms"),
    ({"bogus": 1}, "sli.bogus", "spelling"),
    ({"dimensions": {"name": "tier"}}, "sli.dimensions", "list"),
    ({"dimensions": [{"name": "Tier", "attribute": "x"}]}, "sli.dimensions[0].name", "lowercase"),
    ({"dimensions": [{"name": "task", "attribute": "x"}]}, "sli.dimensions[0].name", "not task"),
    ({"dimensions": [{"name": "a", "attribute": "x", "flag": "y"}]}, "sli.dimensions[0]", "either"),
    ({"dimensions": [{"attribute": "x"}]}, "sli.dimensions[0].name", "name the dimension"),
    (
        {"dimensions": [{"name": "a", "attribute": "x"}, {"name": "a", "attribute": "y"}]},
        "sli.dimensions[1].name",
        "own name",
    ),
    ({"tasks": [{"name": "a"}, {"name": "a"}]}, "sli.tasks[1].name", "merge"),
    ({"tasks": [{"name": "a b"}]}, "sli.tasks[0].name", "letters"),
    ({"tasks": [{"value": 3}]}, "sli.tasks[0].name", "name the task"),
    ({"tasks": [{"name": "a", "success": {"http_bad": ["6xx"]}}]}, "sli.tasks[0].success.http_bad[0]", "4xx or 5xx"),
    ({"tasks": [{"name": "a", "success": {"latency": "1s"}}]}, "sli.tasks[0].success.latency", "spelling"),
    ({"tasks": [{"name": "a", "match": {}}]}, "sli.tasks[0].match", "service, span_name"),
    ({"tasks": [{"name": "a", "match": {"kind": ["serverish"]}}]}, "sli.tasks[0].match.kind[0]", "server"),
    ({"tasks": [{"name": "a", "latency_thresholds": ["1s", "1s"]}]}, "sli.tasks[0].latency_thresholds", "once"),
    ({"tasks": [{"name": "a", "value": -1}]}, "sli.tasks[0].value", "0 or more"),
    ({"latency_thresholds": ["0s"]}, "sli.latency_thresholds[0]", "300ms"),
    ({"max_series_total": 10, "max_series_per_task": 20}, "sli.max_series_total", "raise"),
    ({"count_tiers": [{"width": "5m", "keep": "35d"}]}, "sli.count_tiers[0].width", "1m"),
    ({"count_tiers": [{"width": "1m", "keep": "6h"}]}, "sli.count_tiers[0].keep", "35d"),
    (
        {
            "count_tiers": [
                {"width": "1m", "keep": "1d"},
                {"width": "90s", "keep": "3d"},
                {"width": "1h", "keep": "35d"},
            ]
        },
        "sli.count_tiers[1]",
        "fine to coarse",
    ),
    ({"count_tiers": [{"width": "1m"}]}, "sli.count_tiers[0]", "keep"),
    ({"hll_lg_k": 30}, "sli.hll_lg_k", "4 to 21"),
    ({"loss_detection": {"drop_ratio": 2}}, "sli.loss_detection.drop_ratio", "0.25"),
    ({"loss_detection": {"window": "1h", "baseline": "5m"}}, "sli.loss_detection", "window: 5m"),
    ({"metrics_windows": ["90s"]}, "sli.metrics_windows", "5m"),
    ({"lateness": "4h"}, "sli.lateness", "lower lateness"),
    ({"enabled": "yes"}, "sli.enabled", "true or false"),
    ("not a mapping", "sli", "key: value"),
]


@pytest.mark.parametrize(("raw", "field", "fix"), BAD, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD)])
def test_bad_fields_are_named_with_a_fix(raw: Any, field: str, fix: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SliConfig.from_mapping(raw)
    assert caught.value.setting == field
    assert fix in caught.value.fix or fix in caught.value.problem, str(caught.value)
