"""User-task SLIs and impacted-user sketches: the processor's core answer.

`SliEngine` is a `BatchAnalyzer`: it derives, per task x segment x time bucket, good/bad event
counts, exact latency-threshold counts, latency quantiles, distinct and impacted users with
bounds, revenue at risk and the most impacted customers. `SliQueries` answers windows over that
state (`ImpactQueries`, the contract the SLO engine builds on); ``api.sli_routes`` serves it as JSON,
`SliCollector` as Prometheus series, and `build_metrics_request` as an OTLP metrics export.

Inside the engine: ``state.SliState`` (tasks, series, counters), ``analyzer.SliAnalyzer`` (the
per-span hot loop and its bounded caches; ``propagation.EdgeTracker`` finds the service edges
that lose the customer in sampled traces, ``edges.EdgeHistory`` keeps them) and
``store.StateStore`` (SQLite checkpoints of the state as ``state.StateSnapshot`` records).
Modules import one way: config, sketches -> buckets -> aggregates -> tasks -> segments -> state
-> analyzer, store -> engine -> queries -> exports.

Explain ("what do the failing requests have in common"): ``explain_tracking`` collects per-value
failing and passing counts beside the hot loop (``ExplainCollector``) and keeps them in the state
in the sketch tiers (``ExplainTracking``); ``explain`` answers a window with the findings that
are beyond chance (``explain_task``), served by ``api.explain_routes``.

Wiring it into a server takes a few lines::

    config = SliConfig.from_mapping(raw_config.get("sli"))
    engine = SliEngine(config, clock=clock, state_dir=state_dir)   # restores the last checkpoint
    queries = SliQueries(engine)
    api.sli_routes.add_routes(admin_app, queries)                  # /api/v1/impact, /customers/top
    registry.register(SliCollector(queries))                       # /metrics
    pipeline.analyzers.append(engine)                              # analyze(batch) per request
    # every second or so: engine.tick(); at shutdown: engine.close()
"""

from .config import DimensionConfig, LossDetectionConfig, SliConfig, SuccessConfig, TaskConfig, TaskMatch, TierConfig
from .engine import SliEngine
from .otlp_metrics import build_metrics_request
from .prometheus import SliCollector
from .queries import EventCounts, ImpactQueries, SliQueries

__all__ = [
    "DimensionConfig",
    "EventCounts",
    "ImpactQueries",
    "LossDetectionConfig",
    "SliCollector",
    "SliConfig",
    "SliEngine",
    "SliQueries",
    "SuccessConfig",
    "TaskConfig",
    "TaskMatch",
    "TierConfig",
    "build_metrics_request",
]
