"""``--workers`` / ``OTEL_IMPACT_WORKERS`` / ``receivers.processes``: precedence, range, errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from otel_impact.processors.serve_config import ConfigurationErrors, Overrides, load_config


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def test_the_default_is_one_process() -> None:
    assert load_config(Overrides(), environ={}).receivers.processes == 1


def test_flag_over_env_over_file(tmp_path: Path) -> None:
    path = write(tmp_path, "receivers:\n  processes: 3\n")
    assert load_config(Overrides(config_file=path), environ={}).receivers.processes == 3
    env = {"OTEL_IMPACT_WORKERS": "4"}
    assert load_config(Overrides(config_file=path), environ=env).receivers.processes == 4
    assert load_config(Overrides(config_file=path, workers="2"), environ=env).receivers.processes == 2


@pytest.mark.parametrize(
    ("overrides", "env", "text", "field"),
    [
        (Overrides(workers="0"), {}, None, "--workers"),
        (Overrides(workers="65"), {}, None, "--workers"),
        (Overrides(workers="-1"), {}, None, "--workers"),
        (Overrides(), {"OTEL_IMPACT_WORKERS": "many"}, None, "OTEL_IMPACT_WORKERS"),
        (Overrides(), {}, "receivers:\n  processes: 0\n", "receivers.processes"),
        (Overrides(), {}, "receivers:\n  processes: 100\n", "receivers.processes"),
    ],
)
def test_a_bad_value_names_the_field_and_the_fix(
    tmp_path: Path, overrides: Overrides, env: dict[str, str], text: str | None, field: str
) -> None:
    if text is not None:
        overrides = Overrides(config_file=write(tmp_path, text))
    with pytest.raises(ConfigurationErrors) as caught:
        load_config(overrides, environ=env)
    problems = [str(problem) for problem in caught.value.problems]
    assert len(problems) == 1, problems
    assert problems[0].startswith(field) and "use 1 (the default) to 64 intake processes" in problems[0]


def test_the_config_crosses_to_an_intake_process_intact() -> None:
    """An extra intake process gets the config pickled: exporter headers (a read-only mapping) too."""
    config = load_config(Overrides(forward=("grpc://collector:4317",)), environ={})
    exporter = config.exporters[0]
    exporter = type(exporter)(endpoint=exporter.endpoint, headers={"x-api-key": "k"})
    copy = pickle.loads(pickle.dumps(exporter))
    assert copy == exporter and dict(copy.headers) == {"x-api-key": "k"}
    with pytest.raises(TypeError):
        copy.headers["x"] = "y"  # type: ignore[index]
    assert pickle.loads(pickle.dumps(config)) == config
