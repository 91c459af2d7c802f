"""What the two OTLP receivers share: their listener, body limit, pipeline and bearer check."""

from __future__ import annotations

from typing import Final

from otel_impact.processors.config import Listener
from otel_impact.processors.config.model import DEFAULT_MAX_DECOMPRESSION_RATIO
from otel_impact.processors.intake.decompress import Inflater
from otel_impact.processors.pipeline import Pipeline, Rejection
from otel_impact.processors.security import BearerCheck

UNAUTHENTICATED: Final = Rejection("unauthenticated", "missing or wrong bearer token")


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
    ) -> None:
        assert listener.endpoint is not None
        self.listener = listener
        self.max_request_bytes = max_request_bytes
        self.pipeline = pipeline
        self._inflater = Inflater(max_request_bytes, max_decompression_ratio)
        self._auth = BearerCheck(listener)
        self.port = 0

    def too_large(self) -> Rejection:
        """The rejection of a body above ``max_request_bytes``."""
        return Rejection("too_large", f"the request exceeds the limit of {self.max_request_bytes} bytes")
