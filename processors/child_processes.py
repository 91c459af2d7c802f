"""Starting a helper process of the processor: a fresh interpreter with two pipes and a spec.

Analysis workers and extra intake processes are started the same way, by `start_child`: a new
``python -c`` interpreter (never ``-m``, which would put the working directory first on
``sys.path``, where a folder named ``otel_impact``, a source checkout, would shadow the
installed package; never multiprocessing's spawn, which re-imports the parent's ``__main__``)
running ``entry`` with two inherited pipe descriptors, and its spec pickled on its standard
input. The child reads the first pipe and writes the second; the parent keeps the other ends.
The second pipe ends (EOF) when the child exits, however it exits: that is how its death is seen.
Use `child_pipes` in the child to open its ends.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection

__all__ = ["Child", "child_pipes", "close_pipe", "start_child"]


@dataclass
class Child:
    """A started child: its process, the pipe to it and the pipe from it."""

    process: subprocess.Popen[bytes]
    to_child: Connection
    from_child: Connection


def start_child(entry: str, spec: object) -> Child:
    """Start ``entry`` (``"package.module:function"``, called with the child's arguments) in a
    fresh interpreter with two pipes, and hand it ``spec``. Raises ``OSError`` when it cannot start."""
    module, _, function = entry.partition(":")
    boot = f"import sys; del sys.path[0]; from {module} import {function}; {function}(sys.argv[1:])"
    down_read, down_write = os.pipe()
    up_read, up_write = os.pipe()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", boot, str(down_read), str(up_write)],
            stdin=subprocess.PIPE,
            pass_fds=(down_read, up_write),
        )
    except OSError:
        os.close(down_write)
        os.close(up_read)
        raise
    finally:
        os.close(down_read)
        os.close(up_write)
    assert process.stdin is not None
    with process.stdin:
        process.stdin.write(pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL))
    return Child(process, Connection(down_write, readable=False), Connection(up_read, writable=False))


def child_pipes(argv: Sequence[str]) -> tuple[object, Connection, Connection]:
    """In the child: its spec (from standard input), the pipe it reads and the pipe it writes."""
    spec = pickle.load(sys.stdin.buffer)
    return spec, Connection(int(argv[0]), writable=False), Connection(int(argv[1]), readable=False)


def close_pipe(pipe: Connection | None, loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Close a pipe to a child process (``None``: nothing to do); with ``loop``, first stop the
    loop watching it for reading."""
    if pipe is None:
        return
    if loop is not None:
        loop.remove_reader(pipe.fileno())
    pipe.close()
