"""The main process's side of ``serve --workers N``: start, watch, sync, restart and drain the extras.

`IntakeProcesses` is the `PeerGroup` of the main `ProcessorService`. Everything runs on the
main's event loop and never waits on an extra process without a bound:

* `start` starts ``receivers.processes - 1`` fresh interpreters (`INTAKE_ENTRY`), each with its
  `IntakeSpec` pickled on standard input, a control pipe (main → extra) and a relay pipe
  (extra → main), and returns once each has said `Ready` (or raises with the `Failed` reason);
* each relay pipe is read as messages arrive: analysis messages go to ``sink`` (the main's
  `EngineSink`: the same `SliState.apply` as the main's own results), metric snapshots to
  ``metrics`` (`SummedRegistry`);
* `caught_up` (awaited by the admin server before an answer) asks every extra process to relay
  what it has analysed and its metrics, and waits (bounded) for each to confirm, so an answer
  includes every span any process accepted before it was asked;
* an extra process that exits (its relay pipe ends) is restarted after a backoff, logged once
  and counted; its counters stay in the sums (`SummedRegistry.retire`);
* `drain` closes the control pipes (the extras stop intake, drain their forwarders, relay their
  last results and metrics, and exit) and waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from otel_impact.processors.analysis.sink import ResultSink, deliver
from otel_impact.processors.child_processes import close_pipe, start_child
from otel_impact.processors.config import HostPort, Listener
from otel_impact.processors.serve_config import ServeConfig

from .messages import INTAKE_ENTRY, Failed, IntakeSpec, MetricsSnapshot, Ready, Sync, Synced
from .metrics import SummedRegistry, carried_over

__all__ = ["RESTART_BACKOFF_S", "IntakeProcesses", "intake_state_dir"]

logger = logging.getLogger("otel_impact.processor")

RESTART_BACKOFF_S: Final = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
"""Seconds before restarting an extra intake process, by how many times it died in a row."""
STABLE_S: Final = 30.0
"""An extra process that ran this long before dying starts the backoff over."""
START_TIMEOUT_S: Final = 60.0
"""How long `start` waits for every extra process to listen."""
STOP_GRACE_S: Final = 5.0
"""How long `drain` waits past its timeout for the extras' last results before killing them."""
REQUESTS_SAMPLE: Final = "otel_impact_receiver_requests_total"


def intake_state_dir(state_dir: str, index: int) -> str:
    """Where extra intake process ``index`` keeps its state (its persistent queues) under ``--state``.

    Process 0, the main one, keeps the directory itself (the layout of a single process)."""
    return os.path.join(state_dir, f"intake-{index}")


@dataclass
class _Peer:
    """One extra intake process and the main's ends of its pipes."""

    index: int
    process: subprocess.Popen[bytes] | None = None
    control: Connection | None = None
    relay: Connection | None = None
    ready: bool = False
    failure: str | None = None
    synced: int = 0
    """The last `Sync` token it answered."""
    generation: int = 0
    failures: int = 0
    """Deaths in a row (picks the restart backoff)."""
    started_at: float = 0.0
    requests_before: float = 0.0
    """Requests received by its earlier lives (it counts from zero after a restart)."""


class IntakeProcesses:
    """The extra intake processes of ``config`` (see the module docstring).

    ``own_requests()`` is the main process's received-request count, for the per-process series.
    """

    def __init__(
        self,
        config: ServeConfig,
        sink: ResultSink,
        metrics: SummedRegistry,
        *,
        own_requests: Callable[[], float],
        log_level: int = logging.INFO,
    ) -> None:
        self.config = config
        self.sink = sink
        self.metrics = metrics
        self.own_requests = own_requests
        self.log_level = log_level
        self.restarts = 0
        self._peers = [_Peer(index) for index in range(1, config.receivers.processes)]
        self._ports: dict[str, int] = {}
        self._token = 0
        self._stopping = False
        self._started = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._restart_handles: dict[int, asyncio.TimerHandle] = {}
        self._progress = asyncio.Event()

    # -- the peer group ---------------------------------------------------------------------------

    async def start(self, ports: Mapping[str, int]) -> None:
        self._loop = asyncio.get_running_loop()
        self._ports = dict(ports)
        for peer in self._peers:
            self._start(peer)
        deadline = self._loop.time() + START_TIMEOUT_S
        while not all(peer.ready for peer in self._peers):
            failed = next((peer for peer in self._peers if peer.failure is not None or peer.relay is None), None)
            if failed is not None:
                raise OSError(f"intake process {failed.index} could not start: {failed.failure or 'it exited'}")
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                raise OSError(f"the intake processes did not listen within {START_TIMEOUT_S:g}s")
            await self._wait_progress(remaining)
        self._started = True
        logger.info("otel-impact: %d intake processes share the receivers' ports", len(self._peers) + 1)

    def ready(self) -> bool:
        return all(peer.ready for peer in self._peers)

    async def drain(self, timeout: float) -> None:
        self._stopping = True
        for handle in self._restart_handles.values():
            handle.cancel()
        self._restart_handles.clear()
        for peer in self._peers:
            if peer.control is not None:
                peer.control.close()  # the extra process drains, relays what it has, then exits
                peer.control = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout + STOP_GRACE_S
        while any(peer.relay is not None for peer in self._peers):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await self._wait_progress(remaining)
        for peer in self._peers:
            process = peer.process
            if peer.relay is not None:
                logger.warning("otel-impact: intake process %d did not stop in time; killing it", peer.index)
                self._retire(peer)
            if process is not None:
                if process.poll() is None:
                    process.kill()
                await asyncio.to_thread(process.wait)

    # -- processes ----------------------------------------------------------------------------------

    def spec(self, index: int) -> IntakeSpec:
        """The `IntakeSpec` of extra process ``index``: the shared ports, no admin server, its own state."""
        config = self.config
        receivers = config.receivers
        grpc, http = receivers.grpc, receivers.http
        if grpc.endpoint is not None:
            grpc = _at_port(grpc, self._ports["otlp_grpc"])
        if receivers.separate_grpc:  # the main process keeps OTLP/HTTP to itself
            http = replace(http, endpoint=None)
        elif http.endpoint is not None:
            http = _at_port(http, self._ports["otlp_http"])
        state_dir = None if config.state_dir is None else intake_state_dir(config.state_dir, index)
        child = replace(
            config,
            receivers=replace(receivers, grpc=grpc, http=http),
            admin=replace(config.admin, endpoint=None),
            state_dir=state_dir,
        )
        return IntakeSpec(index, child, self.log_level)

    def _start(self, peer: _Peer) -> None:
        assert self._loop is not None
        child = start_child(INTAKE_ENTRY, self.spec(peer.index))
        process = child.process
        peer.process = process
        peer.control, peer.relay = child.to_child, child.from_child
        peer.ready, peer.failure, peer.synced = False, None, 0
        peer.generation += 1
        peer.started_at = time.monotonic()
        # The relay pipe ends (EOF) when the process exits, whatever the way: that is how its death is seen.
        self._loop.add_reader(child.from_child.fileno(), self._read, peer)

    def _read(self, peer: _Peer) -> None:
        relay = peer.relay
        if relay is None:
            return
        try:
            while relay.poll():
                for message in pickle.loads(relay.recv_bytes()):
                    self._dispatch(peer, message)
        except (EOFError, OSError):
            self._on_exit(peer)
        except Exception as error:  # a bad message must not stop intake
            logger.error("otel-impact: could not read a message of intake process %d: %s", peer.index, error)

    def _dispatch(self, peer: _Peer, message: object) -> None:
        if deliver(message, self.sink):
            return
        if isinstance(message, MetricsSnapshot):
            restarted = peer.generation > 1  # what it restores, its earlier life counted as accepted
            self.metrics.update(peer.index, carried_over(message.families) if restarted else message.families)
        elif isinstance(message, Synced):
            peer.synced = message.token
        elif isinstance(message, Ready):
            peer.ready = True
        elif isinstance(message, Failed):
            peer.failure = message.reason
        else:
            logger.error("otel-impact: intake process %d sent an unknown message %s", peer.index, type(message))
            return
        self._progress.set()

    def _retire(self, peer: _Peer) -> None:
        """Stop watching ``peer``'s pipes; keep its counters in the sums."""
        close_pipe(peer.relay, self._loop)
        close_pipe(peer.control)
        peer.relay = peer.control = None
        peer.requests_before += self.metrics.peer_total(peer.index, REQUESTS_SAMPLE)
        self.metrics.retire(peer.index)
        peer.ready = False
        self._progress.set()

    def _on_exit(self, peer: _Peer) -> None:
        process = peer.process
        self._retire(peer)
        if process is None or self._stopping or self._loop is None:
            return
        try:
            code: int | None = process.wait(1.0)
        except subprocess.TimeoutExpired:
            process.kill()
            code = None
        if not self._started:
            return  # `start` reports it
        self.restarts += 1
        if time.monotonic() - peer.started_at >= STABLE_S:
            peer.failures = 0
        peer.failures += 1
        delay = RESTART_BACKOFF_S[min(peer.failures, len(RESTART_BACKOFF_S)) - 1]
        lost = "its queue under --state keeps" if self.config.state_dir else "its in-memory queue lost"
        logger.error(
            "otel-impact: intake process %d exited (exit code %s); restarting it in %gs (%s what it had accepted)",
            peer.index,
            code,
            delay,
            lost,
        )
        self._restart_handles[peer.index] = self._loop.call_later(delay, self._restart, peer)

    def _restart(self, peer: _Peer) -> None:
        self._restart_handles.pop(peer.index, None)
        if self._stopping or self._loop is None:
            return
        try:
            self._start(peer)
        except OSError as error:
            logger.error("otel-impact: could not restart intake process %d: %s; retrying", peer.index, error)
            self._restart_handles[peer.index] = self._loop.call_later(RESTART_BACKOFF_S[-1], self._restart, peer)

    # -- catching up ----------------------------------------------------------------------------------

    async def caught_up(self) -> bool:
        """Ask every listening extra process for what it has analysed and its metrics, and wait
        until each has answered (or is gone), at most ``analysis.catch_up_timeout`` plus a margin.
        Returns whether all answered."""
        self._token += 1
        token = self._token
        targets: list[tuple[_Peer, int]] = []
        message = pickle.dumps(Sync(token), protocol=pickle.HIGHEST_PROTOCOL)
        for peer in self._peers:
            if not peer.ready or peer.control is None:
                continue
            try:
                peer.control.send_bytes(message)
            except OSError:  # it is gone: its relay pipe is about to say so
                continue
            targets.append((peer, peer.generation))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.analysis.catch_up_timeout_s + 0.5
        while not all(
            peer.synced >= token or peer.generation != generation or peer.relay is None for peer, generation in targets
        ):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await self._wait_progress(remaining)
        return True

    async def _wait_progress(self, timeout: float) -> None:
        self._progress.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._progress.wait(), timeout)

    # -- metrics ----------------------------------------------------------------------------------------

    def collector(self) -> Collector:
        return _GroupCollector(self)

    def running(self) -> int:
        """Intake processes listening, the main one included."""
        return 1 + sum(peer.ready for peer in self._peers)

    def requests_by_process(self) -> Iterator[tuple[int, float]]:
        """Requests each intake process received (all its lives), the main one as 0."""
        yield 0, self.own_requests()
        for peer in self._peers:
            yield peer.index, peer.requests_before + self.metrics.peer_total(peer.index, REQUESTS_SAMPLE)


class _GroupCollector(Collector):
    def __init__(self, group: IntakeProcesses) -> None:
        self.group = group

    def collect(self) -> Iterator[Metric]:
        group = self.group
        running = GaugeMetricFamily("otel_impact_intake_processes", "Intake processes running (serve --workers).")
        running.add_metric([], float(group.running()))
        restarts = CounterMetricFamily(
            "otel_impact_intake_process_restarts", "Extra intake processes restarted after they exited."
        )
        restarts.add_metric([], float(group.restarts))
        requests = CounterMetricFamily(
            "otel_impact_intake_process_requests",
            "Export requests received, by intake process (0 is the main one): how the kernel spreads connections.",
            labels=["process"],
        )
        for index, count in group.requests_by_process():
            requests.add_metric([str(index)], count)
        yield from (running, restarts, requests)


def _at_port(listener: Listener, port: int) -> Listener:
    endpoint = listener.endpoint
    assert endpoint is not None
    return replace(listener, endpoint=HostPort(endpoint.host, port))
