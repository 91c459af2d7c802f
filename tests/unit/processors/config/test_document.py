"""Reading a config file: ``${env:NAME}`` references, ``$${`` escapes, unset variables as field problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_impact import ConfigurationErrors
from otel_impact.processors.config import Problems, read_document, read_yaml


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def test_references_are_replaced_alone_inside_strings_and_in_lists(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "receivers:\n  http:\n    auth:\n      bearer_token: ${env:TOKEN}\n"
        "exporters:\n  - endpoint: grpc://${env:HOST}:4317\n    headers: {authorization: 'Bearer ${env:TOKEN}'}\n",
    )
    problems = Problems()
    document = read_document(path, problems, {"TOKEN": "s3cret", "HOST": "collector"})
    assert not problems.items
    assert document.data["receivers"]["http"]["auth"]["bearer_token"] == "s3cret"
    assert document.data["exporters"][0]["endpoint"] == "grpc://collector:4317"
    assert document.data["exporters"][0]["headers"] == {"authorization": "Bearer s3cret"}
    assert document.variables == frozenset({"TOKEN", "HOST"})


def test_a_value_is_always_a_string_and_keys_and_other_dollars_stay(tmp_path: Path) -> None:
    path = write(tmp_path, "a: ${env:PORT}\n${env:KEY}: 1\nb: ${not-expanded-here}\nc: $HOME and $$x\nd: 3\n")
    data = read_yaml(path, {"PORT": "4317", "KEY": "k"})
    assert data == {"a": "4317", "${env:KEY}": 1, "b": "${not-expanded-here}", "c": "$HOME and $$x", "d": 3}


def test_double_dollar_escapes_a_literal_reference(tmp_path: Path) -> None:
    path = write(tmp_path, "a: $${env:TOKEN}\nb: price $${x} ${env:TOKEN}\n")
    problems = Problems()
    document = read_document(path, problems, {"TOKEN": "t"})
    assert document.data == {"a": "${env:TOKEN}", "b": "price ${x} t"}
    assert document.variables == frozenset({"TOKEN"}) and not problems.items


def test_an_unset_variable_is_a_problem_of_the_field_naming_the_variable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "receivers:\n  grpc:\n    auth:\n      bearer_token: ${env:OTEL_IMPACT_INGEST_TOKEN}\n"
        "exporters:\n  - endpoint: ${env:NOPE}\n",
    )
    with pytest.raises(ConfigurationErrors) as raised:
        read_yaml(path, {})
    by_field = {problem.setting: problem for problem in raised.value.problems}
    assert set(by_field) == {"receivers.grpc.auth.bearer_token", "exporters[0].endpoint"}
    token = by_field["receivers.grpc.auth.bearer_token"]
    assert "OTEL_IMPACT_INGEST_TOKEN is not set" in token.problem
    assert token.fix.startswith("set OTEL_IMPACT_INGEST_TOKEN or ")


def test_a_set_but_empty_variable_is_an_empty_string(tmp_path: Path) -> None:
    assert read_yaml(write(tmp_path, "a: x${env:EMPTY}y\n"), {"EMPTY": ""}) == {"a": "xy"}


def test_a_malformed_reference_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationErrors) as raised:
        read_yaml(write(tmp_path, "a: ${env:1-bad}\n"), {})
    (problem,) = raised.value.problems
    assert problem.setting == "a" and "not a variable reference" in problem.problem


def test_a_tool_reading_some_sections_needs_only_their_variables(tmp_path: Path) -> None:
    path = write(tmp_path, "receivers:\n  grpc:\n    auth:\n      bearer_token: ${env:UNSET}\nslos: []\n")
    assert read_yaml(path, {}, sections=("slos", "alerting")) == {"slos": []}
    with pytest.raises(ConfigurationErrors):
        read_yaml(path, {})
