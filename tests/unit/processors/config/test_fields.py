"""The one convention for reading config: every problem is noted, none raised, until the owner raises them all."""

from __future__ import annotations

import pytest

from otel_impact.processors.config import ConfigurationErrors, Fields, Problems


def test_reading_notes_every_problem_and_raises_none() -> None:
    problems = Problems()
    fields = Fields({"rows": "many", "refresh": "soon", "limits": {"rowz": 1}, "typo": 1}, "dashboard", problems)
    assert fields.take_int("rows", 50, minimum=1) == 50  # a bad value stands as its default
    assert fields.take_duration("refresh", 10.0) == 10.0
    limits = fields.take_section("limits")
    limits.done()
    fields.done()
    assert [problem.setting for problem in problems.items] == [
        "dashboard.rows",
        "dashboard.refresh",
        "dashboard.limits.rowz",
        "dashboard.typo",
    ]
    with pytest.raises(ConfigurationErrors) as raised:
        problems.raise_if_any()
    assert len(raised.value.problems) == 4
    assert all(" Fix: " in line for line in str(raised.value).splitlines())


def test_problems_keep_the_first_problem_of_a_field() -> None:
    problems = Problems()
    problems.add("sli.tasks[0].name", "is missing", "name the task")
    problems.add("sli.tasks[0].name", "'' is not a task name", "use letters")
    assert len(problems) == 1 and problems.items[0].problem == "is missing"
    Problems().raise_if_any()  # nothing noted: nothing raised
