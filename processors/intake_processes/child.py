"""An extra intake process of ``serve --workers N``: receivers, pipeline, forwarders and analysis.

`main` is the process's entry point (`INTAKE_ENTRY` runs it with the control and relay pipes'
descriptors; its `IntakeSpec` comes pickled on standard input). It runs a `ProcessorService`
with ``process_index`` above 0 (the shared ports, no admin server, its own ``--state``
subdirectory) whose analysis results go through a `RelaySink` to the main process, and sends
`Ready`, a `MetricsSnapshot` every ``metrics_interval_s`` and, for each `Sync`, what its
analysis workers have reported, a snapshot and `Synced`.

It drains and exits when its control pipe ends (the main process is stopping, or gone) or on
SIGTERM; SIGINT (a terminal's Ctrl-C reaches the whole process group) is left to the main one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection

import prometheus_client

from otel_impact import ConfigurationError
from otel_impact.processors.analysis.sink import RelaySink
from otel_impact.processors.child_processes import child_pipes
from otel_impact.processors.components import attach_relayed_analysis
from otel_impact.processors.service import ProcessorService

from .messages import Failed, IntakeSpec, MetricsSnapshot, Ready, Sync, Synced
from .metrics import take_snapshot

__all__ = ["Relay", "main", "serve_intake"]

logger = logging.getLogger("otel_impact.processor")


class Relay:
    """Sends messages to the main process: what one turn of the event loop produced goes as one
    pickled list (results, counts and snapshots are small and many). ``on_broken`` is called
    when the main process is gone."""

    def __init__(self, connection: Connection, loop: asyncio.AbstractEventLoop, on_broken: asyncio.Event) -> None:
        self._connection = connection
        self._loop = loop
        self._broken = on_broken
        self._pending: list[object] = []
        self._scheduled = False

    def send(self, message: object) -> None:
        self._pending.append(message)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is pending now (blocking while the pipe is full: the main process reads it)."""
        self._scheduled = False
        if not self._pending:
            return
        messages, self._pending = self._pending, []
        try:
            self._connection.send_bytes(pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            self._broken.set()  # the main process is gone: stop


def main(argv: list[str]) -> None:
    """The process's entry point: ``argv`` holds the control and relay pipes' descriptors."""
    spec, control, relay = child_pipes(argv)
    if not isinstance(spec, IntakeSpec):
        raise SystemExit("otel-impact intake process: expected an IntakeSpec on standard input")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=spec.log_level,
        format=f"%(asctime)s %(levelname)s %(name)s: [intake {spec.index}] %(message)s",
        stream=sys.stderr,
    )
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]  # as the main process's
    raise SystemExit(asyncio.run(serve_intake(spec, control, relay)))


async def serve_intake(spec: IntakeSpec, control: Connection, relay_pipe: Connection) -> int:
    """Serve until the control pipe ends or SIGTERM, then drain; the exit code (1: could not start)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    relay = Relay(relay_pipe, loop, stop)
    try:
        service = ProcessorService(spec.config, process_index=spec.index)
        pool = attach_relayed_analysis(service, RelaySink(relay.send))
    except ConfigurationError as error:
        relay.send(Failed(str(error)))
        relay.flush()
        return 1
    registry = service.accounting.registry

    def snapshot() -> None:
        relay.send(MetricsSnapshot(take_snapshot(registry)))

    async def sync(token: int) -> None:
        if pool is not None:
            await pool.caught_up()
        snapshot()
        relay.send(Synced(token))

    tasks: set[asyncio.Task[None]] = set()

    def on_control() -> None:
        try:
            while control.poll():
                message = pickle.loads(control.recv_bytes())
                if isinstance(message, Sync):
                    task = loop.create_task(sync(message.token))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        except (EOFError, OSError):
            loop.remove_reader(control.fileno())
            stop.set()

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(control.fileno(), on_control)
    try:
        await service.start()
    except (OSError, ConfigurationError) as error:
        relay.send(Failed(str(error)))
        relay.flush()
        await service.shutdown()
        return 1
    relay.send(Ready(os.getpid()))
    snapshot()
    ticker = loop.create_task(_every(spec.metrics_interval_s, snapshot))
    try:
        await stop.wait()
    finally:
        ticker.cancel()
        with contextlib.suppress(Exception):
            loop.remove_reader(control.fileno())
        await service.shutdown()  # stops receivers, drains forwarders, folds the workers' last results
        for task in tasks:
            task.cancel()
        snapshot()
        relay.flush()
    return 0


async def _every(interval_s: float, step: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(interval_s)
        step()
