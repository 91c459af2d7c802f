"""Starting test services as subprocesses, with their output kept for failure messages."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from demo.child_processes import stop_process

APPS = Path(__file__).parent / "apps"


class Service:
    """A running test service: its port, its process, and its stderr so far."""

    def __init__(self, port: int, process: subprocess.Popen[str], log_path: Path) -> None:
        self.port = port
        self.process = process
        self._log_path = log_path

    def log(self) -> str:
        return self._log_path.read_text(errors="replace")


@contextmanager
def service(
    script: str,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    *,
    command: Sequence[str] = (),
    inherit_env: bool = True,
    cwd: Path | None = None,
) -> Iterator[Service]:
    """Run ``support/apps/<script>`` (under ``command``, e.g. opentelemetry-instrument), yield it
    once it printed its port on the first line of stdout, and stop it afterwards.

    ``env`` is added to this process's environment, or replaces it when ``inherit_env`` is false.
    ``cwd`` is the service's working directory (``opentelemetry-instrument`` puts it on the path).
    """
    full_env = {**os.environ, **(env or {})} if inherit_env else dict(env or {})
    with tempfile.TemporaryDirectory() as scratch:
        log_path = Path(scratch) / "stderr.log"
        with open(log_path, "w") as log:
            argv = [*command, str(APPS / script), *args] if command else [sys.executable, str(APPS / script), *args]
            process = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=full_env,
                cwd=cwd,
            )
        try:
            assert process.stdout is not None
            first = process.stdout.readline().strip()
            if not first.isdigit():
                process.kill()
                process.wait(timeout=10)
                raise RuntimeError(f"{script} did not start: {first!r}\n{log_path.read_text(errors='replace')}")
            yield Service(int(first), process, log_path)
        finally:
            stop_process(process)
            if process.stdout is not None:
                process.stdout.close()
