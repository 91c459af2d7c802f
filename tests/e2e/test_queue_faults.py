"""``otel-impact serve --state`` on a real, tiny filesystem that fills up, and with corrupt queue files.

The full-disk test mounts a 256 KiB tmpfs as the state directory (it needs root, or at least the
right to mount; it is skipped with the reason otherwise). The same path with an injected
``ENOSPC`` always runs in ``tests/unit/processors/export/test_queue_faults.py``.
"""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
import requests
from support.otlp_requests import ids_of, make_request
from support.otlp_sink import OtlpSink
from support.processor import Processor, assert_books_balance, grpc_export, serve

from otel_impact.processors.service import queue_directory

pytestmark = pytest.mark.slow

RETRY_FAST = "retry: {initial_interval: 200ms, max_interval: 1s, max_elapsed_time: 2m}"
OUTAGE_STARTS = "cannot write a request of the persistent queue"
OUTAGE_ENDS = "is writable again after"


def downstream(sink: OtlpSink) -> tuple[str, str]:
    """A config forwarding to ``sink`` over gRPC, and the exporter's name."""
    endpoint = f"grpc://127.0.0.1:{sink.grpc_port}"
    return f"exporters:\n  - endpoint: {endpoint}\n    {RETRY_FAST}\n", endpoint


@contextmanager
def tiny_filesystem(size: str = "256k") -> Iterator[str]:
    """A freshly mounted tmpfs of ``size``; skips the test when mounting is not permitted."""
    with tempfile.TemporaryDirectory() as mountpoint:
        try:
            result = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", mountpoint],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError as error:
            pytest.skip(f"cannot run mount ({error}); the injected ENOSPC unit tests cover this path")
        if result.returncode != 0:
            pytest.skip(
                f"mounting a tmpfs is not permitted here ({result.stderr.strip() or result.returncode}); "
                "the injected ENOSPC unit tests cover this path"
            )
        try:
            yield mountpoint
        finally:
            subprocess.run(["umount", mountpoint], capture_output=True, timeout=30, check=False)


def fill(path: Path) -> int:
    """Write ``path`` until the filesystem is full; the bytes written."""
    written = 0
    chunk = b"\0" * 4096
    with open(path, "wb", buffering=0) as handle:
        while True:
            try:
                count = handle.write(chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
                return written
            if not count:
                return written
            written += count


def metric(processor: Processor, name: str, **labels: str) -> float:
    return processor.metric_sum(name, **labels)


def test_a_full_disk_rejects_for_retry_then_intake_recovers_without_a_restart(sink: OtlpSink) -> None:
    config, name = downstream(sink)
    with tiny_filesystem() as state, serve(config=config, state=state) as processor:
        first = make_request(10)
        grpc_export(processor.ports["otlp_grpc"], first)
        processor.wait_for(lambda: set(ids_of(first)) <= set(sink.span_ids()), what="the first request delivered")

        filler = Path(state) / "filler"
        assert fill(filler) > 0
        refused = [make_request(20) for _ in range(4)]
        for body in refused[:3]:
            with pytest.raises(grpc.RpcError) as caught:
                grpc_export(processor.ports["otlp_grpc"], body)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # retryable: the sender keeps the data
        reply = requests.post(
            processor.http_url,
            data=refused[3],
            headers={"Content-Type": "application/x-protobuf"},
            timeout=10,
        )
        assert reply.status_code == 503 and reply.headers.get("Retry-After"), (reply.status_code, reply.headers)
        assert metric(processor, "otel_impact_queue_storage_errors_total", exporter=name, reason="no_space") == 4
        assert metric(processor, "otel_impact_receiver_rejected_requests_total", reason="storage_error") == 4
        assert metric(processor, "otel_impact_receiver_rejected_spans_total", reason="storage_error") == 80
        assert [entry for entry in os.listdir(queue_directory(state, name)) if ".req" in entry] == []  # nothing partial

        filler.unlink()  # space returns: the very next request is accepted, no restart
        retried = refused[0]  # as the sender's retry would
        grpc_export(processor.ports["otlp_grpc"], retried)
        processor.wait_for(lambda: set(ids_of(retried)) <= set(sink.span_ids()), what="the retried request delivered")
        processor.wait_for(lambda: assert_books_balance(processor, name)["queued"] == 0, what="an empty queue")
        terms = assert_books_balance(processor, name)
        assert terms["sent"] == terms["accepted"] == 30 and terms["dropped"] == 0
        log = processor.log()
        assert log.count(OUTAGE_STARTS) == 1, log
        assert log.count(OUTAGE_ENDS) == 1 and "4 writes failed" in log, log


def test_corrupt_queue_files_are_moved_aside_counted_and_reported_as_lost(sink: OtlpSink) -> None:
    config, name = downstream(sink)
    whole = make_request(5)
    with tempfile.TemporaryDirectory() as state:
        sink.behavior.status = "unavailable"  # the first run cannot deliver: its requests stay on disk
        with serve(config=config, state=state) as first:
            for body in (whole, make_request(7), make_request(9)):
                grpc_export(first.ports["otlp_grpc"], body)
            first.kill()
        sink.behavior.status = "ok"
        directory = Path(queue_directory(state, name))
        files = sorted(directory.glob("*.req"))
        assert len(files) == 3
        files[1].write_bytes(files[1].read_bytes()[:-10])  # truncated: the header still tells 7 spans
        files[2].write_bytes(b"not a queue file")  # garbage: the spans are unknown

        with serve(config=config, state=state) as second:
            second.wait_for(lambda: set(sink.span_ids()) >= set(ids_of(whole)), what="the intact request delivered")
            second.wait_for(lambda: assert_books_balance(second, name)["queued"] == 0, what="an empty queue")
            terms = assert_books_balance(second, name)
            assert terms["restored"] == 5 + 7 and terms["sent"] == 5 and terms["dropped"] == 7
            assert metric(second, "otel_impact_queue_corrupt_files_total", exporter=name) == 2
            dropped = metric(
                second, "otel_impact_exporter_dropped_requests_total", exporter=name, reason="corrupt_file"
            )
            assert dropped == 2
            log = second.log()
        assert sorted(path.name for path in directory.glob("*.corrupt")) == [
            files[1].name + ".corrupt",
            files[2].name + ".corrupt",
        ]
        assert log.count("acknowledged to the sender before and is lost") == 2, log
        assert "never acknowledged" not in log
        assert f"moved aside to {files[1]}.corrupt" in log
