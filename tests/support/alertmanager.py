"""A real Alertmanager (Debian's prometheus-alertmanager) on loopback, for delivery tests."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from demo.child_processes import stop_process

from support.tools import require_tool

CONFIG = """\
route:
  receiver: nowhere
  group_wait: 1h
receivers:
  - name: nowhere
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Alertmanager:
    def __init__(self, url: str, process: subprocess.Popen[str], log: list[str]) -> None:
        self.url = url
        self.process = process
        self._log = log

    def log(self) -> str:
        return "".join(self._log)


@contextmanager
def alertmanager(startup_timeout: float = 30.0) -> Iterator[Alertmanager]:
    """Start Alertmanager with a temporary config and data directory, clustering off; yield it
    once it listens, and stop it afterwards. Skips (or fails in CI) if it is not installed."""
    binary = require_tool("prometheus-alertmanager", "alertmanager", package="prometheus-alertmanager")
    port = _free_port()
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "alertmanager.yml"
        config.write_text(CONFIG)
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={scratch}/data",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=info",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        log: list[str] = []
        listening = threading.Event()

        def drain() -> None:
            for line in process.stderr or []:
                log.append(line)
                if "Listening on" in line:
                    listening.set()

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            if not listening.wait(startup_timeout):
                raise RuntimeError(f"Alertmanager did not start:\n{''.join(log)}")
            yield Alertmanager(f"http://127.0.0.1:{port}", process, log)
        finally:
            stop_process(process)
            reader.join(timeout=10)  # the pipe reaches its end once the process is gone
            if process.stderr is not None:
                process.stderr.close()
