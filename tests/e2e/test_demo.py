"""`otel-impact demo` end to end: it starts everything, shows the fault, and stops cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from support.processor import CLI

ROW = re.compile(r"^\s+(free|pro|enterprise)\s+(on|off)\s+([\d,]+)\s+([\d,]+)\s", re.MULTILINE)


def start_demo(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [CLI, "demo", "--admin-port", "0", "--rate", "60", "--refresh", "3", "--keep", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
    )


def read_until(process: subprocess.Popen[str], pattern: str, timeout: float = 60.0) -> tuple[str, re.Match[str]]:
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
        match = re.search(pattern, seen)
        if match:
            return seen, match
    process.kill()
    raise AssertionError(f"the demo never printed {pattern!r}:\n{seen}")


def processes_in(directory: Path) -> list[int]:
    """PIDs of processes whose working directory is ``directory`` (the demo starts its children there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == directory:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_demo_shows_the_fault_and_its_dashboard(tmp_path: Path) -> None:
    demo = start_demo(tmp_path, "--duration", "30")
    _, match = read_until(demo, r"Dashboard: (http://127\.0\.0\.1:\d+)/")
    dashboard = match.group(1)
    with urllib.request.urlopen(dashboard + "/", timeout=10) as page:
        assert b"otel-impact" in page.read()
    out, _ = demo.communicate(timeout=120)
    assert demo.returncode == 0, out
    last = out.rsplit("otel-impact demo · dashboard:", 1)[1]
    rows = {
        (tier, variant): (int(total.replace(",", "")), int(bad.replace(",", "")))
        for tier, variant, total, bad in ROW.findall(last)
    }
    assert rows[("pro", "on")][1] > 0, last  # the injected fault
    assert all(bad == 0 for key, (_, bad) in rows.items() if key != ("pro", "on")), last
    assert sum(total for total, _ in rows.values()) > 300
    assert re.search(r"^\s+pro\s+(PAGE|TICKET)\s", last, re.MULTILINE), last
    assert "demo stopped" in out
    workdir = Path(re.search(r"kept in (\S+)", out).group(1))  # type: ignore[union-attr]
    assert processes_in(workdir) == []
    assert "impact.customer" not in (workdir / "checkout.log").read_text()  # quiet services


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    demo = start_demo(tmp_path)
    read_until(demo, r"checkouts sent [1-9]")
    demo.send_signal(signal.SIGINT)
    out, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, out
    assert "stopping" in out and "demo stopped" in out
    workdir = Path(re.search(r"kept in (\S+)", out).group(1))  # type: ignore[union-attr]
    assert processes_in(workdir) == []
    state = json.dumps(sorted(p.name for p in workdir.iterdir()))
    assert "processor.log" in state and "state" in state
