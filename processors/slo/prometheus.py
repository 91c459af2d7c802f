"""The SLO engine's own health on ``/metrics``: evaluations and alert delivery per receiver.

============================================== ======= ==========================================
series                                         type    meaning
============================================== ======= ==========================================
``otel_impact_slo_evaluations_total``          counter evaluation passes over every SLO
``otel_impact_slo_evaluation_errors_total``    counter SLOs whose evaluation failed (logged)
``otel_impact_alert_notifications_total``      counter notifications by ``receiver`` and ``outcome``:
                                                       sent, failed (retries exhausted), rejected
                                                       (4xx), superseded (a newer state replaced
                                                       it in the queue), dropped_overflow
``otel_impact_alert_retries_total``            counter HTTP retries by ``receiver``
``otel_impact_alert_queue``                    gauge   notifications waiting, by ``receiver``
============================================== ======= ==========================================
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .engine import SloEngine

OUTCOMES = ("sent", "failed", "rejected", "superseded", "dropped_overflow")


class SloCollector(Collector):
    """Reads `SloEngine` and its dispatcher at scrape time."""

    def __init__(self, engine: SloEngine) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        engine = self.engine
        yield CounterMetricFamily(
            "otel_impact_slo_evaluations", "Evaluation passes over every SLO.", value=engine.evaluations
        )
        yield CounterMetricFamily(
            "otel_impact_slo_evaluation_errors", "SLO evaluations that failed.", value=engine.evaluation_errors
        )
        notifications = CounterMetricFamily(
            "otel_impact_alert_notifications", "Alert notifications by outcome.", labels=["receiver", "outcome"]
        )
        retries = CounterMetricFamily("otel_impact_alert_retries", "Alert delivery retries.", labels=["receiver"])
        queued = GaugeMetricFamily("otel_impact_alert_queue", "Alert notifications waiting.", labels=["receiver"])
        stats = engine.dispatcher.stats() if engine.dispatcher is not None else {}
        for receiver, counts in stats.items():
            for outcome in OUTCOMES:
                notifications.add_metric([receiver, outcome], counts.get(outcome, 0))
            retries.add_metric([receiver], counts.get("retries", 0))
            queued.add_metric([receiver], counts.get("queued", 0))
        yield notifications
        yield retries
        yield queued
