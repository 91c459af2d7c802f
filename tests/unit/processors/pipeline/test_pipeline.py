"""The pipeline in one process with scripted downstream clients: all-or-nothing, accounting, hooks.

The downstream clients here are test doubles (the delivery acceptance tests in test_serve.py run
the real processor against a real OTLP receiver); they make every outcome reproducible.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import CollectorRegistry
from support.canaries import CANARY_EMAIL, TEST_KEY_HEX, assert_no_canary
from support.otlp_requests import ids_of, make_request

from otel_impact import HashKey, Pseudonymizer
from otel_impact.processors.accounting import Accounting
from otel_impact.processors.batch import TraceBatch
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.config import ExporterConfig, QueueConfig, RetryConfig
from otel_impact.processors.export import Forwarder, Outcome, SendQueue
from otel_impact.processors.pipeline import Pipeline
from otel_impact.processors.pipeline.identity import IdentityRewriter


class ScriptedClient:
    """Answers each export with the next outcome of ``script`` (then success), recording bodies."""

    def __init__(self, *script: Outcome) -> None:
        self.script = list(script)
        self.bodies: list[bytes] = []

    async def export(self, body: bytes) -> Outcome:
        self.bodies.append(body)
        return self.script.pop(0) if self.script else Outcome(ok=True)

    async def close(self) -> None:
        pass


def value(accounting: Accounting, name: str, **labels: str) -> float:
    return accounting.registry.get_sample_value(name, labels) or 0.0


def assert_books_balance(accounting: Accounting, exporter: str) -> None:
    accepted = sum(value(accounting, "otel_impact_receiver_spans_total", transport=t, outcome="accepted")
                   for t in ("grpc", "http/protobuf", "http/json"))  # fmt: skip
    dropped = sum(
        value(accounting, "otel_impact_exporter_dropped_spans_total", exporter=exporter, reason=reason)
        for reason in ("permanent_error", "max_elapsed_time", "shutdown")
    )
    sent = value(accounting, "otel_impact_exporter_sent_spans_total", exporter=exporter)
    queued = value(accounting, "otel_impact_queue_spans", exporter=exporter)
    restored = value(accounting, "otel_impact_queue_restored_spans_total", exporter=exporter)
    assert accepted + restored == sent + dropped + queued, (accepted, restored, sent, dropped, queued)


def run(
    clients: list[ScriptedClient], body: Callable[[Pipeline, list[Forwarder]], Awaitable[None]], **queue: int
) -> Accounting:
    accounting = Accounting(CollectorRegistry())
    clock = ManualClock()

    async def scenario() -> None:
        forwarders = []
        for index, client in enumerate(clients):
            config = ExporterConfig(
                endpoint=f"grpc://downstream-{index}:4317",
                retry=RetryConfig(initial_interval=0.001, max_interval=0.002, max_elapsed_time=5),
                queue=QueueConfig(**{"consumers": 1, **queue}),
            )
            queue_config = config.queue
            forwarder = Forwarder(
                config, SendQueue(queue_config.max_requests, queue_config.max_bytes), client, accounting, clock
            )
            forwarder.start()
            forwarders.append(forwarder)
        pipeline = Pipeline(forwarders, accounting, clock)
        pipeline.accepting = True
        await body(pipeline, forwarders)
        for forwarder in forwarders:
            await forwarder.drain(clock.monotonic() + 5)
            await forwarder.abort()

    asyncio.run(scenario())
    return accounting


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.005)


def test_every_span_is_accounted_for_whatever_the_downstream_says() -> None:
    client = ScriptedClient(
        Outcome(ok=False, retryable=True, reason="UNAVAILABLE"),  # retried,
        Outcome(ok=True),  # then delivered
        Outcome(ok=False, retryable=False, reason="INVALID_ARGUMENT"),  # dropped for good, counted
        Outcome(ok=True, rejected_spans=2, message="two bad spans"),  # partial success: sent, counted
    )

    async def body(pipeline: Pipeline, forwarders: list[Forwarder]) -> None:
        for spans in (3, 4, 5, 6):
            assert pipeline.submit(make_request(spans), "grpc") is None
            await settle()
        assert pipeline.submit(b"\xff\xff not protobuf", "grpc") is not None
        assert_books_balance(pipeline.accounting, forwarders[0].name)

    accounting = run([client], body, max_batch_bytes=0)
    name = "grpc://downstream-0:4317"
    assert value(accounting, "otel_impact_exporter_sent_spans_total", exporter=name) == 3 + 5 + 6
    assert value(accounting, "otel_impact_exporter_dropped_spans_total", exporter=name, reason="permanent_error") == 4
    assert value(accounting, "otel_impact_exporter_retried_spans_total", exporter=name) == 3
    assert value(accounting, "otel_impact_exporter_partial_success_rejected_spans_total", exporter=name) == 2
    assert value(accounting, "otel_impact_receiver_rejected_requests_total", transport="grpc", reason="invalid") == 1
    assert_books_balance(accounting, name)


def test_a_full_queue_rejects_the_whole_request_for_every_downstream() -> None:
    slow, fast = ScriptedClient(), ScriptedClient()
    outcomes: list[str | None] = []

    async def body(pipeline: Pipeline, forwarders: list[Forwarder]) -> None:
        blocked = asyncio.Event()

        async def stuck(data: bytes) -> Outcome:
            await blocked.wait()
            return Outcome(ok=True)

        slow.export = stuck  # type: ignore[method-assign]
        for _ in range(3):
            rejection = pipeline.submit(make_request(2), "http/protobuf")
            outcomes.append(None if rejection is None else rejection.reason)
            await settle()
        assert [f.queue.requests for f in forwarders] == [2, 0]  # the fast one got the accepted two only
        blocked.set()

    accounting = run([slow, fast], body, max_requests=2)
    assert outcomes == [None, None, "queue_full"]
    assert sum(len(ids_of(b)) for b in fast.bodies) == 4
    labels = {"transport": "http/protobuf", "reason": "queue_full"}
    assert value(accounting, "otel_impact_receiver_rejected_spans_total", **labels) == 2


def test_consecutive_requests_are_merged_into_one_downstream_request() -> None:
    client = ScriptedClient()
    sent: list[bytes] = []

    async def body(pipeline: Pipeline, forwarders: list[Forwarder]) -> None:
        hold = asyncio.Event()
        original = client.export

        async def first_waits(data: bytes) -> Outcome:
            if not sent:
                sent.append(data)
                await hold.wait()
            return await original(data)

        client.export = first_waits  # type: ignore[method-assign]
        requests = [make_request(n) for n in (1, 2, 3, 4)]
        assert pipeline.submit(requests[0], "grpc") is None
        await settle()  # the consumer took the first and waits for its answer
        for request in requests[1:]:
            assert pipeline.submit(request, "grpc") is None
        await settle()
        hold.set()
        await settle()
        sent.extend(requests)

    run([client], body)
    assert [len(ids_of(b)) for b in client.bodies] == [1, 2 + 3 + 4]  # three merged while the first was in flight
    merged = ExportTraceServiceRequest.FromString(client.bodies[1])
    assert len(merged.resource_spans) == 3  # concatenation merges the repeated fields


def test_retries_stop_at_max_elapsed_time_and_the_drop_is_counted() -> None:
    clock_holder: list[ManualClock] = []

    class AlwaysUnavailable(ScriptedClient):
        async def export(self, body: bytes) -> Outcome:
            self.bodies.append(body)
            clock_holder[0].advance(2.0)  # each attempt takes two (simulated) seconds
            return Outcome(ok=False, retryable=True, reason="UNAVAILABLE")

    client = AlwaysUnavailable()

    async def body(pipeline: Pipeline, forwarders: list[Forwarder]) -> None:
        clock_holder.append(pipeline.clock)  # type: ignore[arg-type]
        assert pipeline.submit(make_request(6), "grpc") is None
        for _ in range(100):
            await asyncio.sleep(0.005)
            if forwarders[0].queue.requests == 0:
                break

    accounting = run([client], body)
    name = "grpc://downstream-0:4317"
    assert value(accounting, "otel_impact_exporter_dropped_spans_total", exporter=name, reason="max_elapsed_time") == 6
    assert len(client.bodies) == 3  # 2 s, 4 s, then a retry would pass the 5 s limit
    assert_books_balance(accounting, name)


def test_a_permanent_error_on_a_merged_call_drops_only_the_refused_request() -> None:
    refused = Outcome(ok=False, retryable=False, reason="INVALID_ARGUMENT")
    client = ScriptedClient(refused, Outcome(ok=True), refused, Outcome(ok=True))

    async def body(pipeline: Pipeline, forwarders: list[Forwarder]) -> None:
        for spans in (1, 2, 3):  # queued before the consumer runs: merged into one call
            assert pipeline.submit(make_request(spans), "grpc") is None

    accounting = run([client], body)
    name = "grpc://downstream-0:4317"
    assert [len(ids_of(b)) for b in client.bodies] == [6, 1, 2, 3]
    assert value(accounting, "otel_impact_exporter_sent_spans_total", exporter=name) == 1 + 3
    assert value(accounting, "otel_impact_exporter_dropped_spans_total", exporter=name, reason="permanent_error") == 2
    assert_books_balance(accounting, name)


class RecordingAnalyzer:
    name = "recorder"

    def __init__(self) -> None:
        self.batches: list[TraceBatch] = []

    def analyze(self, batch: TraceBatch) -> None:
        self.batches.append(batch)


class BrokenAnalyzer:
    name = "broken"

    def analyze(self, batch: TraceBatch) -> None:
        raise RuntimeError("bug")


def test_analyzers_get_each_queued_batch_and_their_errors_do_not_stop_delivery() -> None:
    client = ScriptedClient()
    recorder = RecordingAnalyzer()

    async def body(pipeline: Pipeline, forwarders: list[Forwarder]) -> None:
        pipeline.add_analyzer(BrokenAnalyzer())
        pipeline.add_analyzer(recorder)
        data = make_request(3)
        assert pipeline.submit(data, "grpc") is None
        assert forwarders[0].queue.requests == 1  # queued before the analyzers ran
        batch = recorder.batches[0]
        assert batch.data is data and batch.span_count == 3 and not batch.rewritten
        assert batch.view.resource_spans[0].scope_spans[0].spans[2].name == "GET /checkout"

    accounting = run([client], body)
    assert value(accounting, "otel_impact_analyzer_errors_total", analyzer="broken") == 1
    assert len(ids_of(client.bodies[0])) == 3


@pytest.fixture
def pseudonymizer() -> Pseudonymizer:
    return Pseudonymizer(HashKey(bytes.fromhex(TEST_KEY_HEX), source="test"))


def test_raw_identities_are_replaced_by_the_sdk_pseudonym(pseudonymizer: Pseudonymizer) -> None:
    client = ScriptedClient()
    rewriter = IdentityRewriter(["enduser.id", "user.id"], pseudonymizer)
    untouched = make_request(2, attributes={"other": "x"})
    raw = make_request(2, attributes={"enduser.id": CANARY_EMAIL, "user.id": 4711})

    async def body(pipeline: Pipeline, forwarders: list[Forwarder]) -> None:
        pipeline.rewriter = rewriter
        assert pipeline.submit(untouched, "grpc") is None
        assert pipeline.submit(raw, "grpc") is None

    accounting = run([client], body, max_batch_bytes=0)
    assert client.bodies[0] is untouched  # the original bytes, not re-encoded
    assert_no_canary(client.bodies[1], where="forwarded request")
    request = ExportTraceServiceRequest.FromString(client.bodies[1])
    for span in request.resource_spans[0].scope_spans[0].spans:
        attributes = {kv.key: kv.value.string_value for kv in span.attributes}
        assert attributes["enduser.id"] == pseudonymizer.pseudonymize(CANARY_EMAIL)
        assert attributes["user.id"] == pseudonymizer.pseudonymize(4711) == pseudonymizer.pseudonymize("4711")
    assert value(accounting, "otel_impact_pseudonymized_requests_total") == 1
    assert value(accounting, "otel_impact_pseudonymized_values_total", action="replaced") == 4
