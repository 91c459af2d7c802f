"""Finding the external tools some tests run (promtool, Alertmanager).

On a developer machine without them, those tests skip and say how to install them. In CI
(``OTEL_IMPACT_REQUIRE_TOOLS=1``, set by ``.ci/run``, which installs them) a missing tool is a
failure, so a broken install cannot turn into silently skipped tests.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_VARIABLE = "OTEL_IMPACT_REQUIRE_TOOLS"


def require_tool(*names: str, package: str) -> str:
    """The path of the first of ``names`` on PATH; skip (or fail in CI) when none is there."""
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    message = f"{' or '.join(names)} not found: install the Debian package {package} (apt-get install {package})"
    if os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0"):
        pytest.fail(f"{message}; {REQUIRE_VARIABLE} is set, so this test must not skip")
    pytest.skip(message)
