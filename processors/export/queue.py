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

A file is written under a temporary name (``<seq>.req.tmp``) and renamed into place, so a
``.req`` file is always whole and its sender was told it was accepted. A write that fails (a
full disk) leaves no file behind and raises `OSError`: the pipeline tells the sender to retry,
and the next `put` uses a fresh sequence number, so intake recovers by itself once space
returns (`queue_storage.StorageHealth` counts and logs the outage). At restore, a ``.tmp``
file (its sender was never told it was accepted) is deleted; a ``.req`` file that cannot be
parsed is moved aside to ``<name>.corrupt``, logged as lost, and counted in
`corrupt_files` / `corrupt_spans`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import os
import re
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from otel_impact.processors.export.queue_storage import (
    CorruptFileError,
    StorageHealth,
    corrupt_seqs,
    set_aside,
    write_all,
)

logger = logging.getLogger("otel_impact.processor")

_HEADER: Final = struct.Struct("<4sQIII")  # magic, seq, spans, length, crc32(payload)
_MAGIC: Final = b"OIQ1"
_SEQ: Final = struct.Struct("<Q")
_ITEM_FILE = re.compile(r"\A(\d{20})\.req\Z")
_UNFINISHED_FILE = re.compile(r"\A(\d{20})\.req\.tmp\Z")
_UNFINISHED_SUFFIX: Final = ".tmp"
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
        self._next_seq += 1  # also when storing fails: a failed write never blocks its number
        self._store(item)
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
        self.health = StorageHealth(directory)
        """Failed writes by reason, and the outage logging."""
        self.restored_spans = 0
        self.redelivered_spans = 0
        self.corrupt_files = 0
        """Queue files found corrupt at restore (each was one acknowledged request, now lost)."""
        self.corrupt_spans = 0
        """Spans in those files, as far as their headers tell (0 for a file whose header is unreadable)."""
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
        names = os.listdir(self.directory)
        for name in names:
            if _UNFINISHED_FILE.match(name):
                # Never renamed into place: its sender got an error (or no answer) and keeps the data.
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.directory, name))
                logger.info("otel-impact: deleted an unfinished queue write %s (never acknowledged)", name)
        seqs = sorted(int(m.group(1)) for name in names if (m := _ITEM_FILE.match(name)))
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
        # Numbers are never used again: not those of corrupt files, nor those the in-flight log names.
        self._next_seq = max([0, *seqs, *corrupt_seqs(names), *(seq for seq in inflight if seq < 1 << 62)]) + 1
        try:
            self._rewrite_inflight(sorted(self._sent))
        except OSError as error:
            self.health.failed(error, request=False)
        if seqs:
            logger.info(
                "otel-impact: restored %d queued requests (%d spans, %d possibly sent before) from %s",
                self.requests,
                self.spans,
                self.redelivered_spans,
                self.directory,
            )

    def _load(self, seq: int) -> QueueItem | None:
        """The item in ``seq``'s file; a corrupt file is moved aside, counted and logged (None)."""
        path = self._path(seq)
        try:
            try:
                with open(path, "rb") as handle:
                    raw = handle.read()
            except OSError as error:
                raise CorruptFileError(f"unreadable: {error.strerror or error}") from error
            return _parse(seq, raw)
        except CorruptFileError as corrupt:
            self.corrupt_files += 1
            self.corrupt_spans += corrupt.spans or 0
            aside = set_aside(self.directory, os.path.basename(path))
            logger.error(
                "otel-impact: queue file %s is corrupt (%s); %s; its request was acknowledged to the sender "
                "before and is lost (%s); counted in otel_impact_queue_corrupt_files_total and "
                'otel_impact_exporter_dropped_spans_total{reason="corrupt_file"}',
                path,
                corrupt.reason,
                f"moved aside to {aside}" if aside else "it could not be moved aside",
                "an unknown number of spans" if corrupt.spans is None else f"{corrupt.spans} spans",
            )
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
        """Replace the in-flight log atomically; on failure the old one stays (a superset: still right)."""
        path = os.path.join(self.directory, _INFLIGHT_LOG)
        try:
            with open(path + ".tmp", "wb") as handle:
                handle.write(b"".join(_SEQ.pack(seq) for seq in seqs))
            os.replace(path + ".tmp", path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(path + ".tmp")
            raise

    def _store(self, item: QueueItem) -> None:
        """Write ``item`` whole under its name, or raise `OSError` leaving no file behind."""
        header = _HEADER.pack(_MAGIC, item.seq, item.spans, len(item.data), zlib.crc32(item.data))
        path = self._path(item.seq)
        unfinished = path + _UNFINISHED_SUFFIX
        placed = False
        try:
            fd = os.open(unfinished, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                write_all(fd, (header, item.data))
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(unfinished, path)
            placed = True
            if self.fsync:  # the new directory entry too
                directory = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(path if placed else unfinished)
            self.health.failed(error)
            raise
        self.health.succeeded()

    def mark_sent(self, items: Iterable[QueueItem]) -> None:
        fresh = [item for item in items if not item.sent]
        if not fresh:
            return
        for item in fresh:
            item.sent = True
        self._sent.update(item.seq for item in fresh)
        record = b"".join(_SEQ.pack(item.seq) for item in fresh)
        end = self._inflight.seek(0, os.SEEK_END)
        try:
            if self._inflight.write(record) != len(record):
                raise OSError(errno.ENOSPC, "short write to the in-flight log")
        except OSError as error:
            # The marks only flag possible duplicates after a crash: delivery goes on without them.
            with contextlib.suppress(OSError):
                self._inflight.truncate(end)  # no half record: later ones stay aligned
            self.health.failed(error, request=False)
            return
        if self._inflight.tell() > _INFLIGHT_LOG_COMPACT_BYTES:
            self._compact_inflight()

    def _compact_inflight(self) -> None:
        self._inflight.close()
        try:
            self._rewrite_inflight(sorted(self._sent))
        except OSError as error:
            self.health.failed(error, request=False)
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


def _parse(seq: int, raw: bytes) -> QueueItem:
    """The item stored in ``raw`` (the file of ``seq``); raises `CorruptFileError` saying what is wrong."""
    if len(raw) < _HEADER.size:
        raise CorruptFileError(f"{len(raw)} bytes, shorter than the {_HEADER.size}-byte header")
    magic, stored_seq, spans, length, crc = _HEADER.unpack_from(raw)
    if magic != _MAGIC:
        raise CorruptFileError("not a queue file: wrong header")
    if stored_seq != seq:
        raise CorruptFileError(f"its header names request {stored_seq}, not {seq}", spans)
    data = raw[_HEADER.size :]
    if len(data) != length:
        raise CorruptFileError(f"truncated or overlong: {len(data)} of {length} payload bytes", spans)
    if zlib.crc32(data) != crc:
        raise CorruptFileError("checksum mismatch", spans)
    return QueueItem(seq, data, spans)
