"""What a downstream's answer means, and how long to wait before trying again (OTLP spec).

gRPC: CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are
retryable; RESOURCE_EXHAUSTED only when the server sent ``google.rpc.RetryInfo``; every other
code is permanent. HTTP: 429, 502, 503 and 504 are retryable, honouring ``Retry-After``; every
other error status is permanent. A connection failure or timeout is retryable. A partial
success is a success: it is logged and counted, never retried.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import grpc
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otel_impact.processors.retry import MAX_SERVER_DELAY, Backoff, parse_retry_after

__all__ = [
    "MAX_SERVER_DELAY",
    "RETRYABLE_GRPC",
    "RETRYABLE_HTTP",
    "Backoff",
    "Outcome",
    "classify_grpc",
    "classify_http",
    "parse_retry_after",
    "retry_info_delay",
    "success_from_response",
]

RETRYABLE_GRPC: Final = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
RETRYABLE_HTTP: Final = frozenset({429, 502, 503, 504})
STATUS_DETAILS_KEY: Final = "grpc-status-details-bin"
RETRY_INFO_KEY: Final = "google.rpc.retryinfo-bin"  # what the OTel Python exporter reads


@dataclass(frozen=True)
class Outcome:
    """The result of one export attempt."""

    ok: bool
    retryable: bool = False
    retry_after: float | None = None
    """The delay the server asked for (RetryInfo or Retry-After), in seconds."""
    reason: str = ""
    rejected_spans: int = 0
    """partial_success.rejected_spans of a successful answer."""
    message: str = ""
    """partial_success.error_message, or the error's description."""

    @property
    def partial(self) -> bool:
        return self.ok and (self.rejected_spans > 0 or bool(self.message))


def success_from_response(body: bytes) -> Outcome:
    """A 200 / OK answer: look for partial_success."""
    if not body:
        return Outcome(ok=True)
    try:
        response = ExportTraceServiceResponse.FromString(body)
    except Exception:  # a success with an unreadable body is still a success
        return Outcome(ok=True)
    if not response.HasField("partial_success"):
        return Outcome(ok=True)
    partial = response.partial_success
    return Outcome(ok=True, rejected_spans=partial.rejected_spans, message=partial.error_message)


def retry_info_delay(details: bytes | None) -> float | None:
    """The RetryInfo delay inside serialized ``google.rpc.Status`` details, if any."""
    if not details:
        return None
    try:
        status = status_pb2.Status.FromString(details)
    except Exception:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return float(info.retry_delay.seconds + info.retry_delay.nanos / 1e9)
    return None


def classify_grpc(code: grpc.StatusCode, details: str | None, trailing: Iterable[tuple[str, Any]] | None) -> Outcome:
    """The outcome of a failed gRPC call."""
    metadata = dict(trailing or ())
    delay = retry_info_delay(metadata.get(STATUS_DETAILS_KEY))
    if delay is None and (raw := metadata.get(RETRY_INFO_KEY)):
        try:
            info = error_details_pb2.RetryInfo.FromString(raw)
            delay = info.retry_delay.seconds + info.retry_delay.nanos / 1e9
        except Exception:
            delay = None
    # RESOURCE_EXHAUSTED is retryable only when the server says when (RetryInfo).
    retryable = delay is not None if code is grpc.StatusCode.RESOURCE_EXHAUSTED else code in RETRYABLE_GRPC
    return Outcome(ok=False, retryable=retryable, retry_after=delay, reason=code.name, message=details or "")


def classify_http(status: int, retry_after: str | None, message: str = "") -> Outcome:
    """The outcome of a non-2xx HTTP answer."""
    return Outcome(
        ok=False,
        retryable=status in RETRYABLE_HTTP,
        retry_after=parse_retry_after(retry_after),
        reason=f"HTTP {status}",
        message=message,
    )
