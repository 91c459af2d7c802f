"""The OTLP/gRPC receiver: a raw-bytes generic handler on grpc.aio (the request is never parsed by gRPC).

``TraceService/Export`` hands the undecoded request bytes to `Pipeline.submit` and answers an
empty ``ExportTraceServiceResponse`` (zero bytes on the wire) or an error status from
`errors`. gRPC decompresses gzip itself. Bodies above ``max_request_bytes`` are refused with
RESOURCE_EXHAUSTED and counted; gRPC's own transport cap is set 4 times higher, and a message
past it is refused by gRPC before the processor sees it (not counted).
"""

from __future__ import annotations

import logging
import socket

import grpc
from grpc import aio

from otel_impact.processors.config import Listener
from otel_impact.processors.intake.base import UNAUTHENTICATED, OtlpReceiver
from otel_impact.processors.intake.status import grpc_code, grpc_trailers
from otel_impact.processors.pipeline import Pipeline, Rejection
from otel_impact.processors.security import grpc_server_credentials

logger = logging.getLogger("otel_impact.processor")

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
TRANSPORT = "grpc"


class GrpcReceiver(OtlpReceiver):
    """Owns the grpc.aio server. `start` binds and returns the port (the chosen one for port 0)."""

    def __init__(self, listener: Listener, max_request_bytes: int, pipeline: Pipeline) -> None:
        super().__init__(listener, max_request_bytes, pipeline)
        self._server: aio.Server | None = None

    async def _export(self, request: bytes, context: aio.ServicerContext) -> bytes:
        pipeline = self.pipeline
        if self._auth.enabled:
            metadata = dict(context.invocation_metadata() or ())
            header = metadata.get("authorization")
            if not self._auth.allows(header if isinstance(header, str) else None):
                await self._abort(context, pipeline.reject(TRANSPORT, UNAUTHENTICATED))
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
        cap = max(self.max_request_bytes * 4, 16 << 20)
        server = aio.server(
            options=[
                ("grpc.max_receive_message_length", cap),
                ("grpc.max_send_message_length", 4 << 20),
                ("grpc.so_reuseport", 0),
            ]
        )
        handler = grpc.method_handlers_generic_handler(
            SERVICE, {"Export": grpc.unary_unary_rpc_method_handler(self._export)}
        )
        server.add_generic_rpc_handlers((handler,))
        address = str(endpoint)
        # gRPC core reports a failed bind (or lookup) as a raw log line and no reason: find it out first.
        _probe_bind(endpoint.host, endpoint.port)
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


def _probe_bind(host: str, port: int) -> None:
    """Raise the `OSError` of binding ``host:port`` when none of its addresses can be bound.

    As gRPC does, the bind succeeds when any address the host resolves to can be bound, with
    ``SO_REUSEADDR``. The probe socket is closed at once; gRPC binds right after.
    """
    first: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                first = first or error
                continue
            return
    if first is not None:
        raise first
