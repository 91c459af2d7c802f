"""The package as a user installs it: an sdist and a wheel built from the tracked files, installed
into fresh virtual environments, once as the SDK alone and once with the ``processor`` extra.

The wheel is built from the sdist, so a file missing from the sdist fails here too. Installs use
``constraints.txt``, the known-good OpenTelemetry stack the rest of the suite runs against.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.builds import copy_tracked_files, run
from support.paths import ROOT

CONSTRAINTS = ROOT / "constraints.txt"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The sdist built from a copy of the tracked files, and the wheel built from that sdist."""
    work = tmp_path_factory.mktemp("build")
    source = copy_tracked_files(work / "source")
    dist = work / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, source)
    build = "from setuptools import build_meta as b; import sys; b.build_sdist(sys.argv[1])"
    run(sys.executable, "-c", build, dist, cwd=source)
    (sdist,) = dist.glob("otel_impact-*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(work / "unpacked", filter="data")
    (unpacked,) = (work / "unpacked").iterdir()
    for old in dist.glob("*.whl"):
        old.unlink()
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, unpacked)
    (wheel,) = dist.glob("otel_impact-*.whl")
    yield sdist, wheel


def fresh_venv(path: Path, requirement: str) -> Path:
    venv.EnvBuilder(with_pip=True).create(path)
    python = path / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-c", CONSTRAINTS, requirement)
    return path / "bin"


def test_the_wheel_holds_the_package_and_nothing_of_the_repository(artifacts: tuple[Path, Path]) -> None:
    _, wheel = artifacts
    names = zipfile.ZipFile(wheel).namelist()
    assert "otel_impact/py.typed" in names
    assert "otel_impact/processors/cli/__init__.py" in names
    assert "otel_impact/processors/api/static/index.html" in names
    assert not [n for n in names if n.startswith(("tests/", "examples/", "benchmarks/", "demo/"))]
    assert not [n for n in names if "testdata" in n]


def test_sdk_only_install_runs_the_quickstart_and_the_cli_says_what_is_missing(
    artifacts: tuple[Path, Path], tmp_path: Path
) -> None:
    _, wheel = artifacts
    bin_dir = fresh_venv(tmp_path / "sdk", str(wheel))
    assert "serve" in run(bin_dir / "otel-impact", "--help").stdout
    quickstart = run(bin_dir / "python", ROOT / "examples" / "quickstart.py", cwd=tmp_path)
    assert "impact.customer.hash=" in quickstart.stdout and "alice@example.com" not in quickstart.stdout
    serve = subprocess.run([bin_dir / "otel-impact", "serve"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert serve.returncode != 0
    assert "otel-impact[processor]" in serve.stdout + serve.stderr


def test_processor_install_serves_help(artifacts: tuple[Path, Path], tmp_path: Path) -> None:
    _, wheel = artifacts
    bin_dir = fresh_venv(tmp_path / "processor", f"otel-impact[processor] @ {wheel.as_uri()}")
    assert "serve" in run(bin_dir / "otel-impact", "--help").stdout
    help_text = run(bin_dir / "otel-impact", "serve", "--help").stdout
    assert "--config" in help_text and "--state" in help_text
    config = tmp_path / "config.yaml"
    config.write_text("sli:\n  tasks:\n    - name: checkout\n")
    assert run(bin_dir / "otel-impact", "check-config", config, cwd=tmp_path).stdout.startswith("ok: ")


def test_folders_are_mapped_into_the_namespace_not_global() -> None:
    code = (
        "import importlib.util as u, otel_impact.instrumentation, otel_impact.processors, otel_impact.proto;"
        "print(u.find_spec('processors'), u.find_spec('instrumentation'), u.find_spec('proto'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/").stdout
    assert out.split() == ["None", "None", "None"]
