"""Per request: account, rewrite raw identities when configured, analyze, enqueue for export.

May import the foundations (``accounting``, ``batch``, ``clock``, ``config``), ``export`` and
``otel_impact.proto``; never ``intake``, ``sli``, ``slo`` or ``api``.
"""

from otel_impact.processors.pipeline.pipeline import Pipeline, Rejection

__all__ = ["Pipeline", "Rejection"]
