"""Several ``otel-impact serve`` replicas for the shared-state tests: starting them, sending them
OTLP over gRPC, and asking them the same questions until their answers settle.
"""

from __future__ import annotations

import json
import shlex
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import grpc

from support.processor import EXPORT_METHOD, Processor, serve, state_begun
from support.shared_answers import (
    assert_matches_truth,
    assert_top_matches,
    comparable,
    differences,
    events_total,
)
from support.shared_workload import TASK, Truth, Workload

RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
"""What a replica answers when it asks the client to retry (intake queue full, shutting down)."""


HISTORY_S = 2 * 3600
"""How long each replica's state has been watching when it starts (see `state_begun`)."""


@contextmanager
def replicas(count: int, *args: str, config: str) -> Iterator[list[Processor]]:
    """``count`` replicas of ``serve *args`` (each on its own free ports and with its own state,
    begun `HISTORY_S` ago), stopped afterwards."""
    with ExitStack() as stack:
        processors = []
        for _ in range(count):
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="replica-state-")))
            state_begun(directory, HISTORY_S, config)
            processors.append(stack.enter_context(serve(*args, config=config, state=str(directory))))
        yield processors


class Sender:
    """Sends OTLP/gRPC requests to replicas on one channel each, retrying refusals that ask for
    a retry (so a request is counted once it is accepted, never lost to backpressure).

    `sent` counts accepted requests; safe to read from another thread.
    """

    def __init__(self, processors: Sequence[Processor], timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.sent = 0
        self._lock = threading.Lock()
        self._channels = [
            grpc.insecure_channel(f"127.0.0.1:{p.ports['otlp_grpc']}", options=[("grpc.max_send_message_length", -1)])
            for p in processors
        ]
        self._calls = [channel.unary_unary(EXPORT_METHOD) for channel in self._channels]

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        for channel in self._channels:
            channel.close()

    def send(self, replica: int, body: bytes) -> None:
        deadline = time.monotonic() + self.timeout
        delay = 0.02
        while True:
            try:
                self._calls[replica](body, timeout=10)
                break
            except grpc.RpcError as error:
                if error.code() not in RETRYABLE or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(0.5, delay * 2)
        with self._lock:
            self.sent += 1

    def send_all(self, requests: Sequence[tuple[int, bytes]], *, pause: float = 0.0) -> None:
        """Send ``(replica, body)`` pairs: each replica's in order (``pause`` seconds apart), the
        replicas concurrently."""
        errors: list[BaseException] = []
        replicas = sorted({replica for replica, _ in requests})

        def run(replica: int) -> None:
            try:
                for target, body in requests:
                    if target == replica:
                        self.send(replica, body)
                        time.sleep(pause)
            except BaseException as error:  # reported by the caller's thread
                errors.append(error)

        threads = [threading.Thread(target=run, args=(replica,)) for replica in replicas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]


def send_workload(processors: Sequence[Processor], workload: Workload) -> None:
    """Every part of ``workload`` to its replica (part ``i`` to ``processors[i % len]``)."""
    with Sender(processors) as sender:
        sender.send_all([(replica % len(processors), body) for replica, body in workload.requests()])


def answer(processor: Processor, path: str) -> tuple[int, Any]:
    """The status and JSON body of a GET on the admin API. A 400 (a task no replica has analyzed
    yet) or a 503 (no answer for now) is returned; any other failure raises AssertionError with
    the body and the replica's log, at once: an internal error is never a state to wait out."""
    try:
        with urllib.request.urlopen(processor.admin_url + path, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            text = error.read().decode(errors="replace")
        if error.code in (400, 503):
            return error.code, json.loads(text)
        raise AssertionError(f"GET {path} answered {error.code}: {text}\n{processor.log()[-3000:]}") from None


def impact(processor: Processor, end_s: int, *, by: str | None = None) -> Any:
    """The last hour's impact of the workload's task, up to ``end_s`` (unix seconds)."""
    grouping = f"&by={by}" if by else ""
    status, body = answer(processor, f"/api/v1/impact?task={TASK}&window=1h&end={end_s}{grouping}")
    assert status == 200, body
    return body


def top(processor: Processor, end_s: int, limit: int = 10) -> Any:
    status, body = answer(processor, f"/api/v1/customers/top?task={TASK}&window=1h&end={end_s}&limit={limit}")
    assert status == 200, body
    return body


def impact_status(processor: Processor, end_s: int) -> tuple[int, Any]:
    """Like `impact`, with the status: a task no replica has analyzed yet is a 400."""
    return answer(processor, f"/api/v1/impact?task={TASK}&window=1h&end={end_s}")


def ready_status(processor: Processor) -> int:
    """``/readyz``'s status (200 while the replica takes data)."""
    return shared_status(processor)[0]


def shared_status(processor: Processor) -> tuple[int, dict[str, str] | None]:
    """``/readyz``'s status and its ``shared_state key=value ...`` line as a dict (None when absent)."""
    try:
        with urllib.request.urlopen(processor.admin_url + "/readyz", timeout=10) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            status, text = error.code, error.read().decode()
    for line in text.splitlines():
        if line.startswith("shared_state "):
            return status, dict(part.split("=", 1) for part in shlex.split(line)[1:])
    return status, None


def poll(
    processors: Sequence[Processor],
    ask: Callable[[Processor], Any],
    done: Callable[[list[Any]], bool],
    *,
    timeout: float = 45.0,
    what: str,
) -> list[Any]:
    """Ask every replica ``ask`` until ``done(answers)``; the last answers. Raises AssertionError
    (with the answers and the replicas' logs) when they do not come within ``timeout``."""
    deadline = time.monotonic() + timeout
    answers: list[Any] = []
    while True:
        answers = [ask(processor) for processor in processors]
        if done(answers):
            return answers
        if time.monotonic() > deadline:
            logs = "\n".join(p.log()[-2000:] for p in processors)
            raise AssertionError(f"timed out waiting for {what}; last answers: {repr(answers)[:4000]}\n{logs}")
        time.sleep(0.2)


def wait_until(condition: Callable[[], bool], *, timeout: float = 45.0, what: str, fail: bool = True) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` passes: then raise AssertionError
    naming ``what``, or return False when not ``fail``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            if fail:
                raise AssertionError(f"timed out waiting for {what}")
            return False
        time.sleep(0.1)
    return True


def settled(truth: Truth) -> Callable[[list[tuple[int, Any]]], bool]:
    """A `poll` condition: every replica answers, with all of the truth's events. More events
    than were sent can never settle (counts only grow): that fails at once."""

    def done(answers: list[tuple[int, Any]]) -> bool:
        totals = [events_total(body) if status == 200 else None for status, body in answers]
        over = [total for total in totals if total is not None and total > truth.events]
        assert not over, f"more events than were sent ({truth.events}): {totals}"
        return all(total == truth.events for total in totals)

    return done


def assert_one_true_answer(processors: list[Processor], workload: Workload) -> None:
    """Every replica's impact and top customers match the truth, the answers are complete (with
    upper bounds), and all replicas agree."""
    answers = [impact(p, workload.end_s) for p in processors]
    for answer in answers:
        assert answer["telemetry"]["complete"] is True, answer["telemetry"]
        assert_matches_truth(answer, workload.truth)
    first = comparable(answers[0])
    for index, answer in enumerate(answers[1:], start=1):
        different = differences(first, comparable(answer))
        assert not different, f"replica {index} answers differently from replica 0: " + "; ".join(different[:20])
    tops = [top(p, workload.end_s) for p in processors]
    assert_top_matches(tops[0], workload.truth)
    for index, other in enumerate(tops[1:], start=1):
        different = differences(tops[0], other)
        assert not different, f"replica {index} has other top customers than replica 0: " + "; ".join(different[:20])
