"""Delivery accounting: every span the processor receives is counted exactly once in one term.

For each downstream exporter ``e``, at any moment::

    received_spans{outcome="accepted"}  + restored_spans{e}
        = sent_spans{e} + dropped_spans{e} + queue_spans{e}

and ``received_spans`` = accepted + rejected (rejected-to-sender, who keeps and retries them).
``restored`` is what a persistent queue found on disk at start; ``dropped`` is data given up
*explicitly* (a downstream refused it permanently, retries ran past ``max_elapsed_time``, the
drain deadline passed without a persistent queue, or a queue file was corrupt at start), by
reason. A corrupt file's spans were accepted in an earlier run: they count as restored and as
dropped with reason ``corrupt_file`` (as far as its header tells; a file whose header is
unreadable counts as one dropped request with 0 spans). A write the persistent queue could not
make rejects the request to the sender (``storage_error``), so a full disk leaves the books.
Nothing else leaves the books. Requests are counted alongside spans; a request whose body
cannot be parsed is rejected before its spans are known, so it counts as a request only.

All metric names start with ``otel_impact_``. The registry is injected (a fresh
``CollectorRegistry`` per service), so tests and several services in one process do not mix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DROP_REASONS = ("permanent_error", "max_elapsed_time", "shutdown", "corrupt_file")
"""The ``reason`` values of ``otel_impact_exporter_dropped_spans`` and ``_requests``."""
CLOSE_REASONS = ("max_connections", "read_header_timeout", "read_timeout")
"""The ``reason`` values of ``otel_impact_server_closed_connections``: why a server's limits closed a connection."""


class StorageErrors(Collector):
    """``otel_impact_queue_storage_errors_total{exporter,reason}``, read from each persistent queue's tally.

    A queue counts its failed writes in a plain mapping with fixed keys (no Prometheus inside the
    queue); the scrape copies it. Each failed write made a request fail: its sender was told to
    retry (``storage_error``), so these are not losses.
    """

    NAME = "otel_impact_queue_storage_errors"
    DOCUMENTATION = "Writes the persistent queue could not make (the sender was told to retry), by reason."

    def __init__(self, registry: CollectorRegistry) -> None:
        self._tallies: dict[str, Mapping[str, int]] = {}
        registry.register(self)

    def watch(self, exporter: str, tally: Mapping[str, int]) -> None:
        """Expose ``tally`` (reason → failed writes, keys fixed) for ``exporter``."""
        self._tallies = {**self._tallies, exporter: tally}

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self.NAME, self.DOCUMENTATION, labels=("exporter", "reason"))]

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self.NAME, self.DOCUMENTATION, labels=("exporter", "reason"))
        for exporter, tally in self._tallies.items():
            for reason, count in dict(tally).items():
                family.add_metric((exporter, reason), count)
        return [family]


class AnalyzerValues(Collector):
    """``otel_impact_analyzer_values_total{analyzer,kind}``: values an analyzer read but could not
    use as they were (too long to remember, cut, or not decodable), from each analyzer's tally.

    An analyzer keeps plain integers (no Prometheus in its hot loop); the scrape calls its
    ``value_tally()``, whose keys are fixed.
    """

    NAME = "otel_impact_analyzer_values"
    DOCUMENTATION = "Span values an analyzer could not use as they were (oversized or invalid), by kind."

    def __init__(self, registry: CollectorRegistry) -> None:
        self._tallies: dict[str, Callable[[], Mapping[str, int]]] = {}
        registry.register(self)

    def watch(self, analyzer: str, tally: Callable[[], Mapping[str, int]]) -> None:
        """Expose ``tally()`` (kind → values, keys fixed) for ``analyzer``."""
        self._tallies = {**self._tallies, analyzer: tally}

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self.NAME, self.DOCUMENTATION, labels=("analyzer", "kind"))]

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self.NAME, self.DOCUMENTATION, labels=("analyzer", "kind"))
        for analyzer, tally in self._tallies.items():
            for kind, count in dict(tally()).items():
                family.add_metric((analyzer, kind), count)
        return [family]


class Accounting:
    """The processor's own metrics. One instance per service."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received_requests = Counter(
            "otel_impact_receiver_requests",
            "Export requests received, by transport and outcome (accepted or rejected to the sender).",
            ["transport", "outcome"],
            registry=r,
        )
        self.received_spans = Counter(
            "otel_impact_receiver_spans",
            "Spans received in parseable requests, by transport and outcome.",
            ["transport", "outcome"],
            registry=r,
        )
        self.rejected_requests = Counter(
            "otel_impact_receiver_rejected_requests",
            "Requests rejected to the sender, by reason (the sender keeps the data).",
            ["transport", "reason"],
            registry=r,
        )
        self.rejected_spans = Counter(
            "otel_impact_receiver_rejected_spans",
            "Spans rejected to the sender, by reason (0 when the body could not be parsed).",
            ["transport", "reason"],
            registry=r,
        )
        self.cors_refused_preflights = Counter(
            "otel_impact_receiver_cors_refused_preflights",
            "CORS preflights the OTLP/HTTP receiver refused (no CORS headers: the browser does not send "
            "the export), by reason (origin, method, headers).",
            ["reason"],
            registry=r,
        )
        self.rewritten_requests = Counter(
            "otel_impact_pseudonymized_requests",
            "Requests re-encoded because raw identity attributes were pseudonymized.",
            registry=r,
        )
        self.pseudonymized_values = Counter(
            "otel_impact_pseudonymized_values",
            "Raw identity attribute values replaced by their keyed pseudonym (or removed if unusable).",
            ["action"],
            registry=r,
        )
        self.sent_requests = Counter(
            "otel_impact_exporter_sent_requests",
            "Downstream export requests that succeeded (possibly several received requests merged).",
            ["exporter"],
            registry=r,
        )
        self.sent_spans = Counter(
            "otel_impact_exporter_sent_spans", "Spans delivered to the downstream.", ["exporter"], registry=r
        )
        self.failed_attempts = Counter(
            "otel_impact_exporter_failed_attempts",
            "Downstream attempts that failed, by kind (retryable or permanent).",
            ["exporter", "kind"],
            registry=r,
        )
        self.retried_requests = Counter(
            "otel_impact_exporter_retried_requests", "Downstream requests sent again.", ["exporter"], registry=r
        )
        self.retried_spans = Counter(
            "otel_impact_exporter_retried_spans", "Spans in downstream requests sent again.", ["exporter"], registry=r
        )
        self.dropped_spans = Counter(
            "otel_impact_exporter_dropped_spans",
            "Spans given up explicitly, by reason: permanent_error, max_elapsed_time, shutdown, corrupt_file.",
            ["exporter", "reason"],
            registry=r,
        )
        self.dropped_requests = Counter(
            "otel_impact_exporter_dropped_requests",
            "Received requests given up explicitly, by reason.",
            ["exporter", "reason"],
            registry=r,
        )
        self.partial_success_responses = Counter(
            "otel_impact_exporter_partial_success_responses",
            "Downstream responses carrying partial_success (rejections or a warning).",
            ["exporter"],
            registry=r,
        )
        self.partial_success_rejected_spans = Counter(
            "otel_impact_exporter_partial_success_rejected_spans",
            "Spans a downstream reported as rejected in partial_success (counted as sent: not retried, per OTLP).",
            ["exporter"],
            registry=r,
        )
        self.latency = Histogram(
            "otel_impact_exporter_request_duration_seconds",
            "Time of one downstream export attempt.",
            ["exporter"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_spans = Gauge(
            "otel_impact_queue_spans", "Spans queued for the downstream, in flight included.", ["exporter"], registry=r
        )
        self.queue_requests = Gauge(
            "otel_impact_queue_requests", "Received requests queued for the downstream.", ["exporter"], registry=r
        )
        self.queue_bytes = Gauge(
            "otel_impact_queue_bytes", "Bytes queued for the downstream.", ["exporter"], registry=r
        )
        self.queue_capacity_bytes = Gauge(
            "otel_impact_queue_capacity_bytes", "The queue's byte bound.", ["exporter"], registry=r
        )
        self.queue_capacity_requests = Gauge(
            "otel_impact_queue_capacity_requests", "The queue's request-count bound.", ["exporter"], registry=r
        )
        self.restored_spans = Counter(
            "otel_impact_queue_restored_spans",
            "Spans a persistent queue found on disk at start (those of corrupt files are also counted as dropped).",
            ["exporter"],
            registry=r,
        )
        self.redelivered_spans = Counter(
            "otel_impact_queue_redelivered_spans",
            "Restored spans that had been sent before the restart without an acknowledgement: possible duplicates.",
            ["exporter"],
            registry=r,
        )
        self.corrupt_files = Counter(
            "otel_impact_queue_corrupt_files",
            "Persistent queue files found corrupt at start and moved aside; each was an acknowledged request, lost.",
            ["exporter"],
            registry=r,
        )
        self.storage_errors = StorageErrors(r)
        self.analyzer_errors = Counter(
            "otel_impact_analyzer_errors", "Exceptions raised by batch analyzers.", ["analyzer"], registry=r
        )
        self.closed_connections = Counter(
            "otel_impact_server_closed_connections",
            "Connections a server closed to protect itself, by server (otlp_http, admin) and reason "
            "(max_connections, read_header_timeout, read_timeout).",
            ["server", "reason"],
            registry=r,
        )
        for server in ("otlp_http", "admin"):
            for reason in CLOSE_REASONS:
                self.closed_connections.labels(server, reason)
        self.analyzer_values = AnalyzerValues(r)
        self.ready = Gauge("otel_impact_ready", "1 when the processor accepts data.", registry=r)

    def new_exporter(self, name: str, max_requests: int, max_bytes: int) -> None:
        """Create the exporter's series at zero, so they show before the first event."""
        for counter in (self.sent_requests, self.sent_spans, self.retried_requests, self.retried_spans):
            counter.labels(name)
        for counter in (self.partial_success_responses, self.partial_success_rejected_spans):
            counter.labels(name)
        for counter in (self.restored_spans, self.redelivered_spans):
            counter.labels(name)
        self.corrupt_files.labels(name)
        for reason in DROP_REASONS:
            self.dropped_spans.labels(name, reason)
            self.dropped_requests.labels(name, reason)
        self.queue_capacity_bytes.labels(name).set(max_bytes)
        self.queue_capacity_requests.labels(name).set(max_requests)
        self.queue_spans.labels(name).set(0)
        self.queue_requests.labels(name).set(0)
        self.queue_bytes.labels(name).set(0)
