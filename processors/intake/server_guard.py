"""Time and connection limits for the aiohttp servers (OTLP/HTTP and admin), and quiet logs under attack.

aiohttp closes idle keep-alive connections (``keepalive_timeout``) and bounds request lines and
headers by size, but it waits for a half-sent request forever. `ConnectionGuard` adds what is
missing, at the transport level, for one server:

- **a connection cap**: a connection beyond ``max_connections`` is closed at once (RST), counted
  with reason ``max_connections``, so a flood of connections cannot use up the open-files limit;
- **a header deadline**: the request's headers must arrive ``read_header_timeout`` after the
  connection opened, or after the first byte of a keep-alive connection's next request;
- **a request deadline**: the whole request (headers and body) must arrive, and its answer
  start, ``read_timeout`` after it began. A client that sends a byte a second is cut off;
- **an idle deadline**: a connection quiet for ``idle_timeout`` after an answer is closed
  (aiohttp's ``keepalive_timeout`` does the same, except while it drains an unread body).

A late connection is aborted and counted with reason ``read_header_timeout`` or
``read_timeout``. The guard sees the connection through a thin `asyncio.Protocol` wrapped
around aiohttp's own (`GuardedSite`), and the request through a middleware (headers parsed) and
the ``on_response_prepare`` signal (answer started): no aiohttp internals.

`OneLineLogger` turns aiohttp's traceback for each malformed request into one line, and
`quiet_accept_errors` turns asyncio's report of each failed ``accept()`` (``EMFILE``: too many
open files) into one line per interval with a count; both go through `RateLimitedLog`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from otel_impact.processors.config import ServerLimits

__all__ = ["ConnectionGuard", "GuardedSite", "OneLineLogger", "RateLimitedLog", "quiet_accept_errors", "start_site"]

logger = logging.getLogger("otel_impact.processor")

LOG_INTERVAL: Final = 10.0
"""Seconds between two log lines about the same kind of event."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RateLimitedLog:
    """At most one line per ``interval`` seconds for each key; the next line says how many were left out."""

    def __init__(
        self, log: logging.Logger, interval: float = LOG_INTERVAL, clock: Callable[[], float] = time.monotonic
    ):
        self._log = log
        self._interval = interval
        self._clock = clock
        self._next: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def log(self, level: int, key: str, message: str) -> bool:
        """Log ``message`` unless a line for ``key`` was logged less than ``interval`` ago (then count it).

        Returns whether the line was written.
        """
        now = self._clock()
        if now < self._next.get(key, 0.0):
            self._skipped[key] = self._skipped.get(key, 0) + 1
            return False
        skipped = self._skipped.pop(key, 0)
        if skipped:
            message = f"{message} (and {skipped} more like it in the last {self._interval:g}s)"
        self._log.log(level, "%s", message)
        self._next[key] = now + self._interval
        return True


class OneLineLogger(logging.Logger):
    """The logger aiohttp's request handler writes to: errors become one rate-limited line, no traceback.

    aiohttp logs a malformed request (bad request line, header too long, ...) as an ERROR with a
    full traceback (~700 bytes); any client can send one. Here it is one WARNING line naming the
    server and the error, at most one per `LOG_INTERVAL` (the others are counted in the next line).
    """

    def __init__(self, server: str, lines: RateLimitedLog) -> None:
        super().__init__(f"otel_impact.processor.{server}")
        self.parent = logger  # anything not overridden here goes where the processor's lines go
        self._server = server
        self._lines = lines

    def _one_line(self, msg: object, args: Any, kwargs: dict[str, Any]) -> None:
        error = kwargs.get("exc_info")
        text = str(msg) % args if args else str(msg)
        if isinstance(error, ConnectionError):  # the client went away, or a limit closed its connection
            logger.debug("otel-impact: %s: %s: %s", self._server, text, error)
            return
        if isinstance(error, BaseException):
            detail = str(error).splitlines()[0] if str(error) else ""
            text = f"{text}: {type(error).__name__} {detail}".rstrip()
        self._lines.log(logging.WARNING, f"{self._server}:bad_request", f"otel-impact: {self._server}: {text}")

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._one_line(msg, args, kwargs)

    def exception(self, msg: object, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        self._one_line(msg, args, {**kwargs, "exc_info": exc_info})

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self._one_line(msg, args, kwargs)

    def isEnabledFor(self, level: int) -> bool:
        return level >= logging.WARNING or logger.isEnabledFor(level)

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            kwargs.pop("exc_info", None)
            text = str(msg) % args if args else str(msg)
            logger.debug("otel-impact: %s: %s", self._server, text)


class _Connection:
    """One connection's deadline: the time by which its current request must have got this far."""

    __slots__ = ("started", "timer", "transport", "waiting_headers")

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.timer: asyncio.TimerHandle | None = None
        self.waiting_headers = True
        self.started: float | None = None
        """When the current request began (None: the connection is idle between requests)."""


class ConnectionGuard:
    """The limits of one server (`ServerLimits`): connection cap, header and request deadlines.

    ``on_close(reason)`` is called for every connection the guard closes, with one of
    ``accounting.CLOSE_REASONS``. Use `protocol_factory` as the listening socket's protocol factory (or
    `GuardedSite`), add `middleware` first to the application and `on_response_prepare` to its
    signal (`install`).
    """

    def __init__(self, server: str, limits: ServerLimits, on_close: Callable[[str], None] | None = None) -> None:
        self.server = server
        self.limits = limits
        self.max_connections = limits.connection_cap()
        self._on_close = on_close
        self._open: dict[asyncio.BaseTransport, _Connection] = {}
        self._lines = RateLimitedLog(logger)

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def install(self, app: web.Application) -> None:
        """Add the middleware (outermost) and the response signal to ``app`` (before it starts)."""
        app.middlewares.insert(0, self.middleware)
        app.on_response_prepare.append(self.on_response_prepare)

    def protocol_factory(self, inner: Callable[[], asyncio.BaseProtocol]) -> Callable[[], asyncio.Protocol]:
        """A factory of protocols that apply the limits around those ``inner`` makes."""
        return lambda: _GuardedProtocol(self, inner)

    def _closed(self, reason: str, transport: asyncio.BaseTransport) -> None:
        transport.abort() if isinstance(transport, asyncio.Transport) else transport.close()
        if self._on_close is not None:
            self._on_close(reason)
        limit = {
            "max_connections": f"max_connections={self.max_connections}",
            "read_header_timeout": f"read_header_timeout={self.limits.read_header_timeout:g}s",
            "read_timeout": f"read_timeout={self.limits.read_timeout:g}s",
        }[reason]
        self._lines.log(
            logging.WARNING,
            reason,
            f"otel-impact: {self.server}: closed a connection past {limit} (see docs/security.md)",
        )

    # The connection's life, from _GuardedProtocol.
    def accept(self, transport: asyncio.BaseTransport) -> bool:
        """Register a new connection, or close it at once when the server is at its cap."""
        if len(self._open) >= self.max_connections:
            self._closed("max_connections", transport)
            return False
        connection = _Connection(transport)
        self._open[transport] = connection
        self._begin(connection)
        return True

    def data(self, transport: asyncio.BaseTransport) -> None:
        connection = self._open.get(transport)
        if connection is not None and connection.started is None:
            self._begin(connection)  # the first byte of the next request on a keep-alive connection

    def lost(self, transport: asyncio.BaseTransport) -> None:
        connection = self._open.pop(transport, None)
        if connection is not None and connection.timer is not None:
            connection.timer.cancel()

    def _begin(self, connection: _Connection) -> None:
        loop = asyncio.get_running_loop()
        connection.started = loop.time()
        connection.waiting_headers = True
        self._arm(connection, connection.started + self.limits.read_header_timeout, "read_header_timeout")

    def _arm(self, connection: _Connection, when: float, reason: str) -> None:
        if connection.timer is not None:
            connection.timer.cancel()
        loop = asyncio.get_running_loop()
        connection.timer = loop.call_at(when, self._expire, connection, reason)

    def _expire(self, connection: _Connection, reason: str) -> None:
        connection.timer = None
        if self._open.pop(connection.transport, None) is None:
            return
        if reason == "idle_timeout":  # a quiet keep-alive connection: normal, closed without a word
            connection.transport.close()
        else:
            self._closed(reason, connection.transport)

    # The request's progress, from the application.
    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The headers are in: from now on the request deadline applies."""
        connection = self._open.get(request.transport) if request.transport is not None else None
        if connection is not None and connection.waiting_headers:
            connection.waiting_headers = False
            started = connection.started if connection.started is not None else asyncio.get_running_loop().time()
            self._arm(connection, started + self.limits.read_timeout, "read_timeout")
        return await handler(request)

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """The answer starts: the request is complete; the connection is idle until its next byte.

        aiohttp closes an idle connection after ``keepalive_timeout`` (set to ``idle_timeout``) but
        not while it drains the unread body of a request answered early: the guard closes it then.
        """
        connection = self._open.get(request.transport) if request.transport is not None else None
        if connection is not None:
            connection.started = None
            when = asyncio.get_running_loop().time() + self.limits.idle_timeout
            self._arm(connection, when, "idle_timeout")


class _GuardedProtocol(asyncio.Protocol):
    """Passes every event on to aiohttp's protocol, telling the guard first."""

    def __init__(self, guard: ConnectionGuard, inner: Callable[[], asyncio.BaseProtocol]) -> None:
        self._guard = guard
        self._make_inner = inner
        self._inner: Any = None
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        if self._guard.accept(transport):
            self._inner = self._make_inner()
            self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            assert self._transport is not None
            self._guard.data(self._transport)
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard.lost(self._transport)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class GuardedSite(web.TCPSite):
    """`aiohttp.web.TCPSite` whose connections go through ``guard``."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(runner, host, port, **kwargs)
        self._guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner
        loop = asyncio.get_running_loop()
        quiet_accept_errors(loop)
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_server(
            self._guard.protocol_factory(server),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port


_ACCEPT_MESSAGE: Final = "socket.accept() out of system resource"


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Report ``loop``'s failed ``accept()`` calls (EMFILE, ENFILE, ENOBUFS, ENOMEM) in one line per
    `LOG_INTERVAL` with a count, instead of a traceback per try; other reports go on as before.

    asyncio retries a failed accept every second on each listening socket and reports each try
    through the loop's exception handler. Installed once per loop; idempotent.
    """
    previous = loop.get_exception_handler()
    if isinstance(previous, _AcceptErrors):
        return
    loop.set_exception_handler(_AcceptErrors(previous))


class _AcceptErrors:
    def __init__(self, previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None) -> None:
        self._previous = previous
        self._lines = RateLimitedLog(logger)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") == _ACCEPT_MESSAGE:
            error = context.get("exception")
            self._lines.log(
                logging.ERROR,
                "accept",
                f"otel-impact: cannot accept connections: {error} "
                "(raise the open-files limit, ulimit -n, or lower max_connections; see docs/operations.md)",
            )
            return
        if self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)


async def start_site(runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard, **kwargs: Any) -> None:
    """Bind and start a `GuardedSite` for ``runner``; when the address cannot be bound, release what
    ``runner`` set up and raise the `OSError` for the caller to report (naming its server)."""
    site = GuardedSite(runner, host, port, guard, **kwargs)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
