"""Sending the SLI engine's derived series downstream as OTLP metrics (``sli.otlp_metrics_interval``).

Every interval, the engine's state becomes one ``ExportMetricsServiceRequest`` (cumulative sums
and exponential histograms for latency; see ``sli.otlp_metrics``) sent to each configured
downstream, over the same transport, TLS and headers as its traces, to the metrics service or
``/v1/metrics``. Sums are cumulative, so an export that fails loses nothing the next one does
not carry: a failure is counted and logged, not retried or queued.

``otel_impact_metrics_exports_total{exporter, outcome}`` counts exports (``ok`` or ``failed``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from otel_impact.processors.config import ExporterConfig
from otel_impact.processors.export import DownstreamClient, make_client
from otel_impact.processors.periodic import Periodic

logger = logging.getLogger("otel_impact.processor")


class MetricsExport(Collector):
    """A service component that exports ``build()`` to every downstream every ``interval`` seconds.

    It is also the Prometheus collector of its own counters.
    """

    name = "otlp metrics export"

    def __init__(self, exporters: Sequence[ExporterConfig], build: Callable[[], bytes], interval: float) -> None:
        self.exporters = tuple(exporters)
        self.build = build
        self.interval = interval
        self.counts: dict[tuple[str, str], int] = {}
        self._clients: list[tuple[str, DownstreamClient]] = []
        self._failing: set[str] = set()
        self._loop = Periodic("OTLP metrics export", interval, self.export_once)

    async def start(self) -> None:
        self._clients = [(e.name, make_client(e, "metrics")) for e in self.exporters]
        if self._clients:
            self._loop.start()

    async def export_once(self) -> None:
        """Build the request once and send it to every downstream; never raises."""
        try:
            body = self.build()
        except Exception:
            logger.exception("otel-impact: building the OTLP metrics failed; none sent this time")
            return
        for name, client in self._clients:
            outcome = await client.export(body)
            result = "ok" if outcome.ok else "failed"
            self.counts[(name, result)] = self.counts.get((name, result), 0) + 1
            if outcome.ok:
                if name in self._failing:
                    self._failing.discard(name)
                    logger.info("otel-impact: OTLP metrics export to %s works again", name)
            elif name not in self._failing:
                self._failing.add(name)
                logger.warning(
                    "otel-impact: OTLP metrics export to %s failed (%s: %s); the next export carries the same sums",
                    name,
                    outcome.reason,
                    outcome.message,
                )

    async def stop(self) -> None:
        await self._loop.stop()
        for _, client in self._clients:
            await client.close()
        self._clients = []

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        exports = CounterMetricFamily(
            "otel_impact_metrics_exports", "OTLP metrics exports by downstream.", labels=["exporter", "outcome"]
        )
        for (name, outcome), count in sorted(self.counts.items()):
            exports.add_metric([name, outcome], count)
        yield exports
