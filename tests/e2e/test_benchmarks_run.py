"""Benchmarks must keep running; their figures are read by people, not asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import ROOT as REPO_ROOT
from support.tools import require_tool

BENCHMARKS = REPO_ROOT / "benchmarks"
EXTRA_ARGUMENTS = {
    # Two builds: this checkout's own command stands in for the baseline build.
    "bench_builds.py": ["--baseline-cli", str(Path(sys.executable).parent / "otel-impact")],
}


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("bench_*.py")))
def test_benchmark_runs_quick(script: str, tmp_path: Path) -> None:
    if script == "bench_shared_state.py":
        require_tool("redis-server", package="redis-server")
    out = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--json", str(out), *EXTRA_ARGUMENTS.get(script, [])],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=BENCHMARKS,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    summary = json.loads(out.read_text())
    assert summary["rows"], "a benchmark reports at least one case"
    for row in summary["rows"]:
        assert row["median_us"] > 0 and row["ratio_to_baseline"] > 0
