"""One /metrics for several intake processes: every series summed, names and labels unchanged."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from otel_impact.processors.accounting import Accounting
from otel_impact.processors.intake_processes.metrics import SummedRegistry, carried_over, take_snapshot


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def busy(accounting: Accounting, spans: int) -> None:
    accounting.new_exporter("down", 10, 1 << 20)
    accounting.received_requests.labels("grpc", "accepted").inc()
    accounting.received_spans.labels("grpc", "accepted").inc(spans)
    accounting.queue_spans.labels("down").set(spans)
    accounting.latency.labels("down").observe(0.003)
    accounting.ready.set(1)


def test_every_series_is_the_sum_and_readiness_is_the_main_one() -> None:
    main, extra = Accounting(), Accounting()
    busy(main, 5)
    busy(extra, 7)
    summed = SummedRegistry(main.registry)
    summed.update(1, take_snapshot(extra.registry))
    got = samples(summed)
    alone = samples(main.registry)
    assert set(got) == set(alone)  # the same names and labels as one process's
    spans = ("otel_impact_receiver_spans_total", (("outcome", "accepted"), ("transport", "grpc")))
    assert got[spans] == 12
    assert got[("otel_impact_queue_spans", (("exporter", "down"),))] == 12
    bucket = ("otel_impact_exporter_request_duration_seconds_bucket", (("exporter", "down"), ("le", "0.005")))
    assert got[bucket] == 2
    assert got[("otel_impact_ready", ())] == 1


def test_a_dead_process_keeps_its_counters_and_loses_its_gauges() -> None:
    main, extra = Accounting(), Accounting()
    busy(main, 5)
    busy(extra, 7)
    summed = SummedRegistry(main.registry)
    summed.update(1, take_snapshot(extra.registry))
    summed.retire(1)
    got = samples(summed)
    assert got[("otel_impact_receiver_spans_total", (("outcome", "accepted"), ("transport", "grpc")))] == 12
    assert got[("otel_impact_queue_spans", (("exporter", "down"),))] == 5
    restarted = Accounting()  # its next life counts from zero
    busy(restarted, 1)
    summed.update(1, take_snapshot(restarted.registry))
    got = samples(summed)
    assert got[("otel_impact_receiver_spans_total", (("outcome", "accepted"), ("transport", "grpc")))] == 13
    assert got[("otel_impact_queue_spans", (("exporter", "down"),))] == 6


def test_a_family_only_an_extra_process_has_is_added() -> None:
    main, extra = CollectorRegistry(), Accounting()
    extra.received_requests.labels("http/protobuf", "accepted").inc(3)
    summed = SummedRegistry(main)
    summed.update(2, take_snapshot(extra.registry))
    key = ("otel_impact_receiver_requests_total", (("outcome", "accepted"), ("transport", "http/protobuf")))
    assert samples(summed)[key] == 3
    assert summed.peer_total(2, "otel_impact_receiver_requests_total") == 3


def test_a_restarted_process_does_not_count_its_replay_as_restored_again() -> None:
    extra = Accounting()
    busy(extra, 4)
    extra.restored_spans.labels("down").inc(4)
    names = {family.name for family in carried_over(take_snapshot(extra.registry))}
    assert "otel_impact_queue_restored_spans" not in names
    assert "otel_impact_receiver_spans" in names and "otel_impact_queue_redelivered_spans" in names
