"""The OTLP/HTTP receiver on aiohttp: ``POST /v1/traces`` with protobuf or JSON, optionally compressed.

``Content-Type`` ``application/x-protobuf`` (or ``application/protobuf``) bodies are passed on
as they are; ``application/json`` bodies are converted by `otlp_json`, large ones in a worker
process (`decode_pool`: a body that finds the workers busy and the waiting room full gets 503
with ``Retry-After``, counted with reason ``busy``). ``Content-Encoding`` may be ``gzip``,
``deflate`` or ``zstd`` (`decompress`; another one gets 415). The body is read with a limit of
``max_request_bytes``, and decompressed within that limit and within
``max_decompression_ratio`` times its compressed size (no decompression bombs): a larger one
gets 413. The answer is an ``ExportTraceServiceResponse`` in the request's encoding, or a
``google.rpc.Status`` with the status codes in `errors`. The listener's `ServerLimits` apply
through `server_guard` (header and request deadlines, connection cap, one-line error logs).
With ``cors`` configured, web pages of the allowed origins may export from a browser (`cors`).
"""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web

from otel_impact.processors.config import Listener
from otel_impact.processors.config.model import DEFAULT_MAX_DECOMPRESSION_RATIO
from otel_impact.processors.intake.base import UNAUTHENTICATED, OtlpReceiver, PortSharing, probe_bind
from otel_impact.processors.intake.cors import Cors
from otel_impact.processors.intake.decode_pool import BUSY_RETRY_AFTER, Busy, DecodePool
from otel_impact.processors.intake.otlp_json import InvalidJson
from otel_impact.processors.intake.server_guard import ConnectionGuard, OneLineLogger, RateLimitedLog, start_site
from otel_impact.processors.intake.status import http_body, http_status
from otel_impact.processors.pipeline import Pipeline, Rejection
from otel_impact.processors.security import server_ssl_context

logger = logging.getLogger("otel_impact.processor")

PROTOBUF_TYPES = frozenset({"application/x-protobuf", "application/protobuf"})
JSON_TYPE = "application/json"
TRACES_PATH = "/v1/traces"
BUSY: Final = Rejection("busy", "the processor is decoding other JSON requests; retry later", BUSY_RETRY_AFTER)


class HttpReceiver(OtlpReceiver):
    """Owns the aiohttp server of the OTLP/HTTP receiver."""

    def __init__(
        self,
        listener: Listener,
        max_request_bytes: int,
        pipeline: Pipeline,
        *,
        max_decompression_ratio: float = DEFAULT_MAX_DECOMPRESSION_RATIO,
        port_sharing: PortSharing = "none",
    ) -> None:
        super().__init__(
            listener,
            max_request_bytes,
            pipeline,
            max_decompression_ratio=max_decompression_ratio,
            port_sharing=port_sharing,
        )
        self._runner: web.AppRunner | None = None
        self.decoder = DecodePool()
        """Decodes OTLP/JSON bodies, off the event loop when they are large."""

    def _count_closed(self, reason: str) -> None:
        self.pipeline.accounting.closed_connections.labels("otlp_http", reason).inc()

    def _answer(
        self, transport: str, rejection: Rejection, json_encoding: bool, *, counted: bool = False
    ) -> web.Response:
        if not counted:
            self.pipeline.reject(transport, rejection)
        headers = {}
        if rejection.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(rejection.retry_after)))
        if rejection.reason == "unauthenticated":
            headers["WWW-Authenticate"] = "Bearer"
        return web.Response(
            status=http_status(rejection),
            body=http_body(rejection, json_encoding),
            content_type=JSON_TYPE if json_encoding else "application/x-protobuf",
            headers=headers,
        )

    async def _read_body(self, request: web.Request) -> bytes | Rejection:
        """The decompressed body, or why it is refused (too large, past the ratio, corrupt, unknown encoding)."""
        limit = self.max_request_bytes
        if request.content_length is not None and request.content_length > limit:
            return self.too_large()
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.read(1 << 18):
            size += len(chunk)
            if size > limit:
                return self.too_large()
            chunks.append(chunk)
        return self._inflater.inflate(b"".join(chunks), request.headers.get("Content-Encoding", "identity"))

    async def _traces(self, request: web.Request) -> web.Response:
        content_type = request.content_type
        json_encoding = content_type == JSON_TYPE
        transport = "http/json" if json_encoding else "http/protobuf"
        if not self._auth.allows(request.headers.get("Authorization")):
            return self._answer(transport, UNAUTHENTICATED, json_encoding)
        if not json_encoding and content_type not in PROTOBUF_TYPES:
            message = "use Content-Type application/x-protobuf or application/json"
            return self._answer(transport, Rejection("unsupported_media_type", message), json_encoding)
        body = await self._read_body(request)
        if isinstance(body, Rejection):
            return self._answer(transport, body, json_encoding)
        if json_encoding:
            try:
                body = await self.decoder.decode(body)
            except InvalidJson as error:
                return self._answer(transport, Rejection("invalid", f"invalid OTLP/JSON: {error}"), json_encoding)
            except Busy:
                return self._answer(transport, BUSY, json_encoding)
        rejection = self.pipeline.submit(body, transport)
        if rejection is not None:
            return self._answer(transport, rejection, json_encoding, counted=True)
        if json_encoding:
            return web.Response(body=b"{}", content_type=JSON_TYPE)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def start(self) -> int:
        endpoint = self.listener.endpoint
        assert endpoint is not None
        app = web.Application(client_max_size=self.max_request_bytes + 1)
        app.router.add_post(TRACES_PATH, self._traces)
        cors = self.listener.cors
        if cors is not None and cors.enabled:
            browsers = Cors(cors, self.pipeline.accounting.cors_refused_preflights)
            app.router.add_route("OPTIONS", TRACES_PATH, browsers.preflight)
            app.on_response_prepare.append(browsers.decorate)
        limits = self.listener.limits
        guard = ConnectionGuard("otlp_http", limits, self._count_closed)
        guard.install(app)
        # The body is decompressed here, with the size limit applied to the output (no gzip bombs).
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            auto_decompress=False,
            keepalive_timeout=limits.idle_timeout,
            logger=OneLineLogger("otlp_http", RateLimitedLog(logger)),
        )
        if self.port_sharing == "first" and endpoint.port:  # never share a port another process holds
            probe_bind(endpoint.host, endpoint.port)
        await runner.setup()
        await start_site(
            runner,
            endpoint.host,
            endpoint.port,
            guard,
            ssl_context=server_ssl_context(self.listener.tls),
            reuse_port=self.port_sharing != "none",
        )
        self._runner = runner
        self.port = _bound_port(runner, endpoint.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.decoder.close()


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested
