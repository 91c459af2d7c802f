"""Postmortem summaries from a running processor: impact by segment, budget, alert timeline."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from support.processor import CLI, Processor, get_json


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_postmortem_markdown(fed: tuple[Processor, float], tmp_path: Path) -> None:
    processor, started = fed
    processor.wait_for(
        lambda: any(a["event"] == "fired" for a in get_json(processor, "/api/v1/alerts?task=checkout")["alerts"]),
        what="an alert for the failing release",
    )
    first_alert = get_json(processor, "/api/v1/alerts?task=checkout")["alerts"][0]
    mitigated = time.time() + 5
    out = tmp_path / "postmortem.md"
    result = subprocess.run(
        [
            CLI,
            "postmortem",
            "--admin",
            processor.admin_url,
            "--task",
            "checkout",
            "--from",
            iso(started - 60),
            "--to",
            iso(time.time() + 60),
            "--mitigated-at",
            iso(mitigated),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    for heading in ("# Impact summary: checkout", "## Customer impact", "### By segment", "## Error budget consumed"):
        assert heading in text
    assert "| failed tasks | 150 of 900 (16.67%) | exact |" in text
    assert "| revenue at risk | 1,500.00 | exact |" in text
    assert "version=1.5" in text and "tier=pro" in text
    assert "checkout-availability (99% success ratio, 30d)" in text
    assert "## Alert timeline" in text and "| fired |" in text and first_alert["labels"]["tier"] in text
    assert "measured from the first alert" in text


def test_postmortem_refuses_bad_ranges(fed: tuple[Processor, float]) -> None:
    processor, _ = fed
    result = subprocess.run(
        [CLI, "postmortem", "--admin", processor.admin_url, "--task", "checkout", "--from", "yesterday", "--to", "now"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "from 'yesterday' is not unix seconds or an RFC 3339 time" in result.stderr
    backwards = subprocess.run(
        [CLI, "postmortem", "--admin", processor.admin_url, "--task", "checkout", "--from", "2000", "--to", "1000"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert backwards.returncode == 2 and "must end after it starts" in backwards.stderr
