"""The bounded sending queue, in memory and on disk."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from otel_impact.processors.export import PersistentQueue, SendQueue


def test_bounded_by_count_and_by_bytes() -> None:
    queue = SendQueue(max_requests=3, max_bytes=100)
    assert queue.has_room(500)  # a lone request always fits an empty queue
    queue.put(b"x" * 60, 1)
    assert not queue.has_room(41) and queue.has_room(40)
    queue.put(b"x" * 20, 2)
    queue.put(b"x" * 10, 3)
    assert not queue.has_room(1)  # three requests
    assert (queue.requests, queue.bytes, queue.spans) == (3, 90, 6)


def test_take_merges_consecutive_items_within_the_limit_and_keeps_them_counted() -> None:
    queue = SendQueue(max_requests=10, max_bytes=1000)
    for size in (30, 30, 30, 50):
        queue.put(b"x" * size, 1)
    batch = queue.take_nowait(100)
    assert [len(item.data) for item in batch] == [30, 30, 30]
    assert queue.requests == 4  # in flight still counts against the bounds
    queue.ack(batch)
    assert queue.requests == 1 and queue.bytes == 50
    assert [len(item.data) for item in queue.take_nowait(0)] == [50]  # no merging: one at a time


def test_take_waits_and_returns_empty_once_closed() -> None:
    async def scenario() -> list[int]:
        queue = SendQueue(10, 1000)
        waiter = asyncio.create_task(queue.take(100))
        await asyncio.sleep(0)
        queue.put(b"abc", 1)
        first = await waiter
        closing = asyncio.create_task(queue.take(100))
        await asyncio.sleep(0)
        queue.close()
        return [len(first), len(await closing)]

    assert asyncio.run(scenario()) == [1, 0]


def test_unput_takes_back_the_last_item() -> None:
    queue = SendQueue(10, 1000)
    queue.put(b"a", 1)
    item = queue.put(b"bb", 2)
    queue.unput(item)
    assert (queue.requests, queue.bytes, queue.spans) == (1, 1, 1)


def test_persistent_queue_survives_a_restart_in_order_and_marks_what_was_in_flight(tmp_path: Path) -> None:
    directory = str(tmp_path / "q")
    queue = PersistentQueue(directory, 100, 1 << 20)
    for index in range(5):
        queue.put(f"request-{index}".encode(), index + 1)
    delivered = queue.take_nowait(0)
    queue.mark_sent(delivered)
    queue.ack(delivered)  # request-0 delivered
    in_flight = queue.take_nowait(0)
    queue.mark_sent(in_flight)  # request-1 sent, never acknowledged: the process dies here
    queue.close_files()

    restored = PersistentQueue(directory, 100, 1 << 20)
    items = restored.pending()
    assert [item.data for item in items] == [b"request-1", b"request-2", b"request-3", b"request-4"]
    assert [item.sent_before for item in items] == [True, False, False, False]
    assert restored.restored_spans == 2 + 3 + 4 + 5 and restored.redelivered_spans == 2
    assert restored.put(b"new", 1).seq == 6  # numbering continues
    restored.ack(restored.take_nowait(1 << 20))
    assert [name for name in os.listdir(directory) if name.endswith(".req")] == []
    restored.close_files()
    empty = PersistentQueue(directory, 100, 1 << 20)
    assert empty.requests == 0
    empty.close_files()


def test_a_file_cut_short_by_a_kill_is_discarded(tmp_path: Path) -> None:
    directory = str(tmp_path / "q")
    queue = PersistentQueue(directory, 100, 1 << 20, fsync=True)
    queue.put(b"complete", 1)
    queue.put(b"will be cut", 1)
    queue.close_files()
    path = Path(directory) / f"{2:020d}.req"
    path.write_bytes(path.read_bytes()[:-3])  # as if killed in the middle of writing
    restored = PersistentQueue(directory, 100, 1 << 20)
    assert [item.data for item in restored.pending()] == [b"complete"]
    assert not path.exists()
    restored.close_files()
