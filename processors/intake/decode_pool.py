"""OTLP/JSON decoding off the event loop: a thread or a worker process, bounded, bytes in and out.

Bodies smaller than `INLINE_BYTES` cost about what a protobuf request of the same spans does
and are decoded on the loop, which spares them any hand-off. Larger ones are decoded off it:

* by the compiled transcoder (`otlp_json.try_compiled`, where it is built) in a thread: it
  releases the GIL while it reads, so the loop runs on; measured, it is 2-3 times faster than
  the worker process's round trip (a 4.1 MB body: about 8 ms against 20 ms);
* else, or when it declines the body, by the Python walk (`json_to_protobuf`) in a worker
  process (started with ``spawn`` on the first such body, so a processor that never needs one
  never starts one): the walk holds the GIL, so a thread would not free the loop, and a
  multi-megabyte body would hold ``/healthz`` and the gRPC receiver for most of its decoding.

Bounded: at most `WORKERS` + `WAITING` bodies are off the loop at once (in a thread or with a
worker, running or waiting their turn); a body beyond that is refused with `Busy` (the receiver
answers 503 with ``Retry-After``, and the request is counted as rejected with reason ``busy``).
Memory held by waiting bodies is thus at most ``(WORKERS + WAITING) * max_request_bytes``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Final

from otel_impact.processors.intake.otlp_json import NATIVE_JSON, json_to_protobuf, try_compiled

INLINE_BYTES: Final = 32 << 10
"""Bodies smaller than this are decoded on the event loop."""
WORKERS: Final = 1
"""Worker processes; one keeps the processor's use to about two cores at most."""
WAITING: Final = 4
"""Bodies that may wait for a worker; one more is refused with `Busy`."""
BUSY_RETRY_AFTER: Final = 1.0


class Busy(Exception):
    """Every worker is decoding and the waiting room is full: the sender should retry later."""


def _worker_init() -> None:
    # The parent decides when to stop; a Ctrl-C sent to the whole process group is its business.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class DecodePool:
    """Decodes OTLP/JSON bodies for one receiver. Use from the event loop only; `close` when done."""

    def __init__(self, *, workers: int = WORKERS, waiting: int = WAITING, inline_bytes: int = INLINE_BYTES) -> None:
        self.workers = workers
        self.waiting = waiting
        self.inline_bytes = inline_bytes
        self._executor: ProcessPoolExecutor | None = None
        self._pending = 0
        self.offloaded = 0
        """Bodies decoded by a worker (for tests and diagnostics)."""
        self.threaded = 0
        """Bodies decoded by the compiled transcoder in a thread (for tests and diagnostics)."""

    @property
    def pending(self) -> int:
        """Bodies handed off the loop and not yet decoded (in a thread, or running or waiting for a worker)."""
        return self._pending

    async def decode(self, body: bytes) -> bytes:
        """``body`` (OTLP/JSON) as OTLP/protobuf bytes; raises `InvalidJson` or `Busy`."""
        if len(body) < self.inline_bytes:
            return json_to_protobuf(body)
        if self._pending >= self.workers + self.waiting:
            raise Busy
        if NATIVE_JSON:
            self._pending += 1
            try:
                fast = await asyncio.to_thread(try_compiled, body)
            finally:
                self._pending -= 1
            if fast is not None:
                self.threaded += 1
                return fast
        if self._pending >= self.workers + self.waiting:
            raise Busy
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init
            )
        executor = self._executor
        self._pending += 1
        try:
            result = await asyncio.get_running_loop().run_in_executor(executor, json_to_protobuf, body)
        except BrokenProcessPool:  # a worker died (killed, out of memory): start afresh next time
            if self._executor is executor:
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            raise Busy from None
        finally:
            self._pending -= 1
        self.offloaded += 1
        return result

    def close(self) -> None:
        """Stop the worker process (decodes still running are abandoned). Harmless twice."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
