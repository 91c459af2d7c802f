"""The impact processor as one service: receivers → pipeline → forwarders, plus the admin server.

Everything runs on one asyncio event loop in the main thread (grpc.aio and aiohttp share it),
so the process uses about one core; run several processes for more.

Lifecycle: `start` builds the queues (restoring a persistent one) and the forwarders, then the
pipeline over them and the analyzers added before, starts the forwarders, the admin server and
the receivers, then accepts data. `shutdown` (on SIGTERM or SIGINT through
`run`) stops intake first (new requests are told to retry), lets running calls finish, drains
the queues until ``drain_timeout``, then stops the forwarders: what is left stays on disk with
``--state``, or is counted as dropped without it. Calling `shutdown` twice is harmless.

With ``receivers.processes`` above 1 (``serve --workers N``) this is intake process 0 of several:
its receivers bind the ports first (``SO_REUSEPORT``), then `start` starts the others through the
`PeerGroup` added with `add_peers` and waits until they listen on the same ports; `shutdown`
tells them to drain alongside its own drain and waits for them before the components stop (so
the last checkpoint holds their last results). An extra process is a `ProcessorService` too,
with ``process_index`` above 0, no admin server and no components but its analysis.

A server that cannot bind its address stops the start with a `ListenError` naming the server,
the address and the flag that chooses another; the shutdown that follows a start that never
accepted data says nothing about draining (there was nothing to drain).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import re
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import IO, Protocol

from prometheus_client import CollectorRegistry

from otel_impact.processors.api.server import AdminServer
from otel_impact.processors.export import Forwarder, PersistentQueue, SendQueue, make_client
from otel_impact.processors.intake import GrpcReceiver, HttpReceiver
from otel_impact.processors.intake.base import PortSharing
from otel_impact.processors.intake_processes.metrics import SummedRegistry
from otel_impact.processors.pipeline.identity import build_rewriter

from .accounting import Accounting
from .batch import BatchAnalyzer
from .clock import Clock, SystemClock
from .pipeline import Pipeline
from .serve_config import ServeConfig

logger = logging.getLogger("otel_impact.processor")

RECEIVER_GRACE_SECONDS = 2.0


class ListenError(OSError):
    """A server could not listen on its address. The message is one line, e.g. ``cannot listen
    on 127.0.0.1:4317 for OTLP/gRPC: address already in use (choose another with --otlp-grpc or
    stop the other process)``."""

    def __init__(self, server: str, address: str, flag: str, cause: OSError) -> None:
        self.server = server
        self.address = address
        if cause.errno is not None and cause.errno > 0:
            reason = os.strerror(cause.errno).lower()
        else:  # a host that does not resolve (a negative getaddrinfo code), or no code at all
            reason = cause.strerror.lower() if cause.strerror else str(cause) or type(cause).__name__
        if cause.errno == errno.EADDRINUSE:
            fix = f"choose another with {flag} or stop the other process"
        elif cause.errno == errno.EACCES:
            fix = f"choose a port above 1023 with {flag}, or grant the process the right to bind it"
        else:
            fix = f"check the address given with {flag} or in the config file"
        super().__init__(f"cannot listen on {address} for {server}: {reason} ({fix})")
        self.errno = cause.errno


class ServiceComponent(Protocol):
    """Something that lives as long as the service: the SLI and SLO engines, for example.

    ``start`` runs after the forwarders and the admin server are up and before the receivers
    accept data; ``stop`` runs after intake has stopped and the queues were drained, so the
    component sees no batch after it (the place for a final checkpoint).
    """

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class PeerGroup(Protocol):
    """The extra intake processes of ``serve --workers N``, seen from the main one."""

    async def start(self, ports: Mapping[str, int]) -> None:
        """Start them on the main's bound ``ports``; return once all listen. Raises `OSError`
        naming the process and the reason when one cannot start."""

    async def drain(self, timeout: float) -> None:
        """Tell them to stop intake and drain (for up to ``timeout`` seconds) and wait until they
        have exited, their last results and metrics folded in (killing any still running well
        past it)."""

    def ready(self) -> bool:
        """Whether every one of them is up and listening."""


def queue_directory(state_dir: str, exporter_name: str) -> str:
    """Where the persistent queue of ``exporter_name`` lives under ``state_dir``."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", exporter_name)
    return os.path.join(state_dir, "queues", safe)


class ProcessorService:
    """The whole processor. Construct, optionally add analyzers and admin routes, then `start`."""

    def __init__(
        self,
        config: ServeConfig,
        *,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
        environ: Mapping[str, str] | None = None,
        process_index: int = 0,
    ) -> None:
        self.config = config
        self.process_index = process_index
        """0 for the main process (the only one with an admin server), else an extra intake process's number."""
        self.clock = clock or SystemClock()
        self.accounting = Accounting(registry)
        self.rewriter = build_rewriter(config.pseudonymization, environ)
        self.analyzers: list[BatchAnalyzer] = []
        self.forwarders: tuple[Forwarder, ...] = ()
        self.pipeline: Pipeline | None = None
        """Built by `start`, over the forwarders and with the analyzers added before."""
        self.metrics = SummedRegistry(self.accounting.registry)
        """What ``/metrics`` answers: this process's registry plus the extra intake processes' samples."""
        closed = self.accounting.closed_connections
        self.admin = AdminServer(
            config.admin,
            self.metrics,
            self._accepting,
            on_closed_connection=lambda reason: closed.labels("admin", reason).inc(),
        )
        """Add routes to it (`AdminServer.add_routes`) before `start`."""
        self.grpc: GrpcReceiver | None = None
        self.http: HttpReceiver | None = None
        self.ports: dict[str, int] = {}
        self.components: list[ServiceComponent] = []
        self.peers: PeerGroup | None = None
        self._lock_file: IO[bytes] | None = None
        self._stopped = asyncio.Event()
        self._shutdown_started = False
        self._accepted = False
        """Whether `start` got as far as accepting data (else there is nothing to drain)."""

    def add_analyzer(self, analyzer: BatchAnalyzer) -> None:
        """Register a per-batch analyzer (see `BatchAnalyzer`); call before `start`."""
        if self.pipeline is not None:
            raise RuntimeError("add analyzers before the service starts")
        self.analyzers.append(analyzer)

    def add_component(self, component: ServiceComponent) -> None:
        """Register a component started and stopped with the service (see `ServiceComponent`)."""
        self.components.append(component)

    def add_peers(self, peers: PeerGroup) -> None:
        """Register the extra intake processes (see `PeerGroup`); call before `start`."""
        self.peers = peers

    def _accepting(self) -> bool:
        accepting = self.pipeline is not None and self.pipeline.accepting
        return accepting and (self.peers is None or self.peers.ready())

    @property
    def port_sharing(self) -> PortSharing:
        """How the receivers bind: alone, first of several intake processes, or joining the first."""
        if self.config.receivers.processes <= 1:
            return "none"
        return "first" if self.process_index == 0 else "join"

    def _make_queue(self, index: int) -> SendQueue:
        exporter = self.config.exporters[index]
        queue_config = exporter.queue
        if self.config.state_dir is None:
            return SendQueue(queue_config.max_requests, queue_config.max_bytes)
        directory = queue_directory(self.config.state_dir, exporter.name)
        return PersistentQueue(directory, queue_config.max_requests, queue_config.max_bytes, fsync=queue_config.fsync)

    def _lock_state_dir(self) -> None:
        state_dir = self.config.state_dir
        if state_dir is None:
            return
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        handle = open(os.path.join(state_dir, "LOCK"), "ab")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise OSError(
                f"another otel-impact serve is using --state {state_dir}; give each process its own"
            ) from None
        self._lock_file = handle

    async def start(self) -> None:
        """Bind everything and start accepting; the chosen ports are in `ports` and in the log."""
        config = self.config
        self._lock_state_dir()
        self.forwarders = tuple(
            Forwarder(exporter, self._make_queue(index), make_client(exporter), self.accounting, self.clock)
            for index, exporter in enumerate(config.exporters)
        )
        pipeline = Pipeline(
            self.forwarders,
            self.accounting,
            self.clock,
            rewriter=self.rewriter,
            analyzers=self.analyzers,
            max_spans=config.receivers.max_spans_per_request,
        )
        self.pipeline = pipeline
        for forwarder in self.forwarders:
            forwarder.start()
        if config.admin.endpoint is not None:
            self.ports["admin"] = await _listen("admin", config.admin.endpoint, "--admin", self.admin.start)
        for component in self.components:
            await component.start()
        receivers = config.receivers
        size, ratio = receivers.max_request_bytes, receivers.max_decompression_ratio
        sharing = self.port_sharing
        if receivers.grpc.endpoint is not None:
            self.grpc = GrpcReceiver(
                receivers.grpc, size, pipeline, max_decompression_ratio=ratio, port_sharing=sharing
            )
            grpc_port = await _listen("OTLP/gRPC", receivers.grpc.endpoint, "--otlp-grpc", self.grpc.start)
            self.ports["otlp_grpc"] = grpc_port
        if receivers.http.endpoint is not None:
            self.http = HttpReceiver(
                receivers.http, size, pipeline, max_decompression_ratio=ratio, port_sharing=sharing
            )
            http_port = await _listen("OTLP/HTTP", receivers.http.endpoint, "--otlp-http", self.http.start)
            self.ports["otlp_http"] = http_port
        if self.peers is not None:
            await self.peers.start(self.ports)
            if receivers.separate_grpc and self.grpc is not None:
                # The extra processes listen on the gRPC port now; this one served it only while
                # they started, and leaves it to them (calls in flight are finished).
                await self.grpc.stop(RECEIVER_GRACE_SECONDS)
                self.grpc = None
        pipeline.accepting = True
        self._accepted = True
        self.accounting.ready.set(1)
        self._log_start()

    def _log_start(self) -> None:
        config = self.config
        if self.process_index:  # the main process logs the addresses and the warnings, once
            logger.info("otel-impact: intake process %d listening (pid %d)", self.process_index, os.getpid())
            return
        hosts = {
            "otlp_grpc": config.receivers.grpc.endpoint,
            "otlp_http": config.receivers.http.endpoint,
            "admin": config.admin.endpoint,
        }
        listening = " ".join(
            f"{name}={host.host if host else ''}:{port}"
            for name, port in self.ports.items()
            if (host := hosts.get(name)) is not None
        )
        logger.info("otel-impact serve listening: %s", listening)
        listeners = {"otlp_grpc": config.receivers.grpc, "otlp_http": config.receivers.http, "admin": config.admin}
        for name, listener in listeners.items():
            endpoint = listener.endpoint
            wide = endpoint is not None and endpoint.host in ("0.0.0.0", "::", "")
            if wide and listener.tls is None and listener.auth.bearer_token is None:
                logger.warning(
                    "otel-impact: %s listens on all interfaces without TLS or a bearer token; "
                    "bind it to localhost or configure auth if the network is not trusted",
                    name,
                )
        if not self.forwarders:
            logger.warning("otel-impact: no --forward given: spans are analyzed and counted, not forwarded")
        for forwarder in self.forwarders:
            kind = "persistent" if forwarder.queue.persistent else "in-memory"
            logger.info("otel-impact: forwarding to %s (%s queue)", forwarder.name, kind)
        if self.rewriter is not None:
            logger.info(
                "otel-impact: pseudonymizing %s with key id %s", ", ".join(self.rewriter.keys), self.rewriter.key_id
            )

    async def shutdown(self) -> None:
        """Stop intake, drain until the deadline, persist or count what is left. Idempotent."""
        if self._shutdown_started:
            await self._stopped.wait()
            return
        self._shutdown_started = True
        accepted = self._accepted  # a start that failed before accepting has nothing to drain or report
        deadline = self.clock.monotonic() + (self.config.drain_timeout if accepted else 0.0)
        if self.pipeline is not None:
            self.pipeline.accepting = False
        self.accounting.ready.set(0)
        if accepted:
            logger.info("otel-impact: stopping intake; draining for up to %.0fs", self.config.drain_timeout)
        peers = None
        if self.peers is not None:  # they drain alongside this process
            peers = asyncio.ensure_future(self.peers.drain(max(0.0, deadline - self.clock.monotonic())))
        if self.grpc is not None:
            await self.grpc.stop(RECEIVER_GRACE_SECONDS)
        if self.http is not None:
            await self.http.stop()
        await asyncio.gather(*(forwarder.drain(deadline) for forwarder in self.forwarders))
        left = sum(await asyncio.gather(*(forwarder.abort() for forwarder in self.forwarders)))
        if peers is not None:
            await peers
        if left == 0 and accepted:
            logger.info("otel-impact: drained; everything received was delivered or accounted for")
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception:  # one component failing to stop must not keep the others from it
                logger.exception("otel-impact: stopping %s failed", component.name)
        await self.admin.stop()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        self._stopped.set()

    async def run(self) -> None:
        """Start, serve until SIGTERM/SIGINT, then shut down gracefully."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await self.start()
            await stop.wait()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(signum)
            await self.shutdown()


async def _listen(server: str, address: object, flag: str, start: Callable[[], Awaitable[int]]) -> int:
    """``await start()`` (a server's bind), its failure turned into a `ListenError` naming the server."""
    try:
        return await start()
    except OSError as error:
        raise ListenError(server, str(address), flag, error) from None
