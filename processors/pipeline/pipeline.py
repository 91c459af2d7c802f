"""Accepting a request: all or nothing, for every downstream at once, then per-batch analysis.

`Pipeline.submit` is what both receivers call with a request's OTLP/protobuf bytes. It

1. parses just enough: the lean view when an analyzer needs it or the bytes may hold a raw
   identity to pseudonymize, otherwise a span count that checks each span's wire framing and
   decodes nothing (forwarding only);
2. pseudonymizes raw identity attributes if configured (only then is the request re-encoded);
3. checks that *every* downstream queue has room, then queues the same bytes for each of them
   (a persistent queue has written them to disk when this returns); if any queue is full, the
   whole request is rejected to the sender with a retry hint and nothing is kept;
4. hands the accepted batch to each registered `BatchAnalyzer`.

It answers ``None`` (accepted) or a `Rejection` that the receiver turns into a status code.
Every request and span is counted in `Accounting` exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from google.protobuf.message import DecodeError

from otel_impact.processors.accounting import Accounting
from otel_impact.processors.batch import BatchAnalyzer, TraceBatch
from otel_impact.processors.clock import Clock
from otel_impact.processors.export.forwarder import Forwarder
from otel_impact.processors.export.queue import QueueItem
from otel_impact.processors.pipeline.identity import IdentityRewriter
from otel_impact.proto.view import TracesData, count_spans, parse_traces, span_total

logger = logging.getLogger("otel_impact.processor")

QUEUE_FULL_RETRY_AFTER: Final = 1.0
"""Seconds a sender is asked to wait when a queue is full or the processor is stopping."""


@dataclass(frozen=True)
class Rejection:
    """Why a request was refused. ``retry_after`` set means the sender should retry (it keeps the data)."""

    reason: str
    """One of: invalid, too_large, unsupported_media_type, unauthenticated, queue_full, shutting_down, storage_error."""
    message: str
    retry_after: float | None = None


class Pipeline:
    """Receivers → queues of every downstream → analyzers."""

    def __init__(
        self,
        forwarders: Sequence[Forwarder],
        accounting: Accounting,
        clock: Clock,
        *,
        rewriter: IdentityRewriter | None = None,
        analyzers: Sequence[BatchAnalyzer] = (),
    ) -> None:
        self.forwarders = tuple(forwarders)
        self.accounting = accounting
        self.clock = clock
        self.rewriter = rewriter
        self.analyzers: tuple[BatchAnalyzer, ...] = tuple(analyzers)
        self.accepting = False

    def add_analyzer(self, analyzer: BatchAnalyzer) -> None:
        """Register a per-batch analyzer (called on the event loop for every accepted batch)."""
        self.analyzers = (*self.analyzers, analyzer)

    def reject(self, transport: str, rejection: Rejection, spans: int = 0) -> Rejection:
        """Count ``rejection`` (for checks the receivers make themselves) and return it."""
        a = self.accounting
        a.received_requests.labels(transport, "rejected").inc()
        a.rejected_requests.labels(transport, rejection.reason).inc()
        if spans:
            a.received_spans.labels(transport, "rejected").inc(spans)
            a.rejected_spans.labels(transport, rejection.reason).inc(spans)
        return rejection

    def submit(self, data: bytes, transport: str) -> Rejection | None:
        """Accept ``data`` (OTLP/protobuf ExportTraceServiceRequest bytes) or say why not."""
        view: TracesData | None = None
        rewriter = self.rewriter
        # A key name that never occurs in the bytes cannot be on any span: no walk over the spans then.
        identity_possible = rewriter is not None and rewriter.may_need_rewrite(data)
        try:
            if self.analyzers or identity_possible:
                view = parse_traces(data)
                spans = span_total(view)
            else:
                spans = count_spans(data)
        except DecodeError:
            return self.reject(
                transport, Rejection("invalid", "the body is not a valid OTLP ExportTraceServiceRequest")
            )
        if not self.accepting:
            return self.reject(
                transport, Rejection("shutting_down", "the processor is stopping", QUEUE_FULL_RETRY_AFTER), spans
            )
        rewritten = False
        if view is not None and rewriter is not None and identity_possible and rewriter.needs_rewrite(view):
            data, replaced, removed = rewriter.rewrite(data)
            view = parse_traces(data)
            rewritten = True
            a = self.accounting
            a.rewritten_requests.inc()
            a.pseudonymized_values.labels("replaced").inc(replaced)
            a.pseudonymized_values.labels("removed").inc(removed)
        if spans and (refused := self._enqueue(data, spans)) is not None:
            return self.reject(transport, refused, spans)
        self.accounting.received_requests.labels(transport, "accepted").inc()
        self.accounting.received_spans.labels(transport, "accepted").inc(spans)
        if view is not None and self.analyzers and spans:
            self._analyze(TraceBatch(data, view, spans, self.clock.now_ns(), transport, rewritten))
        return None

    def _enqueue(self, data: bytes, spans: int) -> Rejection | None:
        size = len(data)
        forwarders = self.forwarders
        if not all(forwarder.queue.has_room(size) for forwarder in forwarders):
            return Rejection("queue_full", "the sending queue is full; retry later", QUEUE_FULL_RETRY_AFTER)
        done: list[tuple[Forwarder, QueueItem]] = []
        try:
            for forwarder in forwarders:
                done.append((forwarder, forwarder.queue.put(data, spans)))
        except OSError as error:
            for forwarder, item in done:
                forwarder.queue.unput(item)
            # The queue logs the outage once when it starts and once when it ends.
            logger.debug("otel-impact: cannot write to the persistent queue (%s); telling senders to retry", error)
            return Rejection("storage_error", "the persistent queue cannot be written; retry later", 5.0)
        for forwarder in forwarders:
            forwarder.update_gauges()
        return None

    def _analyze(self, batch: TraceBatch) -> None:
        for analyzer in self.analyzers:
            try:
                analyzer.analyze(batch)
            except Exception:
                name = getattr(analyzer, "name", type(analyzer).__name__)
                self.accounting.analyzer_errors.labels(name).inc()
                logger.exception("otel-impact: analyzer %s failed on a batch (the batch is still forwarded)", name)
