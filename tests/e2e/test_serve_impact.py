"""End to end: instrumented spans → `otel-impact serve` → impact answers, SLO alerts, report, /metrics."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from support.canaries import CANARIES, assert_no_canary
from support.otlp_sink import OtlpSink
from support.processor import CLI, Processor, get_json, get_status, serve
from support.webhook import WebhookSink

import otel_impact

TIERS = ("free", "pro", "enterprise")
CUSTOMERS_PER_TIER = 60
CONFIG = """
sli:
  dimensions:
    - {{name: tier, attribute: impact.customer.tier}}
    - {{name: new_checkout, flag: new_checkout}}
slos:
  - name: checkout-availability
    task: checkout
    by: [tier]
    objective: 99
    window: 30d
    team: payments
    route: payments-pager
alerting:
  evaluation_interval: 1s
  webhooks:
    - url: {webhook}
"""


def customers() -> Iterator[tuple[str, str, str]]:
    """(customer, tier, variant): the canaries are pro customers on the failing variant."""
    for tier in TIERS:
        for i in range(CUSTOMERS_PER_TIER):
            customer = CANARIES[i] if tier == "pro" and i < len(CANARIES) else f"{tier}-customer-{i}"
            yield customer, tier, "on" if i % 2 == 0 else "off"


def send_checkouts(processor: Processor) -> None:
    provider = TracerProvider(resource=Resource({"service.name": "checkout"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=processor.grpc_endpoint, insecure=True)))
    otel_impact.configure(provider)
    tracer = provider.get_tracer("test")
    for customer, tier, variant in customers():
        for _ in range(2):
            with tracer.start_as_current_span("POST /checkout"):
                otel_impact.set_customer(customer, tier=tier)
                otel_impact.set_feature_flag("new_checkout", variant)
                with otel_impact.user_task("checkout", value=25.0, tracer_provider=provider) as task:
                    if tier == "pro" and variant == "on":
                        task.fail("payment_declined")
    assert provider.force_flush()
    provider.shutdown()


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[Processor, WebhookSink]]:
    with WebhookSink() as webhook, serve(config=CONFIG.format(webhook=webhook.url)) as processor:
        yield processor, webhook


def test_impacted_users_by_tier(running: tuple[Processor, WebhookSink], hash_key: str) -> None:
    processor, _ = running
    send_checkouts(processor)
    expected_total = 2 * CUSTOMERS_PER_TIER * len(TIERS)
    processor.wait_for(
        lambda: get_json(processor, "/api/v1/impact?task=checkout&window=5m")["events"]["total"] == expected_total,
        what=f"{expected_total} checkout events",
    )
    answer = get_json(processor, "/api/v1/impact?task=checkout&window=5m&by=tier")
    by_tier = {segment["segment"]["tier"]: segment for segment in answer["segments"]}
    failing_pro = CUSTOMERS_PER_TIER // 2
    assert by_tier["pro"]["events"] == {"total": 120, "good": 60, "bad": 60}
    assert by_tier["free"]["events"]["bad"] == by_tier["enterprise"]["events"]["bad"] == 0
    impacted = by_tier["pro"]["impacted_users"]
    assert impacted["estimate"] == pytest.approx(failing_pro, abs=1)
    assert by_tier["pro"]["revenue_at_risk"] == pytest.approx(60 * 25.0)
    # The processor started moments ago: a 5-minute window reaches back before its state began,
    # so the answer says it may be missing data and gives lower bounds only.
    assert answer["telemetry"]["complete"] is False
    assert "covers only" in answer["telemetry"]["reason"]
    assert impacted["lower"] <= failing_pro and impacted["upper"] is None

    by_variant = get_json(processor, "/api/v1/impact?task=checkout&window=5m&by=flag:new_checkout")
    bad = {s["segment"]["new_checkout"]: s["events"]["bad"] for s in by_variant["segments"]}
    assert bad == {"on": 60, "off": 0}

    top = get_json(processor, "/api/v1/customers/top?task=checkout&window=5m")
    assert len(top["customers"]) > 0 and all(len(c["customer"]) == 32 for c in top["customers"])

    report = subprocess.run(
        [CLI, "report", "--admin", processor.admin_url, "--task", "checkout", "--window", "5m", "--by", "tier"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert report.returncode == 0, report.stderr
    pro_line = next(line for line in report.stdout.splitlines() if line.startswith("tier=pro"))
    assert "120" in pro_line and "60" in pro_line

    metrics = processor.metrics()
    assert metrics['impact_task_events_total{new_checkout="on",outcome="bad",task="checkout",tier="pro"}'] == 60


def test_slo_pages_for_the_failing_tier_and_the_webhook_hears_it(running: tuple[Processor, WebhookSink]) -> None:
    processor, webhook = running

    def alerts(bodies: list[Any]) -> list[dict[str, Any]]:
        return [alert for body in bodies for alert in body["alerts"]]

    def paging(bodies: list[Any]) -> bool:
        return any(a["status"] == "firing" and a["labels"].get("tier") == "pro" for a in alerts(bodies))

    alert = next(a for a in alerts(webhook.wait_for(paging)) if a["status"] == "firing")
    assert alert["labels"]["severity"] == "page" and alert["labels"]["slo"] == "checkout-availability"
    assert alert["labels"]["team"] == "payments" and alert["labels"]["route"] == "payments-pager"
    # 30 impacted pro customers are a lower bound (the processor is younger than the window), so
    # the score (pro weight 3 x 30 users + 0.1 x 1,500 at risk = 240) is a floor: SEV2 or worse.
    assert alert["labels"]["impact_severity"] in ("SEV1", "SEV2")
    assert alert["impact"]["impacted_users"]["upper"] is None
    processor.wait_for(
        lambda: processor.metric_sum("otel_impact_alert_notifications_total", outcome="sent") >= 1,
        what="the delivery counted on /metrics",
    )
    assert processor.metric_sum("otel_impact_slo_evaluations_total") >= 1
    slos = get_json(processor, "/api/v1/slos")["slos"]
    (slo,) = slos
    states = {segment["segment"]["tier"]: segment["alert"]["state"] for segment in slo["segments"]}
    assert states == {"pro": "page", "free": "ok", "enterprise": "ok"}


def test_no_raw_id_in_answers_logs_or_alerts(running: tuple[Processor, WebhookSink]) -> None:
    processor, webhook = running
    for path in (
        "/api/v1/impact?task=checkout&window=5m",
        "/api/v1/customers/top?task=checkout&window=5m",
        "/api/v1/slos",
        "/metrics",
    ):
        with urllib.request.urlopen(processor.admin_url + path, timeout=10) as response:
            assert_no_canary(response.read(), where=path)
    assert_no_canary(json.dumps(webhook.received()).encode(), where="alerts")
    assert_no_canary(processor.log().encode(), where="the processor's log")


def test_sli_switched_off_forwards_without_analysis(hash_key: str) -> None:
    with OtlpSink() as downstream:
        forward = f"grpc://127.0.0.1:{downstream.grpc_port}"
        with serve("--forward", forward, config="sli: {enabled: false}\n") as processor:
            send_checkouts(processor)
            spans = 3 * 2 * 2 * CUSTOMERS_PER_TIER  # a server span and a task span per checkout
            assert len(downstream.wait_for_spans(spans)) == spans
            status, body = get_status(processor, "/api/v1/impact?task=checkout&window=5m")
    assert status == 400 and "unknown task" in body["error"]  # no task was ever analyzed


@pytest.mark.parametrize("scheme", ["grpc", "http"])
def test_derived_series_go_downstream_as_otlp_metrics(hash_key: str, scheme: str) -> None:
    with OtlpSink() as downstream:
        port = downstream.grpc_port if scheme == "grpc" else downstream.http_port
        config = "sli:\n  otlp_metrics_interval: 1s\n  dimensions: [{name: tier, attribute: impact.customer.tier}]\n"
        with serve("--forward", f"{scheme}://127.0.0.1:{port}", config=config) as processor:
            send_checkouts(processor)
            processor.wait_for(
                lambda: _bad_events(downstream) == 60, what="the bad pro checkouts in an OTLP metrics export"
            )
            assert processor.metric_sum("otel_impact_metrics_exports_total", outcome="ok") >= 1
    request = ExportMetricsServiceRequest.FromString(downstream.metric_requests()[-1].body)
    names = {metric.name for metric in request.resource_metrics[0].scope_metrics[0].metrics}
    assert {"impact.task.events", "impact.task.duration", "impact.task.revenue_at_risk"} <= names
    duration = next(m for m in request.resource_metrics[0].scope_metrics[0].metrics if m.name == "impact.task.duration")
    assert duration.WhichOneof("data") == "exponential_histogram"


def _bad_events(downstream: OtlpSink) -> float:
    requests = downstream.metric_requests()
    if not requests:
        return -1
    request = ExportMetricsServiceRequest.FromString(requests[-1].body)
    total = 0.0
    for metric in request.resource_metrics[0].scope_metrics[0].metrics:
        if metric.name == "impact.task.events":
            for point in metric.sum.data_points:
                labels = {kv.key: kv.value.string_value for kv in point.attributes}
                if labels.get("outcome") == "bad" and labels.get("tier") == "pro":
                    total += point.as_int
    return total
