"""The generated protobuf code is what protoc makes from the checked-in .proto today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.paths import ROOT


def test_generated_code_matches_the_proto(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={ROOT / 'proto'}",
            f"--python_out={tmp_path}",
            str(ROOT / "proto" / "impact_view.proto"),
        ],
        check=True,
    )
    assert (tmp_path / "impact_view_pb2.py").read_text() == (ROOT / "proto" / "impact_view_pb2.py").read_text(), (
        "proto/impact_view_pb2.py is stale: run scripts/gen_proto"
    )
