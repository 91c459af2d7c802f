"""``serve --workers 2``: two intake processes on the same ports give one answer.

Real processes, real ``SO_REUSEPORT``: the kernel spreads connections over the processes, so the
tests first open connections until each process holds some (`pin_connections`, which tells the
processes apart by their per-process request series), then send through them. The answers
(impact, top customers) must be exact, ``/metrics`` must sum both processes, an extra process
killed with SIGKILL is restarted and counted and analyses what comes later, and under
``--state`` each process replays its own queue directory.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from support.otlp_requests import ids_of, make_request
from support.otlp_sink import OtlpSink
from support.processor import CLI, EXPORT_METHOD, Processor, serve, state_begun
from support.shared_answers import events_total
from support.shared_replicas import HISTORY_S, assert_one_true_answer, impact, impact_status, poll, settled
from support.shared_workload import SLI_CONFIG, Workload, build

PER_PROCESS = "otel_impact_intake_process_requests_total"
ACCEPTED = "otel_impact_receiver_spans_total"
LISTENING = re.compile(r"intake process 1 listening \(pid (\d+)\)")

Send = Callable[[bytes], None]


def per_process(processor: Processor) -> dict[str, float]:
    """Requests received by each intake process, by its number."""
    found: dict[str, float] = {}
    for key, value in processor.metrics().items():
        match = re.fullmatch(PER_PROCESS + r'\{process="(\d+)"\}', key)
        if match:
            found[match.group(1)] = value
    return found


class Connections:
    """gRPC channels and HTTP keep-alive connections, each known to land on one intake process."""

    def __init__(self) -> None:
        self.by_process: dict[str, list[tuple[str, Send]]] = {}
        self._closers: list[Callable[[], None]] = []

    def close(self) -> None:
        for close in self._closers:
            close()

    def senders(self) -> list[tuple[str, Send]]:
        return [sender for senders in self.by_process.values() for sender in senders]

    def open(self, processor: Processor, kind: str) -> Send:
        if kind == "grpc":
            # Its own subchannel pool: channels to one target otherwise share one connection.
            target = f"127.0.0.1:{processor.ports['otlp_grpc']}"
            channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
            call = channel.unary_unary(EXPORT_METHOD)
            self._closers.append(channel.close)
            return lambda body: call(body, timeout=30)
        connection = http.client.HTTPConnection("127.0.0.1", processor.ports["otlp_http"], timeout=30)
        self._closers.append(connection.close)
        lock = threading.Lock()

        def post(body: bytes) -> None:
            with lock:
                connection.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
                response = connection.getresponse()
                response.read()
                assert response.status == 200, response.status

        return post


@contextmanager
def pin_connections(
    processor: Processor, kinds: Sequence[str], per_kind: int, tries: int = 60
) -> Iterator[Connections]:
    """Open connections of each kind until every intake process holds ``per_kind`` of each: an
    empty request on a new connection shows which process took it (its request series grows)."""
    connections = Connections()
    try:
        for kind in kinds:
            wanted = {"0": per_kind, "1": per_kind}
            for _ in range(tries):
                if not any(wanted.values()):
                    break
                before = per_process(processor)
                send = connections.open(processor, kind)
                send(b"")
                after = per_process(processor)
                grown = [index for index in after if after[index] > before.get(index, 0.0)]
                assert len(grown) == 1, (before, after)
                if wanted.get(grown[0], 0):
                    wanted[grown[0]] -= 1
                    connections.by_process.setdefault(grown[0], []).append((kind, send))
            assert not any(wanted.values()), f"the kernel never gave some process a {kind} connection: {wanted}"
        yield connections
    finally:
        connections.close()


def send_over(senders: Sequence[tuple[str, Send]], bodies: Sequence[bytes]) -> None:
    """Send ``bodies`` spread over ``senders``, all senders at once."""
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            for body in bodies[index :: len(senders)]:
                senders[index][1](body)
        except BaseException as error:  # reported by the caller's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(senders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def bodies_of(workload: Workload) -> list[bytes]:
    return [body for _, body in workload.requests()]


def extra_pid(processor: Processor, after: int = 0) -> int:
    """The pid of intake process 1 in its ``after``-th (0: first) listening line."""
    pids = LISTENING.findall(processor.log())
    assert len(pids) > after, processor.log()[-3000:]
    return int(pids[after])


def test_two_intake_processes_answer_as_one(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state_begun(state, HISTORY_S, SLI_CONFIG)
    workload = build(time.time_ns(), replicas=4, customers=4000)
    later = build(time.time_ns(), replicas=2, customers=600, first_customer=100_000)
    with (
        OtlpSink() as sink,
        serve(
            "--workers", "2", "--forward", f"grpc://127.0.0.1:{sink.grpc_port}", config=SLI_CONFIG, state=str(state)
        ) as processor,
    ):
        metrics = processor.metrics()
        assert metrics["otel_impact_intake_processes{}"] == 2
        with pin_connections(processor, ("grpc", "http"), per_kind=2) as connections:
            send_over(connections.senders(), bodies_of(workload))
        poll([processor], lambda p: impact_status(p, workload.end_s), settled(workload.truth), what="the events")

        # One true answer from both processes' spans, each received by the process its connection landed on.
        assert_one_true_answer([processor], workload)
        counts = per_process(processor)
        assert counts["0"] > 4 and counts["1"] > 4, counts  # beyond the empty requests that pinned the connections
        assert processor.metric_sum(ACCEPTED, outcome="accepted") == workload.spans
        assert processor.metric_sum("otel_impact_receiver_requests_total") == sum(counts.values())
        assert processor.metric_sum("impact_sli_unanalysed_spans_total") == 0
        sink.wait_for_spans(workload.spans)
        assert sorted(sink.span_ids()) == sorted(workload.span_ids)
        assert processor.metric_sum("otel_impact_exporter_sent_spans_total") == workload.spans
        assert (state / "queues").is_dir() and (state / "intake-1" / "queues").is_dir()

        # SIGKILL the extra process: restarted, logged once, counted; its counters stay in the sums.
        first = extra_pid(processor)
        os.kill(first, signal.SIGKILL)
        processor.wait_for(
            lambda: (
                processor.metric_sum("otel_impact_intake_process_restarts_total") == 1
                and processor.metric_sum("otel_impact_intake_processes") == 2
            ),
            what="the extra intake process to be restarted",
        )
        assert extra_pid(processor, after=1) != first
        assert processor.log().count("intake process 1 exited") == 1
        assert processor.metric_sum(ACCEPTED, outcome="accepted") == workload.spans

        # What comes later is analysed, the restarted process's share included.
        with pin_connections(processor, ("grpc",), per_kind=1) as connections:
            send_over(connections.senders(), bodies_of(later))
        expected = workload.truth.events + later.truth.events
        answer = impact(processor, workload.end_s)
        assert events_total(answer) == expected, answer["events"]
        assert processor.metric_sum(ACCEPTED, outcome="accepted") == workload.spans + later.spans
        assert per_process(processor)["1"] > 0
        assert processor.terminate() == 0
    log = processor.log()
    assert "[intake 1] otel-impact: drained" in log, log[-3000:]


def assert_books_balance(processor: Processor, *, accepted: int) -> None:
    """The accounting invariant over the summed series: accepted + restored = sent + dropped + queued."""
    metrics = {
        name: processor.metric_sum(name, exporter="down")
        for name in (
            "otel_impact_queue_restored_spans_total",
            "otel_impact_exporter_sent_spans_total",
            "otel_impact_exporter_dropped_spans_total",
            "otel_impact_queue_spans",
        )
    }
    assert processor.metric_sum(ACCEPTED, outcome="accepted") == accepted
    restored, sent, dropped, queued = metrics.values()
    assert accepted + restored == sent + dropped + queued, metrics


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_each_process_keeps_and_replays_its_own_queue(tmp_path: Path) -> None:
    port = free_port()
    config = f"""
exporters:
  - endpoint: grpc://127.0.0.1:{port}
    name: down
    retry: {{initial_interval: 100ms, max_interval: 300ms, max_elapsed_time: 0s}}
"""
    state = tmp_path / "state"
    with serve("--workers", "2", config=config, state=str(state)) as processor:
        bodies = [make_request(20) for _ in range(12)]
        sent = [span for body in bodies for span in ids_of(body)]
        with pin_connections(processor, ("grpc",), per_kind=2) as connections:
            send_over(connections.senders(), bodies)
        counts = per_process(processor)
        assert counts["1"] > 2, counts
        assert processor.metric_sum("otel_impact_queue_spans", exporter="down") == len(sent)
        assert (state / "queues" / "down").is_dir() and (state / "intake-1" / "queues" / "down").is_dir()
        queued_in_1 = len(list((state / "intake-1" / "queues" / "down").iterdir()))
        assert queued_in_1 > 0

        os.kill(extra_pid(processor), signal.SIGKILL)
        processor.wait_for(
            lambda: (
                processor.metric_sum("otel_impact_intake_process_restarts_total") == 1
                and processor.metric_sum("otel_impact_intake_processes") == 2
            ),
            what="the extra intake process to be restarted",
        )
        # The restarted process found its queue on disk (the dead one's gauges left the sums, so
        # only its replay can hold them), and the books of the sums still balance: the spans it
        # restored were counted as accepted by its earlier life, not again as restored.
        assert processor.metric_sum("otel_impact_queue_spans", exporter="down") == len(sent)
        assert_books_balance(processor, accepted=len(sent))

        with OtlpSink(grpc_port=port) as sink:
            sink.wait_for_spans(len(sent), timeout=30)
            assert sorted(sink.span_ids()) == sorted(sent)
            processor.wait_for(
                lambda: processor.metric_sum("otel_impact_exporter_sent_spans_total", exporter="down") == len(sent),
                what="every span to be counted as sent",
            )
        assert_books_balance(processor, accepted=len(sent))
        assert processor.terminate() == 0


@pytest.mark.parametrize(
    ("args", "env", "config", "expected"),
    [
        (["--workers", "0"], {}, None, "--workers: '0'"),
        (["--workers", "two"], {}, None, "--workers: 'two'"),
        ([], {"OTEL_IMPACT_WORKERS": "65"}, None, "OTEL_IMPACT_WORKERS: '65'"),
        ([], {}, "receivers: {processes: 0}\n", "receivers.processes"),
    ],
)
def test_a_bad_number_of_intake_processes_is_a_config_error(
    args: list[str], env: dict[str, str], config: str | None, expected: str
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        argv = [CLI, "serve", "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0", "--admin", "127.0.0.1:0"]
        if config is not None:
            path = Path(scratch) / "config.yaml"
            path.write_text(config)
            argv += ["--config", str(path)]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_IMPACT_")} | env
        result = subprocess.run(argv + args, capture_output=True, text=True, env=full_env, timeout=60, cwd=scratch)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "use 1 (the default) to 64 intake processes" in result.stderr, result.stderr


def test_an_extra_process_that_cannot_start_stops_the_start(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "intake-1").write_text("not a directory")
    argv = [CLI, "serve", "--workers", "2", "--state", str(state), "--otlp-grpc", "127.0.0.1:0"]
    argv += ["--otlp-http", "127.0.0.1:0", "--admin", "127.0.0.1:0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_IMPACT_")}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("otel-impact serve: cannot start: intake process 1 could not start:"), result.stderr
    assert "intake-1" in last, last


def test_separate_grpc_gives_each_transport_its_own_intake_process() -> None:
    """``receivers.separate_grpc``: OTLP/HTTP is served by the main process only and OTLP/gRPC by
    the extra one only, so the two kinds of sender never share an event loop."""
    config = "receivers:\n  separate_grpc: true\n"
    with serve("--workers", "2", config=config) as processor:
        connections = Connections()
        try:
            grpc_senders = [connections.open(processor, "grpc") for _ in range(4)]
            http_senders = [connections.open(processor, "http") for _ in range(4)]
            body = make_request(3)
            for send in grpc_senders:
                send(body)
                send(body)
            for send in http_senders:
                send(body)
        finally:
            connections.close()
        counts = per_process(processor)
        assert counts == {"0": 4.0, "1": 8.0}, counts  # HTTP only on 0, gRPC only on 1
        assert processor.metric_sum("otel_impact_receiver_requests_total", transport="grpc", outcome="accepted") == 8
        assert processor.metric_sum("otel_impact_receiver_requests_total", transport="http/protobuf") == 4


def test_separate_grpc_needs_two_processes() -> None:
    done = subprocess.run(
        [CLI, "check-config", "/dev/stdin"], input="receivers:\n  separate_grpc: true\n", capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "receivers.separate_grpc: needs both receivers and at least 2 intake processes" in done.stderr
    assert "set receivers.processes (or serve --workers) to 2 or more" in done.stderr
