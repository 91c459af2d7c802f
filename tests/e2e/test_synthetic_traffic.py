"""Synthetic traffic kept apart, with known truth (issue 15, part 4), end to end.

Real processes only: ``otel-impact serve`` with an SLO per task, fed by the SDK's own OTLP
exporter from this process (explicit API: ``user_task(..., synthetic=True)``, and a prober whose
resource carries ``user_agent.synthetic.type``), and by a Flask app under
``opentelemetry-instrument`` marking requests from ``OTEL_IMPACT_SYNTHETIC_HEADER``.

1. ``checkout``: probes fail 100% while real users all succeed. Real figures, the real SLO's
   budget and ``/metrics``' real series do not move; the synthetic SLI shows every probe failing;
   the dashboard flags a mismatch, synthetic worse.
2. ``cart``, the reverse: real users fail 100% while probes all succeed. The real budget is spent,
   the synthetic SLI is at 100%, and the mismatch is flagged the other way.
3. Zero-code Flask: requests carrying the header end up only in the synthetic SLI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from support.browser import dump_dom
from support.canaries import CANARIES, CANARY_EMAIL, CANARY_NUMBER, TEST_KEY_HEX, assert_no_canary
from support.processes import service
from support.processor import Processor, get_json, get_status, serve
from support.redis_servers import redis_server
from support.zero_code import APPS, INSTRUMENT

import otel_impact
from otel_impact import _runtime

pytestmark = pytest.mark.slow

CONFIG = """
slos:
  - {name: checkout-availability, task: checkout, objective: 99, window: 30d}
  - {name: cart-availability, task: cart, objective: 99, window: 30d}
  - {name: shop-availability, task: shop, objective: 99, window: 30d}
alerting:
  evaluation_interval: 1s
"""
REAL_USERS = 50
REAL_PER_USER = 4
PROBES = 60
PROBER_RESOURCE_PROBES = 20


@pytest.fixture(scope="module")
def processor() -> Iterator[Processor]:
    with serve(config=CONFIG) as running:
        yield running


def provider_for(processor: Processor, resource: dict[str, Any]) -> TracerProvider:
    provider = TracerProvider(resource=Resource(resource))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=processor.grpc_endpoint, insecure=True)))
    otel_impact.configure(provider)
    return provider


def send(
    processor: Processor, task: str, *, users_fail: bool, probes_fail: bool, real: bool = True, synthetic: bool = True
) -> None:
    """``REAL_USERS`` x ``REAL_PER_USER`` real task events, ``PROBES`` synthetic ones marked with
    ``user_task(..., synthetic=True)`` and ``PROBER_RESOURCE_PROBES`` from a prober whose resource
    says ``user_agent.synthetic.type=bot`` (its spans carry no mark of their own)."""
    shop = provider_for(processor, {"service.name": "shop"})
    prober = provider_for(processor, {"service.name": "prober", "user_agent.synthetic.type": "bot"})
    try:
        for index in range(REAL_USERS if real else 0):
            customer = CANARIES[index] if index < len(CANARIES) else f"user-{index}"
            for _ in range(REAL_PER_USER):
                with otel_impact.set_customer(customer, tier="pro"):
                    with otel_impact.user_task(task, value=10.0, tracer_provider=shop) as handle:
                        if users_fail:
                            handle.fail("payment_declined")
        for index in range(PROBES if synthetic else 0):
            with otel_impact.set_customer(f"probe-{index % 3}", tier="probe"):
                with otel_impact.user_task(task, value=10.0, synthetic=True, tracer_provider=shop) as handle:
                    if probes_fail:
                        handle.fail("probe_failed")
        for _ in range(PROBER_RESOURCE_PROBES if synthetic else 0):
            with otel_impact.user_task(task, tracer_provider=prober) as handle:
                if probes_fail:
                    handle.fail("probe_failed")
        assert shop.force_flush() and prober.force_flush()
    finally:
        shop.shutdown()
        prober.shutdown()


def impact(processor: Processor, task: str, traffic: str | None = None) -> Any:
    suffix = "" if traffic is None else f"&traffic={traffic}"
    return get_json(processor, f"/api/v1/impact?task={task}&window=5m{suffix}")


def wait_all_counted(processor: Processor, task: str, real: int, synthetic: int) -> None:
    def counted() -> bool:
        status, body = get_status(processor, f"/api/v1/impact?task={task}&window=5m")
        return status == 200 and body["events"]["total"] >= real and body["synthetic"]["events"]["total"] >= synthetic

    processor.wait_for(counted, timeout=60, what=f"{real} real and {synthetic} synthetic {task} events")


def slo(processor: Processor, name: str, events: int) -> Any:
    """The SLO's last evaluation, once it has seen ``events`` events."""
    found: dict[str, Any] = {}

    def evaluated() -> bool:
        for each in get_json(processor, "/api/v1/slos")["slos"]:
            if each["name"] == name and sum(s["events"]["total"] for s in each.get("segments", [])) >= events:
                found.update(each)
                return True
        return False

    processor.wait_for(evaluated, timeout=60, what=f"{name} evaluated over {events} events")
    return found


def dashboard_synthetic(processor: Processor, task: str) -> Any:
    return get_json(processor, "/api/v1/dashboard?window=5m")["synthetic"][task]


PROBE_TOTAL = PROBES + PROBER_RESOURCE_PROBES
REAL_TOTAL = REAL_USERS * REAL_PER_USER


@pytest.fixture(scope="module")
def fed(processor: Processor) -> Processor:
    """``checkout``: probes fail, users succeed; ``cart``: the reverse. Both counted."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OTEL_IMPACT_HASH_KEY", TEST_KEY_HEX)
        _runtime.reset_runtime()  # built from the key set here
        try:
            send(processor, "checkout", users_fail=False, probes_fail=True)
            send(processor, "cart", users_fail=True, probes_fail=False)
        finally:
            _runtime.reset_runtime()
    wait_all_counted(processor, "checkout", REAL_TOTAL, PROBE_TOTAL)
    wait_all_counted(processor, "cart", REAL_TOTAL, PROBE_TOTAL)
    return processor


def test_probes_failing_while_users_succeed_leave_real_budgets_untouched(fed: Processor) -> None:
    processor = fed

    real = impact(processor, "checkout")
    assert real["traffic"] == "real"
    assert real["events"] == {"total": REAL_TOTAL, "good": REAL_TOTAL, "bad": 0}
    assert real["impacted_users"]["estimate"] == 0 and real["revenue_at_risk"] == 0
    assert all(segment["segment"].get("tier") != "probe" for segment in real["segments"])
    assert real["synthetic"] == {"events": {"total": PROBE_TOTAL, "good": 0, "bad": PROBE_TOTAL}, "success_ratio": 0.0}

    synthetic = impact(processor, "checkout", "synthetic")
    assert synthetic["traffic"] == "synthetic" and synthetic["success_ratio"] == 0.0
    assert synthetic["events"] == {"total": PROBE_TOTAL, "good": 0, "bad": PROBE_TOTAL}
    assert synthetic["revenue_at_risk"] == PROBES * 10.0  # the prober's tasks carry no value

    availability = slo(processor, "checkout-availability", REAL_TOTAL)
    assert availability["budget_remaining"] == 1.0, availability  # not one probe spent budget
    assert availability["alert_state"] == "ok", availability

    board = dashboard_synthetic(processor, "checkout")
    assert board["mismatch"] is True and board["direction"] == "synthetic_worse", board
    assert board["success_ratio"] == 0.0 and board["real_success_ratio"] == 1.0

    metrics = processor.metrics()
    assert processor.metric_sum("impact_task_events_total", task="checkout", outcome="bad") == 0
    assert processor.metric_sum("impact_task_events_total", task="checkout", outcome="good") == REAL_TOTAL
    assert processor.metric_sum("impact_synthetic_task_events_total", task="checkout", outcome="bad") == PROBE_TOTAL
    assert not any(key.startswith("impact_task_events_total") and "probe" in key for key in metrics)
    assert_no_canary(processor.log().encode(), where="the processor's log")


def test_the_reverse_users_failing_while_probes_succeed(fed: Processor) -> None:
    processor = fed

    real = impact(processor, "cart")
    assert real["events"] == {"total": REAL_TOTAL, "good": 0, "bad": REAL_TOTAL}
    assert real["impacted_users"]["estimate"] == pytest.approx(REAL_USERS, abs=1)
    assert real["synthetic"] == {"events": {"total": PROBE_TOTAL, "good": PROBE_TOTAL, "bad": 0}, "success_ratio": 1.0}
    assert impact(processor, "cart", "synthetic")["events"] == {"total": PROBE_TOTAL, "good": PROBE_TOTAL, "bad": 0}

    availability = slo(processor, "cart-availability", REAL_TOTAL)
    assert availability["budget_remaining"] < 0, availability  # every real failure spent budget

    board = dashboard_synthetic(processor, "cart")
    assert board["mismatch"] is True and board["direction"] == "real_worse", board
    assert board["success_ratio"] == 1.0 and board["real_success_ratio"] == 0.0
    # and the first task is still flagged the other way: each task is compared on its own
    assert dashboard_synthetic(processor, "checkout")["direction"] == "synthetic_worse"


def test_a_bad_traffic_value_is_refused_naming_the_parameter(processor: Processor) -> None:
    status, body = get_status(processor, "/api/v1/impact?task=checkout&window=5m&traffic=robots")
    assert status == 400 and "traffic must be one of real, synthetic" in body["error"]


def test_zero_code_flask_synthetic_requests_end_up_only_in_the_synthetic_sli(processor: Processor) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "DJANGO_"))}
    env.update(
        {
            "OTEL_SERVICE_NAME": "shop-zero-code",
            "OTEL_EXPORTER_OTLP_ENDPOINT": processor.grpc_endpoint,
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_IMPACT_HASH_KEY": TEST_KEY_HEX,
            "OTEL_IMPACT_CUSTOMER_HEADER": "X-Customer-Id",
            "OTEL_IMPACT_TASKS": "shop=POST /api/checkout",
            "OTEL_IMPACT_SYNTHETIC_HEADER": "X-Synthetic=true",
            "PYTHONPATH": str(APPS),
            "PYTHONUNBUFFERED": "1",
        }
    )
    real, probes, decoys = 30, 12, 5
    with service("zc_tasks_app.py", env=env, command=INSTRUMENT, inherit_env=False, cwd=APPS) as app:
        url = f"http://127.0.0.1:{app.port}/api/checkout"
        for index in range(real):
            headers = {"X-Customer-Id": (CANARY_EMAIL, CANARY_NUMBER, f"user-{index}")[index % 3]}
            assert requests.post(url, headers=headers, timeout=30).status_code == 200
        for _ in range(probes):  # failing probes, the header's value as configured (name in any case)
            headers = {"x-synthetic": "true", "X-Customer-Id": "probe-1"}
            assert requests.post(f"{url}?status=500", headers=headers, timeout=30).status_code == 500
        for _ in range(decoys):  # another value: real traffic, and it succeeds
            assert requests.post(url, headers={"X-Synthetic": "yes"}, timeout=30).status_code == 200
        wait_all_counted(processor, "shop", real + decoys, probes)
        log = app.log()
    answer = impact(processor, "shop")
    assert answer["events"] == {"total": real + decoys, "good": real + decoys, "bad": 0}
    assert answer["synthetic"]["events"] == {"total": probes, "good": 0, "bad": probes}
    assert impact(processor, "shop", "synthetic")["events"] == {"total": probes, "good": 0, "bad": probes}
    assert slo(processor, "shop-availability", real + decoys)["budget_remaining"] == 1.0
    assert "OTEL_IMPACT_SYNTHETIC_HEADER" not in log  # valid: no configuration problem logged
    assert_no_canary(log.encode(), where="the app's output")


class _Flags(HTMLParser):
    """``data-field``/``data-value`` of each task section's ``div`` elements (warnings and KPIs)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, dict[str, str]] = {}
        self.ready = False
        self._task = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {key: value or "" for key, value in attrs}
        if tag == "body" and found.get("data-ready") == "true":
            self.ready = True
        if tag == "section" and "data-task" in found:
            self._task = found["data-task"]
            self.fields[self._task] = {}
        if tag == "div" and self._task and "data-field" in found:
            self.fields[self._task][found["data-field"]] = found.get("data-value", "")


def test_the_page_flags_each_mismatch_its_way(fed: Processor) -> None:
    """The on-call page in headless Chromium shows both flags, each its way."""
    page = _Flags()
    page.feed(dump_dom(fed.admin_url + "/#window=1h"))
    assert page.ready, "the page did not finish loading its data"
    assert page.fields["checkout"]["synthetic.mismatch"] == "synthetic_worse"
    assert float(page.fields["checkout"]["synthetic.success_ratio"]) == 0.0
    assert page.fields["cart"]["synthetic.mismatch"] == "real_worse"
    assert float(page.fields["cart"]["synthetic.success_ratio"]) == 1.0


def test_replicas_share_the_synthetic_state_under_its_own_prefix() -> None:
    """Probes reach one replica, real users the other; both answer both traffics, from Redis."""
    with (
        redis_server() as redis,
        serve("--shared-state", redis.url, config=CONFIG) as probed,
        serve("--shared-state", redis.url, config=CONFIG) as used,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv("OTEL_IMPACT_HASH_KEY", TEST_KEY_HEX)
        _runtime.reset_runtime()
        try:
            send(probed, "checkout", users_fail=False, probes_fail=True, real=False)
            send(used, "checkout", users_fail=False, probes_fail=True, synthetic=False)
        finally:
            _runtime.reset_runtime()
        for replica in (probed, used):
            wait_all_counted(replica, "checkout", REAL_TOTAL, PROBE_TOTAL)
            real = impact(replica, "checkout")
            assert real["events"] == {"total": REAL_TOTAL, "good": REAL_TOTAL, "bad": 0}
            assert real["synthetic"]["events"] == {"total": PROBE_TOTAL, "good": 0, "bad": PROBE_TOTAL}
            assert impact(replica, "checkout", "synthetic")["events"]["bad"] == PROBE_TOTAL
            assert dashboard_synthetic(replica, "checkout")["direction"] == "synthetic_worse"
        keys = redis.cli("--scan", "--pattern", "*synthetic*")
        assert "{otel-impact:synthetic:t:checkout}" in keys, keys
