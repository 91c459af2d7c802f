"""Where no C compiler works, the package still builds, installs and runs: the extensions (span
pre-filter, OTLP/JSON transcoder) are optional, and `otel_impact.proto.prefilter` and
`otel_impact.processors.intake.otlp_json` fall back to pure Python."""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

from support.builds import copy_tracked_files, run

CHECK = """
import sys
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otel_impact.proto import prefilter

assert prefilter.__file__.startswith(sys.argv[1]), prefilter.__file__
request = ExportTraceServiceRequest()
request.resource_spans.add().scope_spans.add().spans.add(name="op")
data = request.SerializeToString()
assert prefilter.filter_spans(data, b"impact.task.name") == (1, data)
from otel_impact.processors.intake import otlp_json

assert otlp_json.json_to_protobuf(b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"op"}]}]}]}') == data
print(prefilter.NATIVE, otlp_json.NATIVE_JSON)
"""


def test_a_wheel_built_without_a_compiler_installs_and_falls_back(tmp_path: Path) -> None:
    source = copy_tracked_files(tmp_path / "source")
    no_compiler = {**os.environ, "CC": "false"}  # every compile and link fails, as with no compiler at all
    dist = tmp_path / "dist"
    built = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, source, env=no_compiler
    )
    (wheel,) = dist.glob("otel_impact-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "otel_impact/proto/prefilter.py" in names
    assert "otel_impact/processors/intake/otlp_json.py" in names
    compiled = [n for n in names if ("_prefilter" in n or "_otlp_json" in n) and n.endswith(".so")]
    assert not compiled, built.stdout
    site = tmp_path / "site"
    run(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site, wheel)
    environment = {k: v for k, v in os.environ.items() if k != "OTEL_IMPACT_PURE_PYTHON"}
    environment["PYTHONPATH"] = str(site)  # ahead of the development install
    checked = run(sys.executable, "-c", CHECK, site, cwd=tmp_path, env=environment)
    assert checked.stdout.strip() == "False False"
