"""What the two OTLP receivers share: their listener, body limit, pipeline and bearer check, and
how a port is shared between intake processes (`PortSharing`, `probe_bind`)."""

from __future__ import annotations

import socket
from typing import Final, Literal

from otel_impact.processors.config import Listener
from otel_impact.processors.config.model import DEFAULT_MAX_DECOMPRESSION_RATIO
from otel_impact.processors.intake.decompress import Inflater
from otel_impact.processors.pipeline import Pipeline, Rejection
from otel_impact.processors.security import BearerCheck

UNAUTHENTICATED: Final = Rejection("unauthenticated", "missing or wrong bearer token")

PortSharing = Literal["none", "first", "join"]
"""How a receiver binds its port: alone (``none``); as the first of several intake processes
(``first``: the port must be free, then it is bound with ``SO_REUSEPORT``); or joining the first
(``join``: bound with ``SO_REUSEPORT`` beside it, the kernel spreading connections over all)."""


class OtlpReceiver:
    """Base of `GrpcReceiver` and `HttpReceiver`: requests on ``listener`` (which has an endpoint)
    go to ``pipeline``; ``port`` is the bound port once ``start`` has returned. Bodies are
    decompressed within ``max_request_bytes`` and ``max_decompression_ratio`` (`Inflater`)."""

    def __init__(
        self,
        listener: Listener,
        max_request_bytes: int,
        pipeline: Pipeline,
        *,
        max_decompression_ratio: float = DEFAULT_MAX_DECOMPRESSION_RATIO,
        port_sharing: PortSharing = "none",
    ) -> None:
        assert listener.endpoint is not None
        self.port_sharing: PortSharing = port_sharing
        self.listener = listener
        self.max_request_bytes = max_request_bytes
        self.pipeline = pipeline
        self._inflater = Inflater(max_request_bytes, max_decompression_ratio)
        self._auth = BearerCheck(listener)
        self.port = 0

    def too_large(self) -> Rejection:
        """The rejection of a body above ``max_request_bytes``."""
        return Rejection("too_large", f"the request exceeds the limit of {self.max_request_bytes} bytes")


def probe_bind(host: str, port: int, *, reuse_port: bool = False) -> None:
    """Raise the `OSError` of binding ``host:port`` when none of its addresses can be bound.

    The bind succeeds when any address the host resolves to can be bound, with ``SO_REUSEADDR``
    (and ``SO_REUSEPORT`` when ``reuse_port``: joining a port the first intake process holds).
    Without ``reuse_port`` a port another process listens on fails, even one it shares: the
    first intake process never joins a stranger. The probe socket is closed at once.
    """
    first: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                probe.bind(address)
            except OSError as error:
                first = first or error
                continue
            return
    if first is not None:
        raise first
