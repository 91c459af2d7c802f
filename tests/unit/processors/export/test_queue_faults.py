"""The persistent queue on a failing disk and with corrupt files: it heals, counts and says what happened."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from support.otlp_requests import make_request

from otel_impact.processors.accounting import DROP_REASONS, Accounting
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.config import ExporterConfig, QueueConfig, RetryConfig
from otel_impact.processors.export import Forwarder, Outcome, PersistentQueue, queue_storage
from otel_impact.processors.pipeline import Pipeline

OUTAGE_STARTS = "cannot write a request of the persistent queue"
OUTAGE_ENDS = "is writable again after"

WriteV = Callable[[int, Sequence[memoryview]], int]


def req_files(directory: str) -> list[str]:
    """Every request file (whole, unfinished or set aside) in ``directory``."""
    return sorted(name for name in os.listdir(directory) if ".req" in name)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[WriteV | None], None]]:
    """``disk(fault)`` makes every ``os.writev`` go through ``fault``; ``disk(None)`` frees the disk."""
    real = os.writev

    def install(fault: WriteV | None) -> None:
        monkeypatch.setattr(queue_storage.os, "writev", real if fault is None else fault)

    yield install


def full(fd: int, buffers: Sequence[memoryview]) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def half_then_full() -> WriteV:
    """Writes half of what it is given once (a short write), then the disk is full."""
    calls = 0

    def writev(fd: int, buffers: Sequence[memoryview]) -> int:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        data = b"".join(bytes(buffer) for buffer in buffers)
        return os.write(fd, data[: len(data) // 2])

    return writev


def no_progress(fd: int, buffers: Sequence[memoryview]) -> int:
    return 0


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if text in record.getMessage()]


@pytest.mark.parametrize(
    ("fault", "reason"), [(full, "no_space"), (half_then_full(), "no_space"), (no_progress, "short_write")]
)
def test_a_failed_write_leaves_no_file_and_the_next_one_takes_a_fresh_number(
    tmp_path: Path,
    disk: Callable[[WriteV | None], None],
    caplog: pytest.LogCaptureFixture,
    fault: WriteV,
    reason: str,
) -> None:
    directory = str(tmp_path / "q")
    queue = PersistentQueue(directory, 100, 1 << 20)
    assert queue.put(b"before", 1).seq == 1
    disk(fault)
    with caplog.at_level(logging.INFO, logger="otel_impact.processor"):
        for _ in range(3):
            with pytest.raises(OSError):
                queue.put(b"x" * 4096, 7)
        assert req_files(directory) == [f"{1:020d}.req"]  # nothing partial, nothing left over
        assert (queue.requests, queue.spans) == (1, 1)
        assert queue.health.errors[reason] == 3 and queue.health.failing
        disk(None)  # space returns
        item = queue.put(b"after", 2)
        assert item.seq == 5  # fresh: the three failed writes used 2, 3 and 4
        assert queue.put(b"and again", 3).seq == 6
    assert not queue.health.failing
    assert len(messages(caplog, OUTAGE_STARTS)) == 1, caplog.text
    assert messages(caplog, OUTAGE_ENDS) == [messages(caplog, OUTAGE_ENDS)[0]]
    assert "3 writes failed" in messages(caplog, OUTAGE_ENDS)[0]
    queue.close_files()

    restored = PersistentQueue(directory, 100, 1 << 20)
    assert [item.data for item in restored.pending()] == [b"before", b"after", b"and again"]
    assert restored.corrupt_files == 0
    assert restored.put(b"next", 1).seq == 7
    restored.close_files()


def test_a_failed_in_flight_mark_does_not_stop_delivery_and_keeps_the_log_aligned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = str(tmp_path / "q")
    queue = PersistentQueue(directory, 100, 1 << 20)
    first, second, third = (queue.put(f"r{index}".encode(), 1) for index in range(3))
    queue.mark_sent([first])
    log = queue._inflight
    real_write = log.write

    def half_write(data: bytes) -> int:
        return real_write(bytes(data)[:3])  # type: ignore[arg-type]

    monkeypatch.setattr(queue, "_inflight", _Wrapped(log, half_write))
    queue.mark_sent([second])  # must not raise
    assert queue.health.errors["no_space"] == 1
    monkeypatch.setattr(queue, "_inflight", log)
    queue.mark_sent([third])
    queue.close_files()
    restored = PersistentQueue(directory, 100, 1 << 20)
    assert [item.sent_before for item in restored.pending()] == [True, False, True]
    restored.close_files()


class _Wrapped:
    """The in-flight log file with its ``write`` replaced."""

    def __init__(self, inner: object, write: Callable[[bytes], int]) -> None:
        self._inner = inner
        self.write = write

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def write_queue(directory: str, count: int) -> None:
    queue = PersistentQueue(directory, 100, 1 << 20)
    for index in range(count):
        queue.put(f"request-{index}".encode(), 10 + index)
    queue.close_files()


def test_corrupt_files_are_moved_aside_counted_and_described_as_acknowledged_and_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = str(tmp_path / "q")
    write_queue(directory, 5)  # spans 10, 11, 12, 13, 14
    path = Path(directory)

    def name(seq: int) -> Path:
        return path / f"{seq:020d}.req"

    name(2).write_bytes(name(2).read_bytes()[:-4])  # truncated payload: the header still tells 11 spans
    name(3).write_bytes(b"garbage, not a queue file at all" * 3)  # wrong header: spans unknown
    name(4).write_bytes(b"OIQ")  # shorter than the header
    raw = bytearray(name(5).read_bytes())
    raw[-1] ^= 0xFF
    name(5).write_bytes(bytes(raw))  # checksum mismatch: 14 spans
    (path / f"{9:020d}.req.tmp").write_bytes(b"an unfinished write")

    with caplog.at_level(logging.INFO, logger="otel_impact.processor"):
        queue = PersistentQueue(directory, 100, 1 << 20)
    assert [item.data for item in queue.pending()] == [b"request-0"]
    assert (queue.corrupt_files, queue.corrupt_spans, queue.restored_spans) == (4, 11 + 14, 10)
    assert req_files(directory) == [f"{1:020d}.req"] + [f"{seq:020d}.req.corrupt" for seq in (2, 3, 4, 5)]
    lost = messages(caplog, "is corrupt")
    assert len(lost) == 4
    for line in lost:
        assert "moved aside to" in line and ".corrupt" in line
        assert "acknowledged to the sender before and is lost" in line
        assert "never acknowledged" not in line
    assert "truncated" in lost[0] and "11 spans" in lost[0]
    assert "wrong header" in lost[1] and "an unknown number of spans" in lost[1]
    assert "shorter than" in lost[2]
    assert "checksum" in lost[3] and "14 spans" in lost[3]
    assert len(messages(caplog, "unfinished queue write")) == 1
    assert queue.put(b"new", 1).seq == 6  # past the corrupt files: their names stay unique
    queue.close_files()

    again = PersistentQueue(directory, 100, 1 << 20)  # set aside: not counted twice
    assert again.corrupt_files == 0 and again.requests == 2
    assert again.put(b"newer", 1).seq == 7
    again.close_files()


def test_corrupt_files_kept_for_inspection_are_bounded(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    directory = str(tmp_path / "q")
    count = queue_storage.MAX_CORRUPT_FILES + 4
    write_queue(directory, count)
    for name in req_files(directory):
        (Path(directory) / name).write_bytes(b"garbage")
    with caplog.at_level(logging.INFO, logger="otel_impact.processor"):
        queue = PersistentQueue(directory, 100, 1 << 20)
    queue.close_files()
    kept = req_files(directory)
    assert queue.corrupt_files == count
    assert len(kept) == queue_storage.MAX_CORRUPT_FILES
    assert kept[-1] == f"{count:020d}.req.corrupt"  # the newest are kept
    assert messages(caplog, "older corrupt queue files")
    assert f"at most {queue_storage.MAX_CORRUPT_FILES} files" in messages(caplog, "older corrupt queue files")[-1]


class Client:
    async def export(self, body: bytes) -> Outcome:
        return Outcome(ok=True)

    async def close(self) -> None:
        pass


def sample(accounting: Accounting, name: str, **labels: str) -> float:
    return accounting.registry.get_sample_value(name, labels) or 0.0


def books(accounting: Accounting, exporter: str) -> tuple[float, float]:
    """(received accepted + restored, sent + dropped + queued)."""
    accepted = sample(accounting, "otel_impact_receiver_spans_total", transport="grpc", outcome="accepted")
    restored = sample(accounting, "otel_impact_queue_restored_spans_total", exporter=exporter)
    sent = sample(accounting, "otel_impact_exporter_sent_spans_total", exporter=exporter)
    dropped = sum(
        sample(accounting, "otel_impact_exporter_dropped_spans_total", exporter=exporter, reason=reason)
        for reason in DROP_REASONS
    )
    queued = sample(accounting, "otel_impact_queue_spans", exporter=exporter)
    return accepted + restored, sent + dropped + queued


def test_through_the_pipeline_a_full_disk_rejects_for_retry_then_heals_and_the_books_balance(
    tmp_path: Path, disk: Callable[[WriteV | None], None]
) -> None:
    directory = str(tmp_path / "q")
    write_queue(directory, 2)  # 10 and 11 spans from an earlier run
    (Path(directory) / f"{2:020d}.req").write_bytes(b"garbage")  # the 11 spans' header is gone: unknown
    accounting = Accounting(CollectorRegistry())
    clock = ManualClock()
    config = ExporterConfig(
        endpoint="grpc://downstream:4317",
        retry=RetryConfig(initial_interval=0.001, max_interval=0.002, max_elapsed_time=5),
        queue=QueueConfig(consumers=1),
    )
    name = config.name

    async def scenario() -> None:
        queue = PersistentQueue(directory, 100, 1 << 20)
        forwarder = Forwarder(config, queue, Client(), accounting, clock)
        pipeline = Pipeline([forwarder], accounting, clock)
        pipeline.accepting = True
        forwarder.start()
        disk(full)
        for _ in range(3):
            refused = pipeline.submit(make_request(5), "grpc")
            assert refused is not None and refused.reason == "storage_error" and refused.retry_after
        assert sample(accounting, "otel_impact_queue_storage_errors_total", exporter=name, reason="no_space") == 3
        disk(None)
        assert pipeline.submit(make_request(7), "grpc") is None  # no restart needed
        await forwarder.drain(clock.monotonic() + 5)
        await forwarder.abort()

    asyncio.run(scenario())
    assert sample(accounting, "otel_impact_exporter_sent_spans_total", exporter=name) == 10 + 7
    assert (
        sample(accounting, "otel_impact_receiver_rejected_spans_total", transport="grpc", reason="storage_error") == 15
    )
    assert sample(accounting, "otel_impact_queue_corrupt_files_total", exporter=name) == 1
    assert sample(accounting, "otel_impact_exporter_dropped_requests_total", exporter=name, reason="corrupt_file") == 1
    left, right = books(accounting, name)
    assert left == right == 17


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends_with_its_duration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    health = queue_storage.StorageHealth("queue-dir", monotonic=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="otel_impact.processor"):
        health.succeeded()  # no outage: nothing to say
        health.failed(OSError(errno.ENOSPC, "No space left on device"), request=False)
        for _ in range(4):
            now[0] += 10
            health.failed(OSError(errno.ENOSPC, "No space left on device"))
        health.failed(OSError(errno.EROFS, "Read-only file system"))
        now[0] += 2.5
        health.succeeded()
        health.succeeded()
    assert health.errors == {"no_space": 5, "short_write": 0, "read_only": 1, "permission": 0, "io_error": 0}
    assert [record.levelname for record in caplog.records] == ["ERROR", "WARNING"]
    started, ended = (record.getMessage() for record in caplog.records)
    assert "the in-flight log" in started and "no_space" in started
    assert "after 42.5s" in ended and "6 writes failed" in ended and "5 requests refused" in ended
