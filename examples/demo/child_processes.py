"""Child processes: stopping one, and reading the ports ``otel-impact serve`` logs when it listens.

The demo runs the processor and its example services this way; the tests use the same helpers.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

_LISTENING = re.compile(r"listening: (.*)$", re.MULTILINE)


def listening_ports(log: str) -> dict[str, int] | None:
    """The ports of the processor's ``otel-impact serve listening: otlp_grpc=127.0.0.1:4317 ...``
    line in ``log`` by name (``{"otlp_grpc": 4317, ...}``), or None while it is not logged yet."""
    match = _LISTENING.search(log)
    if match is None:
        return None
    return {name: int(address.rsplit(":", 1)[1]) for name, address in (p.split("=", 1) for p in match.group(1).split())}


def stop_process(process: subprocess.Popen[Any], timeout: float = 10.0) -> int:
    """Ask ``process`` to stop (SIGTERM), give it ``timeout`` seconds, then kill it; its exit code.

    Returns at once for a process that has already exited.
    """
    process.terminate()
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(timeout=10)
