"""A first run: a window older than the processor's state is incomplete everywhere, for one reason.

The processor here has run for seconds when it is asked about the last 30 minutes. The impact
document, the SLO snapshot, the gate (JSON and CLI) and the dashboard all answer from
`ImpactQueries.window_completeness`, so they agree: incomplete, with the same reason, and the
gate is inconclusive (exit 2) rather than failing on 30 minutes backed by seconds of state.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.browser import dump_dom, screenshot
from support.oncall import CONFIG, send_canary_release
from support.paths import ROOT as REPO_ROOT
from support.processor import CLI, Processor, get_json, serve

ARTIFACTS = REPO_ROOT / "test-artifacts"
GATE = "task=checkout&window=30m&baseline=service.version=1.4&canary=service.version=1.5"


@pytest.fixture(scope="module")
def fresh() -> Iterator[Processor]:
    """A processor started moments ago, fed a healthy 1.4 and a 1.5 that fails a third of checkouts."""
    with serve(config=CONFIG) as processor:
        send_canary_release(processor)
        yield processor


def same_reason(reason: str | None) -> str:
    """The reason without how long the state has run (it grows between two requests)."""
    assert reason is not None
    return re.sub(r"the last \S+ of", "the last ... of", reason)


def test_impact_slos_gate_and_dashboard_agree_that_the_window_is_incomplete(fresh: Processor) -> None:
    impact = get_json(fresh, "/api/v1/impact?task=checkout&window=30m")["telemetry"]
    slo = get_json(fresh, "/api/v1/slos")["slos"][0]
    gate = get_json(fresh, f"/api/v1/gate?{GATE}")
    board = get_json(fresh, "/api/v1/dashboard?window=30m")["telemetry"]["checkout"]
    answers = {"impact": impact, "slos": slo["telemetry"], "gate": gate["telemetry"], "dashboard": board}
    assert {name: answer["complete"] for name, answer in answers.items()} == dict.fromkeys(answers, False)
    reasons = {name: same_reason(answer["reason"]) for name, answer in answers.items()}
    assert set(reasons.values()) == {"the processor's state covers only the last ... of this window"}, reasons
    # Inconclusive, not FAIL: 30 minutes cannot be judged on the seconds the state has seen.
    assert gate["verdict"] == "inconclusive" and gate["exit_code"] == 2
    assert all(signal["verdict"] == "inconclusive" for signal in gate["signals"])
    assert "The window is incomplete (the processor's state covers only" in gate["explanation"]
    assert 0 < gate["telemetry"]["observed_seconds"] < 600 and board["state_covers_window"] is False


def test_the_gate_command_exits_2_with_the_reason(fresh: Processor) -> None:
    args = ["--task", "checkout", "--window", "30m", "--baseline", "version=1.4", "--canary", "version=1.5"]
    result = subprocess.run(
        [CLI, "gate", "--admin", fresh.admin_url, *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.startswith("INCONCLUSIVE") and "covers only the last" in result.stdout


def test_budgets_say_what_they_cover_and_that_they_are_exhausted(fresh: Processor) -> None:
    slo = get_json(fresh, "/api/v1/slos")["slos"][0]
    budget: dict[str, Any] = slo["budget"]
    assert budget["remaining"] == slo["budget_remaining"] < 0  # the numeric field keeps its meaning
    assert re.fullmatch(r"the \d+ (seconds?|minutes?) observed", budget["covers"]), budget
    assert 0 < budget["observed_seconds"] < 600
    assert re.fullmatch(r"exhausted: \d+(\.\d)?× the budget spent", budget["text"]), budget
    for segment in slo["segments"]:
        assert segment["budget"]["covers"] == budget["covers"]
        assert segment["budget"]["text"].startswith("exhausted: ")


def test_the_state_coverage_in_the_reason_grows_with_every_request(fresh: Processor) -> None:
    first = get_json(fresh, "/api/v1/impact?task=checkout&window=30m")["telemetry"]["reason"]
    time.sleep(1.2)
    second = get_json(fresh, "/api/v1/impact?task=checkout&window=30m")["telemetry"]["reason"]
    assert first != second and same_reason(first) == same_reason(second)


def test_the_first_run_page_reads_right(fresh: Processor) -> None:
    url = fresh.admin_url + "/#window=30m"
    dom = dump_dom(url)
    assert 'data-ready="true"' in dom
    assert 'data-telemetry-complete="false"' in dom and "covers only the last" in dom
    assert "error budget of the " in dom and " observed: exhausted: " in dom
    assert "budget left %" in dom and ">time<" in dom  # the chart's axes are labelled
    assert not re.search(r"<td[^>]*>-\d+(\.\d+)?%</td>|budget[^<]*: -\d", dom), (
        "a budget reads as a negative percentage"
    )
    picture = screenshot(url, ARTIFACTS / "dashboard-first-run.png")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
