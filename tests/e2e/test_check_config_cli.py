"""``otel-impact check-config`` as a user runs it: exit codes and what it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.paths import ROOT

TESTDATA = ROOT / "tests" / "unit" / "processors" / "config" / "testdata"
CLI = str(Path(sys.executable).parent / "otel-impact")


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def test_check_config_command(tmp_path: Path) -> None:
    good = subprocess.run([CLI, "check-config", str(TESTDATA / "config.yaml")], capture_output=True, text=True)
    # The example names a token file that does not exist here: a clear error, exit code 2.
    assert good.returncode == 2 and "receivers.http.auth.bearer_token_file" in good.stderr, good.stderr
    ok = subprocess.run(
        [CLI, "check-config", write(tmp_path, "exporters: [grpc://collector:4317]\n")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert ok.returncode == 0 and "forward: grpc://collector:4317 (grpc)" in ok.stdout, ok.stderr
    missing_key = subprocess.run(
        [CLI, "check-config", write(tmp_path, "pseudonymization: {attributes: [enduser.id]}\n")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert missing_key.returncode == 2
    assert "pseudonymization.attributes: pseudonymization is configured but no key is set" in missing_key.stderr
    assert "OTEL_IMPACT_HASH_KEY" in missing_key.stderr
