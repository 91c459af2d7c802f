"""User-task SLIs and impacted-user sketches: the processor's core answer.

`SliEngine` is a `BatchAnalyzer`: it derives, per task x segment x time bucket, good/bad event
counts, exact latency-threshold counts, latency quantiles, distinct and impacted users with
bounds, revenue at risk and the most impacted customers. `SliQueries` answers windows over that
state (the contract the SLO engine builds on); `add_routes` serves it as JSON, `SliCollector`
as Prometheus series, and `build_metrics_request` as an OTLP metrics export.
"""

from .config import DimensionConfig, LossDetectionConfig, SliConfig, SuccessConfig, TaskConfig, TaskMatch, TierConfig
from .engine import SliEngine

__all__ = [
    "DimensionConfig",
    "LossDetectionConfig",
    "SliConfig",
    "SliEngine",
    "SuccessConfig",
    "TaskConfig",
    "TaskMatch",
    "TierConfig",
]
