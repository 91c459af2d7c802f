"""Accepting a request: all or nothing, for every downstream at once, then per-batch analysis.

`Pipeline.submit` is what both receivers call with a request's OTLP/protobuf bytes. It

1. parses just enough: the lean view when an analyzer needs it, otherwise a span count that
   checks each span's wire framing and decodes nothing (forwarding only); a request with more
   spans than ``receivers.max_spans_per_request`` is refused (``too_many_spans``);
2. pseudonymizes raw identity attributes if configured (only then is the request re-encoded;
   one that cannot be rewritten safely is refused as ``invalid``);
3. checks that *every* downstream queue has room, then queues the same bytes for each of them
   (a persistent queue has written them to disk when this returns); if any queue is full, the
   whole request is rejected to the sender with a retry hint and nothing is kept;
4. hands the accepted batch to each registered `BatchAnalyzer`.

It answers ``None`` (accepted) or a `Rejection` that the receiver turns into a status code
(``otel_impact.processors.intake.status``). Every request and span is counted in `Accounting`
exactly once, whatever happens: an exception on the way is our fault and answered ``internal``.
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
from otel_impact.processors.config.model import DEFAULT_MAX_SPANS_PER_REQUEST
from otel_impact.processors.export.forwarder import Forwarder
from otel_impact.processors.export.queue import QueueItem
from otel_impact.processors.pipeline.faults import FaultLog
from otel_impact.processors.pipeline.identity import BadIdentityData, IdentityRewriter
from otel_impact.proto.view import TracesData, count_spans, parse_traces, span_total

logger = logging.getLogger("otel_impact.processor")

QUEUE_FULL_RETRY_AFTER: Final = 1.0
"""Seconds a sender is asked to wait when a queue is full or the processor is stopping."""
UNPARSEABLE: Final = "the body is not a valid OTLP ExportTraceServiceRequest"


@dataclass(frozen=True)
class Rejection:
    """Why a request was refused. ``retry_after`` set means the sender should retry (it keeps the data)."""

    reason: str
    """One of: invalid, too_large, decompression_ratio, too_many_spans, unsupported_media_type,
    unauthenticated, queue_full, shutting_down, storage_error, busy, internal (see
    ``otel_impact.processors.intake.status``)."""
    message: str
    retry_after: float | None = None


class Pipeline:
    """Receivers → queues of every downstream → analyzers.

    ``max_spans`` bounds the spans of one request (0: no bound); a larger request is refused
    (``too_many_spans``) before anything is queued.
    """

    def __init__(
        self,
        forwarders: Sequence[Forwarder],
        accounting: Accounting,
        clock: Clock,
        *,
        rewriter: IdentityRewriter | None = None,
        analyzers: Sequence[BatchAnalyzer] = (),
        max_spans: int = DEFAULT_MAX_SPANS_PER_REQUEST,
    ) -> None:
        self.forwarders = tuple(forwarders)
        self.accounting = accounting
        self.clock = clock
        self.rewriter = rewriter
        self.analyzers: tuple[BatchAnalyzer, ...] = ()
        self._parse_view = False
        """Whether an analyzer reads the parsed view (one with ``needs_view = False`` parses for itself)."""
        for analyzer in analyzers:
            self.add_analyzer(analyzer)
        self.max_spans = max_spans
        self.accepting = False
        self.faults = FaultLog(logger)

    def add_analyzer(self, analyzer: BatchAnalyzer) -> None:
        """Register a per-batch analyzer (called on the event loop for every accepted batch).

        An analyzer with a ``value_tally()`` method (kind → count of span values it could not
        use as they were) has it exposed as ``otel_impact_analyzer_values_total``.
        """
        self.analyzers = (*self.analyzers, analyzer)
        self._parse_view = self._parse_view or getattr(analyzer, "needs_view", True)
        tally = getattr(analyzer, "value_tally", None)
        if callable(tally):
            self.accounting.analyzer_values.watch(getattr(analyzer, "name", type(analyzer).__name__), tally)

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
        """Accept ``data`` (OTLP/protobuf ExportTraceServiceRequest bytes) or say why not.

        Never raises: whatever goes wrong becomes a counted `Rejection` (``invalid`` for bad
        data, ``internal`` for a fault of the processor), logged at most once a minute per kind.
        """
        spans = 0
        try:
            view: TracesData | None = None
            rewriter = self.rewriter
            # A key name that never occurs in the bytes cannot be on any span: no walk over the spans then.
            identity_possible = rewriter is not None and rewriter.may_need_rewrite(data)
            try:
                if self._parse_view:
                    view = parse_traces(data)
                    spans = span_total(view)
                else:
                    spans = count_spans(data)
            except DecodeError:
                return self.reject(transport, Rejection("invalid", UNPARSEABLE))
            if not self.accepting:
                return self.reject(
                    transport, Rejection("shutting_down", "the processor is stopping", QUEUE_FULL_RETRY_AFTER), spans
                )
            if self.max_spans and spans > self.max_spans:
                message = (
                    f"the request holds {spans} spans, more than the limit of {self.max_spans} "
                    "(receivers.max_spans_per_request); send smaller batches"
                )
                return self.reject(transport, Rejection("too_many_spans", message), spans)
            rewritten = False
            if rewriter is not None and identity_possible:
                try:
                    data, replaced, removed = rewriter.rewrite(data)
                except BadIdentityData as error:
                    self.faults.report("invalid_identity_data", f"refused a request from {transport}", error)
                    return self.reject(transport, Rejection("invalid", str(error)), spans)
                if replaced or removed:
                    if view is not None:
                        view = parse_traces(data)
                    rewritten = True
                    a = self.accounting
                    a.rewritten_requests.inc()
                    a.pseudonymized_values.labels("replaced").inc(replaced)
                    a.pseudonymized_values.labels("removed").inc(removed)
            if spans and (refused := self._enqueue(data, spans)) is not None:
                return self.reject(transport, refused, spans)
        except Exception as error:  # our fault: the sender hears INTERNAL, the books stay balanced
            kind = f"internal:{type(error).__name__}"
            self.faults.report(kind, f"a request from {transport} failed inside the processor", error, trace=True)
            return self.reject(transport, Rejection("internal", "the processor failed on this request"), spans)
        self.accounting.received_requests.labels(transport, "accepted").inc()
        self.accounting.received_spans.labels(transport, "accepted").inc(spans)
        if self.analyzers and spans:
            self._analyze(TraceBatch(data, view, spans, self.clock.now_ns(), transport, rewritten))
        return None

    def _enqueue(self, data: bytes, spans: int) -> Rejection | None:
        """Queue ``data`` for every downstream, or for none (a full queue, a storage error, a fault)."""
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
        except BaseException:
            for forwarder, item in done:
                forwarder.queue.unput(item)
            raise
        for forwarder in forwarders:
            try:
                forwarder.update_gauges()
            except Exception as error:  # the data is queued: a gauge must not turn that into a rejection
                self.faults.report("gauges", "updating the queue gauges failed", error, trace=True)
        return None

    def _analyze(self, batch: TraceBatch) -> None:
        for analyzer in self.analyzers:
            try:
                analyzer.analyze(batch)
            except Exception as error:
                name = getattr(analyzer, "name", type(analyzer).__name__)
                self.accounting.analyzer_errors.labels(name).inc()
                self.faults.report(
                    f"analyzer:{name}",
                    f"analyzer {name} failed on a batch (the batch is still forwarded)",
                    error,
                    trace=True,
                )
