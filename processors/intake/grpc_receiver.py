"""The OTLP/gRPC receiver: a raw-bytes generic handler on grpc.aio (the request is never parsed by gRPC).

``TraceService/Export`` hands the undecoded request bytes to `Pipeline.submit` and answers an
empty ``ExportTraceServiceResponse`` (zero bytes on the wire) or an error status from
`errors`. Bodies above ``max_request_bytes`` are refused with RESOURCE_EXHAUSTED and counted;
gRPC's own transport cap (on the message as sent, compressed or not) is set 4 times higher, and
a message past it is refused by gRPC before the processor sees it (not counted).

Decompression is the processor's, not gRPC's (``grpc.per_message_decompression`` is off): gRPC
would inflate a 4 KB gzip message to its 16 MiB cap before the processor could look, and it
bounds only that absolute size. `decompress.Inflater` bounds the output by ``max_request_bytes``
*and* by ``max_decompression_ratio`` times the compressed size, while decompressing; a message
past the ratio is refused with RESOURCE_EXHAUSTED naming the setting, counted with reason
``decompression_ratio``. gRPC does not tell the application a message's encoding: the
request deserializer recognizes gzip and deflate (the two gRPC clients send) by their headers.

The connection limits are gRPC core's channel arguments (`server_options`, from the listener's
`ServerLimits`); gRPC core closes the connections itself, so those closes are not counted.
"""

from __future__ import annotations

import logging

import grpc
from grpc import aio

from otel_impact.processors.config import ServerLimits
from otel_impact.processors.intake.base import UNAUTHENTICATED, OtlpReceiver, probe_bind
from otel_impact.processors.intake.decompress import sniff_encoding
from otel_impact.processors.intake.status import grpc_code, grpc_trailers
from otel_impact.processors.pipeline import Rejection
from otel_impact.processors.security import grpc_server_credentials

logger = logging.getLogger("otel_impact.processor")

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
TRANSPORT = "grpc"


class GrpcReceiver(OtlpReceiver):
    """Owns the grpc.aio server. `start` binds and returns the port (the chosen one for port 0)."""

    _server: aio.Server | None = None

    def _inflate(self, message: bytes) -> bytes | Rejection:
        """The request deserializer: the message decompressed, or why it is refused."""
        return self._inflater.inflate(message, sniff_encoding(message))

    async def _export(self, request: bytes | Rejection, context: aio.ServicerContext) -> bytes:
        pipeline = self.pipeline
        if self._auth.enabled:
            metadata = dict(context.invocation_metadata() or ())
            header = metadata.get("authorization")
            if not self._auth.allows(header if isinstance(header, str) else None):
                await self._abort(context, pipeline.reject(TRANSPORT, UNAUTHENTICATED))
        if isinstance(request, Rejection):
            await self._abort(context, pipeline.reject(TRANSPORT, request))
            return b""
        if len(request) > self.max_request_bytes:
            await self._abort(context, pipeline.reject(TRANSPORT, self.too_large()))
        refused = pipeline.submit(request, TRANSPORT)
        if refused is not None:
            await self._abort(context, refused)
        return b""

    @staticmethod
    async def _abort(context: aio.ServicerContext, rejection: Rejection) -> None:
        await context.abort(grpc_code(rejection), rejection.message, trailing_metadata=grpc_trailers(rejection))

    async def start(self) -> int:
        endpoint = self.listener.endpoint
        assert endpoint is not None
        sharing = self.port_sharing
        options = server_options(self.listener.limits, self.max_request_bytes, reuse_port=sharing != "none")
        server = aio.server(options=options)
        export = grpc.unary_unary_rpc_method_handler(self._export, request_deserializer=self._inflate)
        handler = grpc.method_handlers_generic_handler(SERVICE, {"Export": export})
        server.add_generic_rpc_handlers((handler,))
        address = str(endpoint)
        # gRPC core reports a failed bind (or lookup) as a raw log line and no reason: find it out first.
        probe_bind(endpoint.host, endpoint.port, reuse_port=sharing == "join")
        try:
            if self.listener.tls is not None:
                self.port = server.add_secure_port(address, grpc_server_credentials(self.listener.tls))
            else:
                self.port = server.add_insecure_port(address)
        except RuntimeError:  # grpc reports a failed bind this way
            self.port = 0
        if self.port == 0:
            raise OSError(f"gRPC could not bind {address}")
        await server.start()
        self._server = server
        return self.port

    async def stop(self, grace: float) -> None:
        """Stop taking calls; calls already running get ``grace`` seconds to finish."""
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None


def server_options(limits: ServerLimits, max_request_bytes: int, *, reuse_port: bool = False) -> list[tuple[str, int]]:
    """gRPC core's channel arguments for the receiver: message caps, decompression off, and `ServerLimits`.

    ``read_header_timeout`` bounds the connection's handshake (TLS and HTTP/2 settings);
    ``idle_timeout`` closes a connection without calls; ``max_connection_age`` (plus its grace)
    bounds every connection's life, so a client that sends a byte a second is cut off then; the
    server pings a quiet client every ``keepalive_time`` and closes it when no answer comes in
    ``keepalive_timeout``; ``max_concurrent_streams`` bounds the calls of one connection and
    ``max_connections`` the connections (gRPC core closes one past it at once). With
    ``reuse_port`` the port is bound with ``SO_REUSEPORT``, to be shared by intake processes.
    """

    def ms(seconds: float) -> int:
        return max(1, round(seconds * 1000))

    options = [
        ("grpc.max_receive_message_length", max(max_request_bytes * 4, 16 << 20)),
        ("grpc.max_send_message_length", 4 << 20),
        ("grpc.so_reuseport", int(reuse_port)),
        ("grpc.per_message_decompression", 0),
        ("grpc.server_handshake_timeout_ms", ms(limits.read_header_timeout)),
        ("grpc.max_connection_idle_ms", ms(limits.idle_timeout)),
        ("grpc.keepalive_time_ms", ms(limits.grpc_keepalive_time)),
        ("grpc.keepalive_timeout_ms", ms(limits.grpc_keepalive_timeout)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.max_concurrent_streams", limits.grpc_max_concurrent_streams),
        ("grpc.max_allowed_incoming_connections", limits.connection_cap()),
    ]
    if limits.grpc_max_connection_age > 0:
        options.append(("grpc.max_connection_age_ms", ms(limits.grpc_max_connection_age)))
        options.append(("grpc.max_connection_age_grace_ms", ms(limits.grpc_max_connection_age_grace)))
    return options
