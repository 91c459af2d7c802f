"""The browser test's page script, bundled from npm, and a real Chromium driven by Playwright.

`rum_bundle` builds ``tests/e2e/rum_page`` (the OpenTelemetry JS packages pinned in its
``package.json`` and ``package-lock.json``) with ``npm ci`` and ``npm run build`` (esbuild) into
``build/rum-page/<hash of the sources>/``, once: a later run with the same sources reuses it
(and a new build removes the builds of earlier sources).
`chromium_browser` launches the system Chromium (Debian's ``chromium``) through Playwright for
Python, never a browser Playwright downloads.

Missing tools (Node.js, npm, Chromium, the Playwright package) skip the test with how to
install them, or fail it when ``OTEL_IMPACT_REQUIRE_TOOLS`` is set (CI), as `support.tools` does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.browser import FLAGS, chromium
from support.paths import ROOT
from support.tools import REQUIRE_VARIABLE, require_tool

if TYPE_CHECKING:
    from playwright.sync_api import Browser

SOURCES = ROOT / "tests" / "e2e" / "rum_page"
SOURCE_FILES = ("package.json", "package-lock.json", "rum.js")
BUILDS = ROOT / "build" / "rum-page"
BUNDLE_NAME = "rum.bundle.js"


def _missing(message: str) -> None:
    if os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0"):
        pytest.fail(f"{message}; {REQUIRE_VARIABLE} is set, so this test must not skip")
    pytest.skip(message)


def sources_hash() -> str:
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        digest.update(name.encode() + b"\0" + (SOURCES / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def rum_bundle() -> Path:
    """The bundled page script, built from the pinned npm packages if this source has no build yet."""
    target = BUILDS / sources_hash()
    bundle = target / BUNDLE_NAME
    if bundle.is_file():
        return bundle
    npm = require_tool("npm", package="npm")
    require_tool("node", "nodejs", package="nodejs")
    BUILDS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILDS) as scratch:
        work = Path(scratch)
        for name in SOURCE_FILES:
            shutil.copy2(SOURCES / name, work / name)
        for step in ([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], [npm, "run", "build"]):
            result = subprocess.run(step, cwd=work, capture_output=True, text=True, timeout=600, check=False)
            if result.returncode != 0:
                _missing(
                    f"could not build the browser test page ({' '.join(step[1:])} exited {result.returncode}; "
                    f"is the npm registry reachable?):\n{result.stderr[-2000:]}"
                )
        shutil.rmtree(work / "node_modules")
        try:
            work.rename(target)
        except OSError:  # built meanwhile by another run
            if not bundle.is_file():
                raise
        else:
            work.mkdir()  # for TemporaryDirectory's cleanup
    for old in BUILDS.iterdir():  # builds of earlier sources
        if old.is_dir() and old != target and len(old.name) == len(target.name) and "tmp" not in old.name:
            shutil.rmtree(old, ignore_errors=True)
    return bundle


@contextmanager
def chromium_browser() -> Iterator[Browser]:
    """The system Chromium, headless, under Playwright."""
    executable = chromium()
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        _missing("the Python package playwright is missing: install the dev extra (pip install -e '.[dev]')")
        raise
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=list(FLAGS[1:]), timeout=60_000)
        try:
            yield browser
        finally:
            browser.close()
