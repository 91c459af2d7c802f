"""``otel-impact report`` as a user runs it: the installed command against a live admin API."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from support.sli_http import build_engine, serving


def test_an_unknown_task_is_refused_with_the_reason_and_exit_code_2(tmp_path: Path) -> None:
    async def check() -> None:
        async with serving(build_engine()) as base:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "otel_impact.processors.cli", "report", "--admin", base, "--task", "nope",
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
            )  # fmt: skip
            stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 2, stderr
        assert b"unknown task 'nope'" in stderr and stdout == b""

    asyncio.run(check())
