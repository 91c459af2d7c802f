"""The examples in ``examples/`` are valid: the YAML configs load, the environment file names
only variables that are read."""

from __future__ import annotations

import re

import pytest
from opentelemetry.sdk import environment_variables
from support.paths import ROOT

from otel_impact.instrumentation.settings import KNOWN_VARIABLES
from otel_impact.processors.serve_config import Overrides, load_config

EXAMPLES = ROOT / "examples"
KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
ENVIRONMENT = {
    "browser.yaml": {},
    "sidecar.yaml": {},
    "gateway.yaml": {"OTEL_IMPACT_INGEST_TOKEN": "ingest", "OTEL_IMPACT_ADMIN_TOKEN": "admin"},
}
OTEL_SDK_VARIABLES = frozenset(
    value for name, value in vars(environment_variables).items() if name.startswith("OTEL_") and isinstance(value, str)
)


def test_every_yaml_example_is_covered() -> None:
    assert sorted(path.name for path in EXAMPLES.glob("*.yaml")) == sorted(ENVIRONMENT)


@pytest.mark.parametrize("name", sorted(ENVIRONMENT))
def test_a_yaml_example_loads_and_warns_about_nothing(name: str) -> None:
    warnings: list[str] = []
    environ = {"OTEL_IMPACT_HASH_KEY": KEY, **ENVIRONMENT[name]}
    config = load_config(Overrides(config_file=str(EXAMPLES / name)), environ=environ, warn=warnings.append)
    assert warnings == []
    assert config.exporters and config.sli.tasks and config.state_dir


def test_the_gateway_takes_its_tokens_from_the_environment() -> None:
    text = (EXAMPLES / "gateway.yaml").read_text()
    assert "bearer_token: ${env:OTEL_IMPACT_INGEST_TOKEN}" in text
    config = load_config(
        Overrides(config_file=str(EXAMPLES / "gateway.yaml")),
        environ={"OTEL_IMPACT_HASH_KEY": KEY, **ENVIRONMENT["gateway.yaml"]},
    )
    receivers = config.receivers
    assert receivers.grpc.auth.bearer_token == receivers.http.auth.bearer_token == "ingest"
    assert config.admin.auth.bearer_token == "admin"
    assert {slo.by for slo in config.slos} == {("tier",)} and config.alerting.alertmanager_urls


def test_the_zero_code_environment_names_only_variables_that_are_read() -> None:
    assignments = [
        line.split("=", 1)[0]
        for line in (EXAMPLES / "zero-code.env").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert assignments, "no variable set"
    assert all(re.fullmatch(r"[A-Z_][A-Z0-9_]*", name) for name in assignments), assignments
    impact = [name for name in assignments if name.startswith("OTEL_IMPACT_")]
    assert set(impact) <= KNOWN_VARIABLES, set(impact) - KNOWN_VARIABLES
    assert set(assignments) - set(impact) <= OTEL_SDK_VARIABLES, set(assignments) - set(impact) - OTEL_SDK_VARIABLES
    assert {"OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_IMPACT_HASH_KEY_FILE"} <= set(assignments)


def test_the_browser_example_names_browser_tasks_by_scope_and_allows_its_origins() -> None:
    config = load_config(Overrides(config_file=str(EXAMPLES / "browser.yaml")), environ={})
    cors = config.receivers.http.cors
    assert cors is not None and cors.enabled and "*" not in cors.allowed_origins
    assert config.receivers.grpc.endpoint is None and not config.sli.auto_tasks
    scopes = {task.name: task.match.scope_name for task in config.sli.tasks if task.match is not None}
    assert scopes == {
        "page_load": ("@opentelemetry/instrumentation-document-load",),
        "checkout_click": ("@opentelemetry/instrumentation-fetch",),
    }
