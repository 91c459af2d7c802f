"""The unit of work inside the processor: one accepted OTLP trace request.

Receivers turn each export request into a `TraceBatch`; the pipeline queues its bytes for every
downstream and hands it to each `BatchAnalyzer` (the SLI engine is one). Analyzers see a parsed,
read-only view of the spans and must not keep references to it beyond the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from otel_impact.proto.impact_view_pb2 import TracesData


@dataclass(frozen=True)
class TraceBatch:
    """One accepted export request.

    ``data`` is OTLP/protobuf: the original request bytes when nothing was rewritten, otherwise
    the re-encoded request. ``view`` is ``data`` parsed with the lean view (see
    ``otel_impact.proto.view``; treat it as read-only), or ``None`` when no analyzer asked the
    pipeline to parse it (an analyzer with ``needs_view = False`` parses for itself).
    ``received_ns`` is the wall-clock time of arrival (from the injected clock), ``transport``
    one of ``grpc``, ``http/protobuf``, ``http/json``.
    """

    data: bytes
    view: TracesData | None
    span_count: int
    received_ns: int
    transport: str
    rewritten: bool = False


@runtime_checkable
class BatchAnalyzer(Protocol):
    """Per-batch analysis hook.

    ``analyze`` runs on the processor's event loop, after the batch is safely queued for
    forwarding and before the sender gets its answer. It must not block on I/O. It should not
    raise; if it does, the pipeline counts and logs the error and the batch is still forwarded.
    """

    name: str
    """An analyzer may also set ``needs_view = False``: the pipeline then counts spans without
    parsing, and its batches' ``view`` is ``None``."""

    def analyze(self, batch: TraceBatch) -> None: ...
