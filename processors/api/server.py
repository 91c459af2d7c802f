"""The admin HTTP server: ``/healthz``, ``/readyz``, ``/metrics``, and routes other components add.

Components add their routes before `start`, either with `add_routes` (a callback that gets the
``aiohttp.web.Application``) or through `app` directly::

    service.admin.add_routes(lambda app: app.router.add_get("/api/v1/impact", handler))

``/healthz`` answers 200 while the process runs; ``/readyz`` answers 200 only while the
processor accepts data (503 while starting and draining). Both stay open to probes; with a
bearer token configured, every other route requires it. TLS and mTLS are configured like the
receivers'. Every answer carries `SECURITY_HEADERS`; the listener's `ServerLimits` apply as on the
OTLP/HTTP receiver (``intake.server_guard``: header and request deadlines, connection cap,
one-line logs of malformed requests).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import MappingProxyType
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from otel_impact.processors.config import Listener
from otel_impact.processors.impact_queries import AnswerUnavailable
from otel_impact.processors.intake.server_guard import ConnectionGuard, OneLineLogger, RateLimitedLog, start_site
from otel_impact.processors.security import BearerCheck, server_ssl_context

logger = logging.getLogger("otel_impact.processor")

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
SECURITY_HEADERS: Final = MappingProxyType(
    {
        # The dashboard loads its script and style sheet from this origin and fetches /api/v1/* and
        # nothing else: no inline script or style, no other origin, no framing.
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }
)
"""Set on every answer of the admin server (pages, files, API, metrics, probes, errors)."""
RouteCallback = Callable[[web.Application], object]


class AdminServer:
    """Owns the admin aiohttp application."""

    def __init__(
        self,
        listener: Listener,
        registry: CollectorRegistry,
        ready: Callable[[], bool],
        *,
        on_closed_connection: Callable[[str], None] | None = None,
    ) -> None:
        """``on_closed_connection(reason)`` counts each connection the limits closed (see `ConnectionGuard`)."""
        self.listener = listener
        self._registry = registry
        self._ready = ready
        self._details: list[Callable[[], str]] = []
        self._before_answers: list[Callable[[], Awaitable[object]]] = []
        self._auth = BearerCheck(listener)
        self.app = web.Application(middlewares=[self._auth_middleware])
        """The application; add routes to it before `start`."""
        self.app.on_response_prepare.append(_add_security_headers)
        self._guard = ConnectionGuard("admin", listener.limits, on_closed_connection)
        self._guard.install(self.app)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def add_routes(self, callback: RouteCallback) -> None:
        """Let ``callback(app)`` add routes (before `start`; the router is frozen afterwards)."""
        if self._runner is not None:
            raise RuntimeError("admin routes must be added before the admin server starts.")
        callback(self.app)

    def add_before_answer(self, step: Callable[[], Awaitable[object]]) -> None:
        """Await ``step()`` before answering any route but the probes (e.g. letting analysis
        catch up with the batches accepted before the request). It must bound its own wait."""
        self._before_answers.append(step)

    @web.middleware
    async def _auth_middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path not in OPEN_PATHS and not self._auth.allows(request.headers.get("Authorization")):
            return web.Response(
                status=401, text="missing or wrong bearer token\n", headers={"WWW-Authenticate": "Bearer"}
            )
        if request.path not in OPEN_PATHS:
            for step in self._before_answers:
                await step()
        try:
            return await handler(request)
        except AnswerUnavailable as error:
            return web.json_response({"error": str(error)}, status=503, headers={"Retry-After": "5"})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    def add_readiness_detail(self, detail: Callable[[], str]) -> None:
        """Add a line to ``/readyz``'s body (e.g. the shared state's status); it does not decide
        readiness: intake works whatever the line says."""
        self._details.append(detail)

    async def _readyz(self, request: web.Request) -> web.Response:
        details = "".join(f"{detail()}\n" for detail in self._details)
        if self._ready():
            return web.Response(text=f"ready\n{details}")
        return web.Response(status=503, text=f"not ready\n{details}")

    async def _metrics(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self._registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def start(self) -> int:
        endpoint = self.listener.endpoint
        assert endpoint is not None
        runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=self.listener.limits.idle_timeout,
            logger=OneLineLogger("admin", RateLimitedLog(logger)),
        )
        await runner.setup()
        await start_site(
            runner, endpoint.host, endpoint.port, self._guard, ssl_context=server_ssl_context(self.listener.tls)
        )
        self._runner = runner
        for address in runner.addresses:
            if isinstance(address, tuple) and len(address) >= 2:
                self.port = int(address[1])
                break
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


async def _add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)
