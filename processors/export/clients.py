"""Downstream OTLP clients that send already-encoded request bytes: gRPC (grpc.aio) and HTTP (aiohttp).

Each client's `export` sends one body and returns an `Outcome`; it never raises for a
downstream problem (refused connection, timeout, error status). Bodies are passed through as
they are: no parsing, no re-encoding. TLS uses the system's roots unless a CA file is given; a
client certificate makes it mTLS. Static headers (e.g. an API token) go with every request.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import ssl
from typing import Literal, Protocol

import aiohttp
import grpc
from grpc import aio

from otel_impact.processors.config import ExporterConfig
from otel_impact.processors.export.retry import Outcome, classify_grpc, classify_http, success_from_response
from otel_impact.version import __version__

logger = logging.getLogger("otel_impact.processor")

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
METRICS_EXPORT_METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
Signal = Literal["traces", "metrics"]
USER_AGENT = f"otel-impact/{__version__}"
MAX_RESPONSE_BYTES = 4 << 20


class DownstreamClient(Protocol):
    """Sends OTLP trace request bytes to one downstream."""

    async def export(self, body: bytes) -> Outcome: ...

    async def close(self) -> None: ...


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as handle:
        return handle.read()


class GrpcClient:
    """OTLP/gRPC with a raw-bytes unary call on one grpc.aio channel (HTTP/2 multiplexes the consumers).

    ``signal`` picks the service: traces (what the forwarders send) or metrics (the SLI engine's
    derived series). The two responses' ``partial_success`` have the same wire layout.
    """

    def __init__(self, config: ExporterConfig, signal: Signal = "traces") -> None:
        self.config = config
        options = [
            ("grpc.max_send_message_length", -1),
            ("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),
            ("grpc.primary_user_agent", USER_AGENT),
        ]
        if config.uses_tls:
            tls = config.tls
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls.ca_file) if tls else None,
                private_key=_read(tls.key_file) if tls else None,
                certificate_chain=_read(tls.cert_file) if tls else None,
            )
            self._channel = aio.secure_channel(config.target, credentials, options=options)
        else:
            self._channel = aio.insecure_channel(config.target, options=options)
        self._call = self._channel.unary_unary(EXPORT_METHOD if signal == "traces" else METRICS_EXPORT_METHOD)
        self._metadata = tuple((name.lower(), value) for name, value in config.headers.items())
        self._compression = grpc.Compression.Gzip if config.compression == "gzip" else grpc.Compression.NoCompression

    async def export(self, body: bytes) -> Outcome:
        try:
            response = await self._call(
                body, timeout=self.config.timeout, metadata=self._metadata or None, compression=self._compression
            )
        except aio.AioRpcError as error:
            return classify_grpc(error.code(), error.details(), error.trailing_metadata())
        return success_from_response(response)

    async def close(self) -> None:
        await self._channel.close()


class HttpClient:
    """OTLP/HTTP with protobuf bodies (``application/x-protobuf``), optionally gzip-compressed."""

    def __init__(self, config: ExporterConfig, signal: Signal = "traces") -> None:
        self.config = config
        self.url = config.traces_url if signal == "traces" else config.metrics_url
        context: ssl.SSLContext | bool = False
        if config.uses_tls:
            context = ssl.create_default_context(cafile=config.tls.ca_file if config.tls else None)
            if config.tls and config.tls.cert_file and config.tls.key_file:
                context.load_cert_chain(config.tls.cert_file, config.tls.key_file)
        self._ssl = context
        self._headers = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": USER_AGENT,
            **dict(config.headers),
        }
        if config.compression == "gzip":
            self._headers["Content-Encoding"] = "gzip"
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.config.queue.consumers, ssl=self._ssl)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout),
                auto_decompress=True,
            )
        return self._session

    async def export(self, body: bytes) -> Outcome:
        payload = gzip.compress(body, compresslevel=5) if self.config.compression == "gzip" else body
        try:
            async with self._get_session().post(self.url, data=payload, headers=self._headers) as response:
                content = await response.content.read(MAX_RESPONSE_BYTES)
                if 200 <= response.status < 300:
                    is_protobuf = response.content_type == "application/x-protobuf"
                    return success_from_response(content if is_protobuf else b"")
                message = content[:200].decode("utf-8", "replace")
                return classify_http(response.status, response.headers.get("Retry-After"), message)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            return Outcome(ok=False, retryable=True, reason=type(error).__name__, message=str(error)[:200])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def make_client(config: ExporterConfig, signal: Signal = "traces") -> DownstreamClient:
    """The client for ``config.endpoint``'s scheme, sending ``signal``."""
    return GrpcClient(config, signal) if config.protocol == "grpc" else HttpClient(config, signal)
