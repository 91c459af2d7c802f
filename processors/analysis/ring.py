"""A byte ring in shared memory: the intake process writes batches, one worker reads them.

The intake side (`RingWriter`) owns the `SharedMemory` block and all the bookkeeping: each
batch is written once, contiguously, at the next free place (wrapping to the start when it does
not fit before the end), and is told to the worker with a `Notice` on a pipe. The worker reads
the bytes in place (`RingReader.view`) and, when it has analysed a batch, reports its sequence
number; the writer then releases that batch's bytes (`release`). Nothing in the block itself is
shared state, so no locks or atomics are needed: the pipes order everything.

The ring is bounded twice: by bytes (its size) and by batches in flight (`MAX_IN_FLIGHT`, which
keeps the notice pipe from ever filling, so writing a notice never blocks).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from multiprocessing import resource_tracker, shared_memory
from typing import Final

__all__ = ["MAX_IN_FLIGHT", "NOTICE", "Notice", "RingReader", "RingWriter"]

NOTICE: Final = struct.Struct("<QQIIq")
"""A notice on the wire: sequence, offset, length, spans, received time (ns)."""
MAX_IN_FLIGHT: Final = 1024
"""Batches written and not yet released, at most: 1,024 notices (36 KiB) always fit in a pipe."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One batch in the ring: where its bytes are and what the analysis needs besides them."""

    sequence: int
    offset: int
    length: int
    spans: int
    received_ns: int

    def pack(self) -> bytes:
        return NOTICE.pack(self.sequence, self.offset, self.length, self.spans, self.received_ns)

    @classmethod
    def unpack(cls, data: bytes) -> Notice:
        return cls(*NOTICE.unpack(data))


class RingWriter:
    """The intake side of one ring of ``size`` bytes. Event-loop only."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.memory = shared_memory.SharedMemory(create=True, size=size)
        self._buffer = _buffer_of(self.memory)
        self._in_flight: deque[Notice] = deque()
        self._next_sequence = 1
        self.used_bytes = 0
        """Bytes of batches in flight (not counting the gap left when a batch wraps)."""

    @property
    def name(self) -> str:
        return self.memory.name

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def in_flight_spans(self) -> int:
        return sum(notice.spans for notice in self._in_flight)

    @property
    def last_sequence(self) -> int:
        """The sequence number of the last batch written (0: none yet)."""
        return self._next_sequence - 1

    def write(self, data: bytes | memoryview, spans: int, received_ns: int) -> Notice | None:
        """Copy ``data`` into the ring and return its notice, or ``None`` when it has no room."""
        length = len(data)
        if length == 0 or length > self.size or len(self._in_flight) >= MAX_IN_FLIGHT:
            return None
        offset = self._place(length)
        if offset is None:
            return None
        self._buffer[offset : offset + length] = data
        notice = Notice(self._next_sequence, offset, length, spans, received_ns)
        self._next_sequence += 1
        self._in_flight.append(notice)
        self.used_bytes += length
        return notice

    def _place(self, length: int) -> int | None:
        """Where ``length`` contiguous free bytes start, if anywhere."""
        if not self._in_flight:
            return 0
        first, last = self._in_flight[0], self._in_flight[-1]
        head = last.offset + last.length
        if last.offset >= first.offset:  # not wrapped: free at [head, size) and [0, first)
            if head + length <= self.size:
                return head
            return 0 if length <= first.offset else None
        return head if head + length <= first.offset else None  # wrapped: free at [head, first)

    def release(self, through: int) -> list[Notice]:
        """Free every batch up to sequence ``through``; returns their notices."""
        released: list[Notice] = []
        while self._in_flight and self._in_flight[0].sequence <= through:
            notice = self._in_flight.popleft()
            self.used_bytes -= notice.length
            released.append(notice)
        return released

    def release_all(self) -> list[Notice]:
        """Free every batch (its worker is gone); returns their notices."""
        return self.release(self._next_sequence)

    def close(self) -> None:
        """Free the shared memory. The ring is unusable afterwards."""
        self._in_flight.clear()
        self._buffer.release()
        self.memory.close()
        self.memory.unlink()


class RingReader:
    """The worker side of a ring: the shared memory block, read in place."""

    def __init__(self, name: str, *, same_process: bool = False) -> None:
        """Map the ring ``name``. ``same_process``: the reader lives in the process that created
        the ring (tests), which keeps it tracked."""
        self.memory = shared_memory.SharedMemory(name=name)
        if not same_process:
            # The intake process owns the block and unlinks it; this process must not (the
            # resource tracker would otherwise unlink it when this worker exits, and warn of a leak).
            resource_tracker.unregister(self.memory._name, "shared_memory")  # type: ignore[attr-defined]
        self._buffer = _buffer_of(self.memory)

    def view(self, notice: Notice) -> memoryview:
        """The bytes of ``notice``'s batch (valid until the worker reports the batch done)."""
        return self._buffer[notice.offset : notice.offset + notice.length]

    def close(self) -> None:
        self._buffer.release()
        self.memory.close()


def _buffer_of(memory: shared_memory.SharedMemory) -> memoryview:
    buffer = memory.buf
    assert buffer is not None  # None only after close()
    return buffer
