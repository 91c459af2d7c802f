"""What the loader checks beyond each section: SLOs against the sli section, unknown variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_impact.instrumentation.settings import KNOWN_VARIABLES
from otel_impact.processors.serve_config import (
    PROCESSOR_VARIABLES,
    ConfigurationErrors,
    Overrides,
    load_config,
    unknown_variables,
)

SLI = """\
sli:
  dimensions:
    - {name: tier, attribute: impact.customer.tier}
  latency_thresholds: [1s]
  tasks:
    - {name: checkout, latency_thresholds: [300ms, 1s]}
"""


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> object:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(Overrides(config_file=str(path)), environ={} if environ is None else environ)


def problems_of(tmp_path: Path, text: str) -> dict[str, str]:
    with pytest.raises(ConfigurationErrors) as raised:
        load(tmp_path, text)
    return {problem.setting: str(problem) for problem in raised.value.problems}


def test_slos_that_the_sli_section_counts_are_valid(tmp_path: Path) -> None:
    load(
        tmp_path,
        SLI + "slos:\n"
        "  - {name: a, task: checkout, objective: 99, by: [tier], sli: {kind: latency, threshold_seconds: 0.3}}\n"
        "  - {name: b, task: search, objective: 99, sli: {kind: latency, threshold_seconds: 1}}\n",
    )


def test_a_by_dimension_the_sli_section_does_not_define(tmp_path: Path) -> None:
    found = problems_of(tmp_path, SLI + "slos:\n  - {name: a, task: checkout, objective: 99, by: [tier, region]}\n")
    assert set(found) == {"slos[0].by[1]"}
    message = found["slos[0].by[1]"]
    assert "'region' is not defined in sli.dimensions (it has: tier)" in message
    assert "Fix: add {name: region, attribute: ...} to sli.dimensions or remove it from by" in message


def test_the_default_dimensions_count_when_the_file_has_no_sli_section(tmp_path: Path) -> None:
    load(tmp_path, "slos:\n  - {name: a, task: checkout, objective: 99, by: [tier]}\n")
    found = problems_of(tmp_path, "slos:\n  - {name: a, task: checkout, objective: 99, by: [region]}\n")
    assert set(found) == {"slos[0].by[0]"}


def test_a_latency_threshold_the_task_lacks(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        SLI + "slos:\n"
        "  - {name: a, task: checkout, objective: 99}\n"
        "  - {name: b, task: checkout, objective: 99, sli: {kind: latency, threshold_seconds: 0.5}}\n"
        "  - {name: c, task: search, objective: 99, sli: {kind: latency, threshold_seconds: 0.3}}\n",
    )
    assert set(found) == {"slos[1].sli.threshold_seconds", "slos[2].sli.threshold_seconds"}
    configured = found["slos[1].sli.threshold_seconds"]
    assert "0.5s is not a latency threshold" in configured and "task 'checkout' counts 0.3s, 1s" in configured
    assert "Fix: add 0.5s to sli.tasks[0].latency_thresholds or use one of 0.3s, 1s" in configured
    unconfigured = found["slos[2].sli.threshold_seconds"]
    assert "not in sli.tasks" in unconfigured and "Fix: add 0.3s to sli.latency_thresholds" in unconfigured


def test_the_path_of_an_slo_skips_no_index_after_an_item_that_is_not_a_mapping(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path, SLI + "slos:\n  - just a string\n  - {name: a, task: checkout, objective: 99, by: [x]}\n"
    )
    assert "slos[1].by[0]" in found and "slos[0]" in found


def test_unknown_variables_name_the_closest_known_one() -> None:
    environ = {
        "OTEL_IMPACT_FORWRD": "grpc://x:4317",
        "OTEL_IMPACT_HASH_KYE": "k",
        "OTEL_IMPACT_ZZZZZZZZZZZZZZZZZZZZ": "1",
        "OTEL_IMPACT_FORWARD": "grpc://x:4317",
        "OTEL_IMPACT_HASH_KEY": "k",
        "OTEL_IMPACT_CUSTOMER_HEADER": "X-Customer-Id",
        "OTEL_IMPACT_ADMIN_TOKEN": "t",
        "OTEL_IMPACT_INGEST_TOKEN": "t",
        "OTEL_SERVICE_NAME": "checkout",
    }
    warnings = unknown_variables(environ, referenced=frozenset({"OTEL_IMPACT_INGEST_TOKEN"}))
    assert warnings == [
        "OTEL_IMPACT_FORWRD is not a variable otel-impact reads (ignored); did you mean OTEL_IMPACT_FORWARD?",
        "OTEL_IMPACT_HASH_KYE is not a variable otel-impact reads (ignored); did you mean OTEL_IMPACT_HASH_KEY?",
        "OTEL_IMPACT_ZZZZZZZZZZZZZZZZZZZZ is not a variable otel-impact reads (ignored); "
        "see docs/processor-config.md for the variables it reads",
    ]


def test_the_known_set_is_the_processors_and_the_sdks() -> None:
    assert {"OTEL_IMPACT_CONFIG", "OTEL_IMPACT_STATE_DIR", "OTEL_IMPACT_ADMIN_TOKEN"} <= PROCESSOR_VARIABLES
    assert unknown_variables(dict.fromkeys(KNOWN_VARIABLES | PROCESSOR_VARIABLES, "x")) == []


def test_load_config_warns_once_per_unknown_variable_and_counts_the_files_references(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    token = "    auth:\n      bearer_token: ${env:OTEL_IMPACT_INGEST_TOKEN}\n"
    path.write_text(f"receivers:\n  grpc:\n{token}  http:\n{token}")  # both: auth is all or nothing
    warnings: list[str] = []
    environ = {"OTEL_IMPACT_INGEST_TOKEN": "t", "OTEL_IMPACT_FORWRD": "grpc://x:1", "OTEL_IMPACT_STAT_DIR": "/x"}
    load_config(Overrides(config_file=str(path)), environ=environ, warn=warnings.append)
    assert [warning.split()[0] for warning in warnings] == ["OTEL_IMPACT_FORWRD", "OTEL_IMPACT_STAT_DIR"]
    assert "did you mean OTEL_IMPACT_STATE_DIR?" in warnings[1]
