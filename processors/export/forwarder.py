"""Delivery to one downstream: consumers take runs of queued requests, send them, retry, acknowledge.

Each of ``queue.consumers`` tasks takes the longest run of consecutive queued requests that fits
``max_batch_bytes`` and sends their bytes concatenated as one request (concatenated OTLP
messages parse as one message with the repeated fields merged), so many small upstream requests
cost one downstream call. A failed attempt is retried per `Backoff` while the error is
retryable and ``max_elapsed_time`` allows; otherwise the run is dropped and counted by reason.
A merged run that meets a permanent error is sent again request by request, so only the
request the downstream refuses is dropped.

Stopping has two steps. `stop_intake` is not needed here (the pipeline stops accepting);
`drain` waits until the queue is empty or a deadline passes; `abort` then cancels what is still
running. Undelivered requests stay in a persistent queue for the next start; an in-memory
queue counts them as dropped with reason ``shutdown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from otel_impact.processors.accounting import Accounting
from otel_impact.processors.clock import Clock
from otel_impact.processors.config import ExporterConfig
from otel_impact.processors.export.clients import DownstreamClient
from otel_impact.processors.export.queue import PersistentQueue, QueueItem, SendQueue
from otel_impact.processors.export.retry import Outcome
from otel_impact.processors.retry import Backoff

logger = logging.getLogger("otel_impact.processor")


class Forwarder:
    """Owns one downstream's queue, client and consumer tasks."""

    def __init__(
        self,
        config: ExporterConfig,
        queue: SendQueue,
        client: DownstreamClient,
        accounting: Accounting,
        clock: Clock,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.queue = queue
        self.client = client
        self._accounting = accounting
        self._clock = clock
        self._backoff = Backoff(config.retry, rng)
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight: dict[int, list[QueueItem]] = {}
        self._aborting = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        a = accounting
        a.new_exporter(self.name, queue.max_requests, queue.max_bytes)
        self._sent_requests = a.sent_requests.labels(self.name)
        self._sent_spans = a.sent_spans.labels(self.name)
        self._retried_requests = a.retried_requests.labels(self.name)
        self._retried_spans = a.retried_spans.labels(self.name)
        self._latency = a.latency.labels(self.name)
        self._queue_spans = a.queue_spans.labels(self.name)
        self._queue_requests = a.queue_requests.labels(self.name)
        self._queue_bytes = a.queue_bytes.labels(self.name)
        if isinstance(queue, PersistentQueue):
            # A corrupt file's spans were accepted in an earlier run: restored, then dropped.
            a.restored_spans.labels(self.name).inc(queue.restored_spans + queue.corrupt_spans)
            a.redelivered_spans.labels(self.name).inc(queue.redelivered_spans)
            a.corrupt_files.labels(self.name).inc(queue.corrupt_files)
            a.dropped_spans.labels(self.name, "corrupt_file").inc(queue.corrupt_spans)
            a.dropped_requests.labels(self.name, "corrupt_file").inc(queue.corrupt_files)
            a.storage_errors.watch(self.name, queue.health.errors)
        self.update_gauges()

    def update_gauges(self) -> None:
        queue = self.queue
        self._queue_spans.set(queue.spans)
        self._queue_requests.set(queue.requests)
        self._queue_bytes.set(queue.bytes)
        if queue.requests == 0:
            self._idle.set()
        else:
            self._idle.clear()

    def start(self) -> None:
        """Start the consumer tasks (on the running loop)."""
        for index in range(self.config.queue.consumers):
            task = asyncio.get_running_loop().create_task(self._consume(), name=f"forward:{self.name}:{index}")
            self._tasks.append(task)

    async def _consume(self) -> None:
        max_batch = self.config.queue.max_batch_bytes
        linger = self.config.queue.max_batch_wait
        key = id(asyncio.current_task())
        while not self._aborting.is_set():
            batch = await self.queue.take(max_batch)
            if not batch:
                return
            self._inflight[key] = batch  # stays there if cancelled or aborted: `abort` accounts for it
            if linger > 0 and max_batch > 0 and not self.queue.ready:
                # Let a few more requests arrive: one downstream call for several costs much less.
                await asyncio.sleep(linger)
                room = max_batch - sum(len(item.data) for item in batch)
                batch.extend(self.queue.take_nowait(room, at_least_one=False))
            if not await self._deliver(batch):
                return
            del self._inflight[key]

    async def _deliver(self, batch: list[QueueItem]) -> bool:
        """Deliver or give up ``batch``; False when interrupted by `abort` (the batch is left as it is)."""
        body = batch[0].data if len(batch) == 1 else b"".join(item.data for item in batch)
        spans = sum(item.spans for item in batch)
        started = self._clock.monotonic()
        retry = self.config.retry
        attempt = 0
        self.queue.mark_sent(batch)
        while True:
            before = self._clock.monotonic()
            try:
                outcome = await self.client.export(body)
            except Exception as error:  # a client bug must not stop delivery
                logger.exception("otel-impact: unexpected error exporting to %s", self.name)
                outcome = Outcome(ok=False, retryable=True, reason=type(error).__name__)
            self._latency.observe(max(0.0, self._clock.monotonic() - before))
            if outcome.ok:
                self._delivered(batch, spans, outcome)
                return True
            kind = "retryable" if outcome.retryable else "permanent"
            self._accounting.failed_attempts.labels(self.name, kind).inc()
            if not outcome.retryable or not retry.enabled:
                if len(batch) > 1:
                    # One bad request (or a merged call over the downstream's size limit) must not
                    # take the others with it: send them one by one.
                    for item in batch:
                        if not await self._deliver([item]):
                            return False
                    return True
                self._give_up(batch, spans, "permanent_error", outcome)
                return True
            delay = self._backoff.next_wait(attempt, self._clock.monotonic() - started, outcome.retry_after)
            if delay is None:
                self._give_up(batch, spans, "max_elapsed_time", outcome)
                return True
            logger.warning(
                "otel-impact: export to %s failed (%s%s), retrying %d spans in %.1fs",
                self.name,
                outcome.reason,
                f": {outcome.message}" if outcome.message else "",
                spans,
                delay,
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._aborting.wait(), delay)
            if self._aborting.is_set():
                return False
            attempt += 1
            self._retried_requests.inc()
            self._retried_spans.inc(spans)

    def _delivered(self, batch: list[QueueItem], spans: int, outcome: Outcome) -> None:
        self.queue.ack(batch)
        self._sent_requests.inc()
        self._sent_spans.inc(spans)
        if outcome.partial:
            self._accounting.partial_success_responses.labels(self.name).inc()
            self._accounting.partial_success_rejected_spans.labels(self.name).inc(outcome.rejected_spans)
            logger.warning(
                "otel-impact: %s accepted a request partially: %d of %d spans rejected (%s)",
                self.name,
                outcome.rejected_spans,
                spans,
                outcome.message or "no message",
            )
        self.update_gauges()

    def _give_up(self, batch: list[QueueItem], spans: int, reason: str, outcome: Outcome) -> None:
        self.queue.ack(batch)
        self._accounting.dropped_spans.labels(self.name, reason).inc(spans)
        self._accounting.dropped_requests.labels(self.name, reason).inc(len(batch))
        logger.error(
            "otel-impact: dropped %d spans for %s after %s (%s%s); counted in otel_impact_exporter_dropped_spans",
            spans,
            self.name,
            "a permanent error" if reason == "permanent_error" else "retrying for max_elapsed_time",
            outcome.reason,
            f": {outcome.message}" if outcome.message else "",
        )
        self.update_gauges()

    async def drain(self, deadline: float) -> bool:
        """Wait until everything queued is delivered or given up, or ``deadline`` (monotonic) passes."""
        self.queue.close()
        remaining = deadline - self._clock.monotonic()
        if remaining > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), remaining)
        return self.queue.requests == 0

    async def abort(self) -> int:
        """Stop the consumers; returns the spans left undelivered (kept on disk, or dropped and counted)."""
        self._aborting.set()
        self.queue.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        left = [item for batch in self._inflight.values() for item in batch] + self.queue.pending()
        self._inflight.clear()
        spans = sum(item.spans for item in left)
        if isinstance(self.queue, PersistentQueue):
            if left:
                logger.info("otel-impact: %d spans for %s stay queued on disk for the next start", spans, self.name)
            self.queue.close_files()
        elif left:
            self.queue.ack(left)
            self._accounting.dropped_spans.labels(self.name, "shutdown").inc(spans)
            self._accounting.dropped_requests.labels(self.name, "shutdown").inc(len(left))
            logger.error(
                "otel-impact: %d spans for %s were still queued at the drain deadline and are lost; "
                "run with --state DIR to keep them across restarts",
                spans,
                self.name,
            )
        self.update_gauges()
        await self.client.close()
        return spans
