"""What a worker sends back on its pipe: one `WorkerReport` per round of analysis (pickled)."""

from __future__ import annotations

from dataclasses import dataclass, field

from otel_impact.processors.sli.results import AnalysisResult

__all__ = ["WorkerReport"]


@dataclass(slots=True)
class WorkerReport:
    """The result of analysing every batch up to sequence ``through`` (their ring bytes may go)."""

    through: int
    """The last sequence number analysed: the ring releases every batch up to it."""
    result: AnalysisResult
    unparseable_spans: int = 0
    """Spans of batches in this round that the worker could not parse (not analysed)."""
    batches: int = 0
    """Batches analysed in this round."""
    errors: int = 0
    """Cumulative analysis errors of this worker (spans and batches that failed)."""
    bad_spans: int = 0
    """Cumulative spans whose analysis failed."""
    value_tally: dict[str, int] = field(default_factory=dict)
    """Cumulative values not usable as they were, by kind (`SliAnalyzer.value_tally`)."""
