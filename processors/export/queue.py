"""The bounded sending queue of one downstream, in memory or persistent on disk.

The queue is bounded by request count AND bytes; an item stays counted until the downstream
acknowledged it (in flight included), so memory is bounded by the queue's limits. The pipeline
asks `has_room` for every downstream before it accepts a request, and `put` never blocks or
drops. Consumers `take` runs of consecutive items (merged into one downstream request) and
`ack` them once delivered or explicitly given up.

Everything runs on one asyncio event loop; no method is thread-safe.

`PersistentQueue` writes each item to its own file under the state directory before `put`
returns (so before the sender gets its answer) and deletes it on `ack`. A ``kill -9`` loses
nothing the sender was told was accepted: on restart the files are queued again, in order.
Items that had been handed to the downstream but not acknowledged are marked ``sent_before``
(possible duplicates: delivery is at least once). Without ``fsync`` the data is in the
operating system's page cache when the sender is answered: it survives the process, not a
power cut; with ``fsync`` every item is flushed to the disk first.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import re
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

logger = logging.getLogger("otel_impact.processor")

_HEADER: Final = struct.Struct("<4sQIII")  # magic, seq, spans, length, crc32(payload)
_MAGIC: Final = b"OIQ1"
_SEQ: Final = struct.Struct("<Q")
_ITEM_FILE = re.compile(r"\A(\d{20})\.req\Z")
_INFLIGHT_LOG: Final = "inflight.log"
_INFLIGHT_LOG_COMPACT_BYTES: Final = 1 << 20


@dataclass(eq=False)
class QueueItem:
    """One accepted request queued for one downstream."""

    seq: int
    data: bytes
    spans: int
    sent_before: bool = False
    """Restored from disk after having been sent without an acknowledgement: may be a duplicate."""
    sent: bool = False


class SendQueue:
    """An in-memory bounded FIFO with separate accounting of items in flight."""

    def __init__(self, max_requests: int, max_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self._ready: collections.deque[QueueItem] = collections.deque()
        self._nonempty = asyncio.Event()
        self._closed = False
        self._next_seq = 1
        self.requests = 0
        """Items held, in flight included."""
        self.bytes = 0
        self.spans = 0

    def has_room(self, nbytes: int) -> bool:
        """Whether an item of ``nbytes`` fits now (a lone item always fits an empty queue)."""
        if self.requests == 0:
            return True
        return self.requests < self.max_requests and self.bytes + nbytes <= self.max_bytes

    def put(self, data: bytes, spans: int) -> QueueItem:
        """Queue ``data``; the caller checked `has_room`. Durable when it returns (for a persistent queue)."""
        item = QueueItem(self._next_seq, data, spans)
        self._store(item)
        self._next_seq += 1
        self._add(item)
        return item

    def _add(self, item: QueueItem) -> None:
        self._ready.append(item)
        self.requests += 1
        self.bytes += len(item.data)
        self.spans += item.spans
        self._nonempty.set()

    def unput(self, item: QueueItem) -> None:
        """Take back the item just `put` (another downstream could not take the request)."""
        if self._ready and self._ready[-1] is item:
            self._ready.pop()
            if not self._ready:
                self._nonempty.clear()
            self.ack([item])

    def _store(self, item: QueueItem) -> None:
        """Make ``item`` durable (the in-memory queue has nothing to do)."""

    @property
    def ready(self) -> int:
        """Items waiting to be taken."""
        return len(self._ready)

    def take_nowait(self, max_batch_bytes: int, *, at_least_one: bool = True) -> list[QueueItem]:
        """The longest run of waiting items from the head within ``max_batch_bytes``.

        With ``at_least_one`` the first item is taken even when it alone is larger.
        """
        ready = self._ready
        if not ready or (not at_least_one and len(ready[0].data) > max_batch_bytes):
            return []
        batch = [ready.popleft()]
        total = len(batch[0].data)
        while ready and total + len(ready[0].data) <= max_batch_bytes:
            item = ready.popleft()
            total += len(item.data)
            batch.append(item)
        if not ready:
            self._nonempty.clear()
        return batch

    async def take(self, max_batch_bytes: int) -> list[QueueItem]:
        """Wait for items and take a run of them; ``[]`` once the queue is closed and empty."""
        while True:
            batch = self.take_nowait(max_batch_bytes)
            if batch or self._closed:
                return batch
            await self._nonempty.wait()

    def mark_sent(self, items: Iterable[QueueItem]) -> None:
        """Note that ``items`` are about to go to the downstream for the first time."""
        for item in items:
            item.sent = True

    def release(self, items: list[QueueItem]) -> None:
        """Put taken items back at the head (a consumer stopped before finishing them)."""
        self._ready.extendleft(reversed(items))
        if items:
            self._nonempty.set()

    def ack(self, items: Iterable[QueueItem]) -> None:
        """Forget ``items`` for good: delivered, or given up and counted."""
        for item in items:
            self.requests -= 1
            self.bytes -= len(item.data)
            self.spans -= item.spans
            self._forget(item)

    def _forget(self, item: QueueItem) -> None:
        """Remove ``item``'s durable copy (the in-memory queue has none)."""

    def close(self) -> None:
        """Wake every waiting `take`; they return ``[]`` once nothing is left."""
        self._closed = True
        self._nonempty.set()

    @property
    def persistent(self) -> bool:
        return False

    def pending(self) -> list[QueueItem]:
        """Items waiting to be taken (not those in flight)."""
        return list(self._ready)


class PersistentQueue(SendQueue):
    """A `SendQueue` whose items are files in ``directory``; see the module docstring."""

    def __init__(self, directory: str, max_requests: int, max_bytes: int, *, fsync: bool = False) -> None:
        super().__init__(max_requests, max_bytes)
        self.directory = directory
        self.fsync = fsync
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.restored_spans = 0
        self.redelivered_spans = 0
        self._sent: set[int] = set()
        self._restore()
        self._inflight = open(os.path.join(directory, _INFLIGHT_LOG), "ab", buffering=0)  # noqa: SIM115

    @property
    def persistent(self) -> bool:
        return True

    def _path(self, seq: int) -> str:
        return os.path.join(self.directory, f"{seq:020d}.req")

    def _restore(self) -> None:
        inflight = self._read_inflight()
        seqs = sorted(int(m.group(1)) for name in os.listdir(self.directory) if (m := _ITEM_FILE.match(name)))
        for seq in seqs:
            item = self._load(seq)
            if item is None:
                continue
            item.sent_before = item.sent = seq in inflight
            if item.sent:
                self._sent.add(seq)
            self._add(item)
            self.restored_spans += item.spans
            if item.sent_before:
                self.redelivered_spans += item.spans
            self._next_seq = seq + 1
        self._rewrite_inflight(sorted(self._sent))
        if seqs:
            logger.info(
                "otel-impact: restored %d queued requests (%d spans, %d possibly sent before) from %s",
                self.requests,
                self.spans,
                self.redelivered_spans,
                self.directory,
            )

    def _load(self, seq: int) -> QueueItem | None:
        path = self._path(seq)
        with open(path, "rb") as handle:
            raw = handle.read()
        if len(raw) >= _HEADER.size:
            magic, stored_seq, spans, length, crc = _HEADER.unpack_from(raw)
            data = raw[_HEADER.size :]
            if magic == _MAGIC and stored_seq == seq and len(data) == length and zlib.crc32(data) == crc:
                return QueueItem(seq, data, spans)
        # A file cut short by a kill between open() and write(): its sender was never answered.
        logger.warning("otel-impact: discarding an incomplete queue file %s (never acknowledged)", path)
        os.unlink(path)
        return None

    def _read_inflight(self) -> set[int]:
        try:
            with open(os.path.join(self.directory, _INFLIGHT_LOG), "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return set()
        whole = len(raw) - len(raw) % _SEQ.size
        return {value for (value,) in _SEQ.iter_unpack(raw[:whole])}

    def _rewrite_inflight(self, seqs: Iterable[int]) -> None:
        path = os.path.join(self.directory, _INFLIGHT_LOG)
        with open(path + ".tmp", "wb") as handle:
            handle.write(b"".join(_SEQ.pack(seq) for seq in seqs))
        os.replace(path + ".tmp", path)

    def _store(self, item: QueueItem) -> None:
        header = _HEADER.pack(_MAGIC, item.seq, item.spans, len(item.data), zlib.crc32(item.data))
        fd = os.open(self._path(item.seq), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            written = os.writev(fd, [header, item.data])
            if written != len(header) + len(item.data):
                raise OSError(f"short write to {self._path(item.seq)} (is the disk full?)")
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if self.fsync:  # the new directory entry too
            directory = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    def mark_sent(self, items: Iterable[QueueItem]) -> None:
        fresh = [item for item in items if not item.sent]
        if not fresh:
            return
        for item in fresh:
            item.sent = True
        self._sent.update(item.seq for item in fresh)
        self._inflight.write(b"".join(_SEQ.pack(item.seq) for item in fresh))
        if self._inflight.tell() > _INFLIGHT_LOG_COMPACT_BYTES:
            self._compact_inflight()

    def _compact_inflight(self) -> None:
        self._inflight.close()
        self._rewrite_inflight(sorted(self._sent))
        self._inflight = open(os.path.join(self.directory, _INFLIGHT_LOG), "ab", buffering=0)  # noqa: SIM115

    def _forget(self, item: QueueItem) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(item.seq))
        self._sent.discard(item.seq)
        if self.requests == 0:
            self._inflight.truncate(0)
            self._inflight.seek(0)

    def close_files(self) -> None:
        """Release the in-flight log (after the consumers stopped)."""
        if not self._inflight.closed:
            self._inflight.close()
