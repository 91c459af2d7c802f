"""Real Redis servers on loopback for the shared-state tests (Debian's redis-server).

`redis_server()` starts a standalone server; `redis_cluster()` starts three (or more) servers
with ``--cluster-enabled yes`` and joins them with ``redis-cli --cluster create``. Each runs in
a temporary directory, without persistence, on free ports, and is stopped afterwards. Both skip
(or fail in CI) when the binaries are missing.
"""

from __future__ import annotations

import random
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from demo.child_processes import stop_process

from support.tools import require_tool


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _free_cluster_port() -> int:
    """A free port at most 55535 whose cluster bus port (10,000 higher) is free too."""
    for _ in range(200):
        port = random.randrange(20_000, 55_535)
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 10_000))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


@dataclass
class RedisServer:
    """One running redis-server. `stop` and `start` again keep the port (an outage, then recovery)."""

    port: int
    directory: Path
    extra: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        binary = require_tool("redis-server", package="redis-server")
        log = (self.directory / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{self.log()}")
            if self.ping():
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}:\n{self.log()}")

    def stop(self) -> None:
        """Kill the server (SIGKILL: an outage, not a clean shutdown)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def cli(self, *args: str) -> str:
        """Run ``redis-cli`` against this server and return its output."""
        binary = require_tool("redis-cli", package="redis-tools")
        done = subprocess.run(
            [binary, "-h", "127.0.0.1", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    def log(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def redis_server(*extra: str) -> Iterator[RedisServer]:
    """A standalone redis-server on a free loopback port, stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="redis-") as scratch:
        server = RedisServer(_free_port(), Path(scratch), extra)
        server.start()
        try:
            yield server
        finally:
            if server.process is not None:
                stop_process(server.process)


@dataclass
class RedisCluster:
    """A Redis Cluster of masters only on loopback; `url` lists every node as a seed."""

    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        return "redis://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)


@contextmanager
def redis_cluster(masters: int = 3, timeout: float = 60.0) -> Iterator[RedisCluster]:
    """``masters`` cluster-enabled servers joined by ``redis-cli --cluster create``; waits for
    ``cluster_state:ok`` on every node."""
    with ExitStack() as stack:
        nodes = []
        for _ in range(masters):
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="redis-cluster-")))
            port = _free_cluster_port()
            node = RedisServer(
                port,
                scratch,
                ("--cluster-enabled", "yes", "--cluster-config-file", str(scratch / "nodes.conf")),
            )
            node.start()
            stack.callback(lambda n=node: n.process is not None and stop_process(n.process))
            nodes.append(node)
        nodes[0].cli(
            "--cluster",
            "create",
            *(f"127.0.0.1:{node.port}" for node in nodes),
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in node.cli("cluster", "info") for node in nodes):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
        yield RedisCluster(nodes)
