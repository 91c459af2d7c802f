"""The analysis section: defaults, the flag and the variable, and mistakes named with their fix."""

from __future__ import annotations

import pytest

from otel_impact import ConfigurationErrors
from otel_impact.processors.analysis.settings import DEFAULT_WORKERS, parse_analysis_section
from otel_impact.processors.config import Problems
from otel_impact.processors.serve_config import Overrides, load_config


def test_defaults_put_analysis_in_one_worker() -> None:
    config = load_config(environ={}).analysis
    assert config.workers == DEFAULT_WORKERS == 1
    assert config.buffer_bytes == 64 << 20 and config.catch_up_timeout_s == 1.0


def test_the_file_the_variable_and_the_flag_in_that_order() -> None:
    problems = Problems()
    parsed = parse_analysis_section({"workers": 3, "buffer": "8MiB", "catch_up_timeout": "250ms"}, "analysis", problems)
    assert not problems.items
    assert (parsed.workers, parsed.buffer_bytes, parsed.catch_up_timeout_s) == (3, 8 << 20, 0.25)
    assert load_config(environ={"OTEL_IMPACT_ANALYSIS_WORKERS": "0"}).analysis.workers == 0
    flag = load_config(Overrides(analysis_workers="2"), environ={"OTEL_IMPACT_ANALYSIS_WORKERS": "0"})
    assert flag.analysis.workers == 2


def test_bad_values_name_their_field_and_fix() -> None:
    problems = Problems()
    parse_analysis_section(
        {"workers": 65, "buffer": "1KiB", "catch_up_timeout": "2m", "spare": 1}, "analysis", problems
    )
    by_field = {problem.setting: problem for problem in problems.items}
    assert set(by_field) == {"analysis.workers", "analysis.buffer", "analysis.catch_up_timeout", "analysis.spare"}
    assert "0 (analyse on the intake loop)" in by_field["analysis.workers"].fix
    assert "1MiB" in by_field["analysis.buffer"].fix


@pytest.mark.parametrize("value", ["two", "-1", "1.5", "99"])
def test_a_bad_flag_names_the_flag(value: str) -> None:
    with pytest.raises(ConfigurationErrors, match="--analysis-workers"):
        load_config(Overrides(analysis_workers=value), environ={})
