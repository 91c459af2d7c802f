"""Headless Chromium for page tests: the DOM after scripts ran, and screenshots."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from support.tools import require_tool

# Flags for a machine without a display or outside network access: no GPU, no sandbox (tests
# may run as root), and none of Chromium's background connections.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def chromium() -> str:
    return require_tool("chromium", "chromium-browser", package="chromium")


def _run(url: str, extra: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000", *extra, url],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def dump_dom(url: str, *, timeout: float = 90.0) -> str:
    """The page's DOM after its scripts ran (fetches included), as HTML."""
    result = _run(url, ["--dump-dom"], timeout)
    if result.returncode != 0 or "<html" not in result.stdout:
        raise AssertionError(f"chromium could not render {url}: rc={result.returncode}\n{result.stderr[-3000:]}")
    return result.stdout


def screenshot(url: str, path: Path, *, size: str = "1400,2200", timeout: float = 90.0) -> Path:
    """A PNG of the page at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    result = _run(url, [f"--screenshot={path}", f"--window-size={size}", "--hide-scrollbars"], timeout)
    if result.returncode != 0 or not path.exists() or path.stat().st_size == 0:
        raise AssertionError(f"chromium could not screenshot {url}: rc={result.returncode}\n{result.stderr[-3000:]}")
    return path
