"""The analysis worker process: parse the batches in its ring, analyse them, report the result.

`run_worker` is the process's whole life. It waits for notices, takes every notice already
waiting as well (up to `COALESCE_SPANS` spans), parses each batch from the ring in place,
analyses them together with a `SliAnalyzer` over its own shadow `SliState` (which only gives
tasks and series their shape; nothing is folded into it), and sends one `WorkerReport`. It
exits when the notice pipe closes (the intake process is stopping or gone), after reporting
what it had.
"""

from __future__ import annotations

import logging
import pickle
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Final

from google.protobuf.message import DecodeError

from otel_impact.processors.batch import TraceBatch
from otel_impact.processors.child_processes import child_pipes
from otel_impact.processors.sli.analyzer import SliAnalyzer
from otel_impact.processors.sli.config import SliConfig
from otel_impact.processors.sli.state import SliState
from otel_impact.proto.view import parse_traces

from .messages import WorkerReport
from .ring import NOTICE, Notice, RingReader

__all__ = ["COALESCE_SPANS", "WORKER_ENTRY", "WorkerSpec", "run_worker"]

COALESCE_SPANS: Final = 8192
"""Spans analysed together at most: waiting batches are taken together up to this many."""
WORKER_ENTRY: Final = "otel_impact.processors.analysis.worker:main"
"""What `child_processes.start_child` runs for a worker."""
GATHER_SPANS: Final = 2048
GATHER_WAIT_S: Final = 0.005
"""A worker with fewer than `GATHER_SPANS` spans in hand waits up to this long for more: the cost
of analysing a group of events is mostly per (task, segment, minute), so batches analysed
together cost less per span, for 5 ms more lag."""
PRUNE_INTERVAL_S: Final = 60.0
"""Seconds between two prunes of the shadow state's idle series."""


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker is started with (pickled to its standard input)."""

    index: int
    config: SliConfig
    ring_name: str
    log_level: int = logging.INFO


def main(argv: list[str]) -> None:
    """The worker process's entry point (`WORKER_ENTRY`): ``argv`` holds the two pipes' descriptors."""
    spec, notices, reports = child_pipes(argv)
    if not isinstance(spec, WorkerSpec):
        raise SystemExit("otel-impact analysis worker: expected a WorkerSpec on standard input")
    run_worker(spec, notices, reports)


def run_worker(spec: WorkerSpec, notices: Connection, reports: Connection) -> None:
    """Analyse what ``notices`` announce until the pipe closes (see the module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the intake process stops it by closing the pipe
    logging.basicConfig(level=spec.log_level, format=f"otel-impact analysis worker {spec.index}: %(message)s")
    ring = RingReader(spec.ring_name)
    state = SliState(spec.config, now_ns=time.time_ns())
    analyzer = SliAnalyzer(state)
    last_prune = time.monotonic()
    try:
        while True:
            batch_notices = _next_notices(notices)
            if not batch_notices:
                return
            report = _analyse(analyzer, ring, batch_notices)
            reports.send_bytes(pickle.dumps(report, protocol=pickle.HIGHEST_PROTOCOL))
            if time.monotonic() - last_prune >= PRUNE_INTERVAL_S:
                last_prune = time.monotonic()
                state.prune(time.time_ns())
                if state.synthetic is not None:
                    state.synthetic.prune(time.time_ns())
    except (BrokenPipeError, EOFError, OSError):
        return  # the intake process is gone
    finally:
        ring.close()


def _next_notices(pipe: Connection) -> list[Notice]:
    """Wait for one notice, then take those already waiting, up to `COALESCE_SPANS` spans; while
    fewer than `GATHER_SPANS` are in hand, wait up to `GATHER_WAIT_S` for more."""
    try:
        first = Notice.unpack(pipe.recv_bytes(NOTICE.size))
    except EOFError:
        return []
    notices = [first]
    spans = first.spans
    deadline = time.monotonic() + GATHER_WAIT_S
    while spans < COALESCE_SPANS:
        wait = deadline - time.monotonic() if spans < GATHER_SPANS else 0.0
        if not pipe.poll(max(wait, 0.0)):
            break
        try:
            notice = Notice.unpack(pipe.recv_bytes(NOTICE.size))
        except EOFError:
            break
        notices.append(notice)
        spans += notice.spans
    return notices


def _analyse(analyzer: SliAnalyzer, ring: RingReader, notices: list[Notice]) -> WorkerReport:
    batches: list[TraceBatch] = []
    unparseable = 0
    for notice in notices:
        try:
            view = parse_traces(ring.view(notice))  # type: ignore[arg-type]  # any bytes-like parses
        except DecodeError:
            unparseable += notice.spans
            continue
        batches.append(TraceBatch(b"", view, notice.spans, notice.received_ns, "analysis"))
    result = analyzer.results(batches)
    return WorkerReport(
        through=notices[-1].sequence,
        result=result,
        unparseable_spans=unparseable,
        batches=len(batches),
        errors=analyzer.errors,
        bad_spans=analyzer.bad_spans,
        value_tally=analyzer.value_tally(),
    )
