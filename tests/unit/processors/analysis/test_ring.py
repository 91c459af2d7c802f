"""The shared-memory ring: batches are placed contiguously, wrap, are released in order, and a
full ring (by bytes or by batches) says so instead of overwriting anything."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otel_impact.processors.analysis.ring import MAX_IN_FLIGHT, Notice, RingReader, RingWriter


@pytest.fixture
def ring() -> Iterator[RingWriter]:
    writer = RingWriter(100)
    yield writer
    writer.close()


def test_a_batch_is_read_back_in_place_by_another_mapping(ring: RingWriter) -> None:
    notice = ring.write(b"hello", spans=3, received_ns=7)
    assert notice is not None
    assert Notice.unpack(notice.pack()) == notice
    reader = RingReader(ring.name, same_process=True)
    try:
        assert bytes(reader.view(notice)) == b"hello"
    finally:
        reader.close()
    assert (notice.sequence, notice.offset, notice.spans, notice.received_ns) == (1, 0, 3, 7)


def test_batches_wrap_to_the_start_when_the_end_has_no_room(ring: RingWriter) -> None:
    first = ring.write(b"a" * 40, 1, 0)
    second = ring.write(b"b" * 40, 1, 0)
    assert first is not None and second is not None and second.offset == 40
    assert ring.write(b"c" * 30, 1, 0) is None  # 20 free at the end, none at the start yet
    assert [n.sequence for n in ring.release(first.sequence)] == [1]
    third = ring.write(b"c" * 30, 1, 0)
    assert third is not None and third.offset == 0  # wrapped
    assert ring.write(b"d" * 11, 1, 0) is None  # only [30, 40) is free between the wrapped head and the oldest
    fourth = ring.write(b"d" * 10, 1, 0)
    assert fourth is not None and fourth.offset == 30
    assert ring.used_bytes == 80 and ring.in_flight == 3 and ring.in_flight_spans == 3


def test_nothing_is_overwritten_while_in_flight(ring: RingWriter) -> None:
    written = []
    while (notice := ring.write(bytes([len(written)]) * 7, 1, 0)) is not None:
        written.append(notice)
    reader = RingReader(ring.name, same_process=True)
    try:
        for index, notice in enumerate(written):
            assert bytes(reader.view(notice)) == bytes([index]) * 7
    finally:
        reader.close()
    assert sum(n.length for n in written) <= 100


def test_release_frees_in_order_and_release_all_everything(ring: RingWriter) -> None:
    notices = [ring.write(b"x" * 10, 2, 0) for _ in range(4)]
    assert all(n is not None for n in notices)
    assert [n.sequence for n in ring.release(2)] == [1, 2]
    assert ring.release(2) == []
    assert [n.sequence for n in ring.release_all()] == [3, 4]
    assert ring.in_flight == 0 and ring.used_bytes == 0
    assert ring.last_sequence == 4


def test_too_large_empty_and_too_many_batches_are_refused() -> None:
    ring = RingWriter(1 << 20)
    try:
        assert ring.write(b"", 0, 0) is None
        assert ring.write(b"x" * ((1 << 20) + 1), 1, 0) is None
        for _ in range(MAX_IN_FLIGHT):
            assert ring.write(b"x", 1, 0) is not None
        assert ring.write(b"x", 1, 0) is None  # the notice pipe can never fill
    finally:
        ring.close()
