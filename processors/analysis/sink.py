"""Where analysis results go: `ResultSink`, and its two implementations.

An `AnalysisPool` (or an analyzer on the event loop) hands every result to a sink:

* `EngineSink` folds it into the `SliEngine` the answers come from (`SliState.apply`, the one
  merge path), in the process that serves the admin API;
* `RelaySink` pickles it onto a pipe to that process, from an extra intake process
  (``serve --workers N``); the receiving side hands each message to its own `EngineSink` with
  `deliver`, so a relayed result is folded exactly as a local one.

A relay coalesces what one turn of the event loop produced into one pipe write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from otel_impact.processors.batch import TraceBatch
from otel_impact.processors.sli.engine import SliEngine
from otel_impact.processors.sli.results import AnalysisResult

__all__ = ["AnalyzerCounts", "EngineSink", "LoopAnalyzer", "RelaySink", "ResultSink", "Unanalysed", "deliver"]

logger = logging.getLogger("otel_impact.processor")


@dataclass(frozen=True, slots=True)
class AnalyzerCounts:
    """Counts of analysis done elsewhere, for `SliAnalyzer.absorb`: ``errors``, ``bad_spans`` and
    ``batches`` are increments; ``value_tally`` is the analysing side's cumulative tally and
    ``previous_tally`` the one it reported before (the increment is their difference)."""

    errors: int = 0
    bad_spans: int = 0
    batches: int = 0
    value_tally: dict[str, int] | None = None
    previous_tally: dict[str, int] | None = None


@dataclass(frozen=True, slots=True)
class Unanalysed:
    """``spans`` accepted at ``received_ns`` that were not analysed, and why (`UNANALYSED_REASONS`)."""

    received_ns: int
    spans: int
    reason: str


class ResultSink:
    """Takes analysis results. Every method is called on the event loop and must not block for
    long or raise (a failure is counted and logged by the sink). This base drops everything."""

    def apply(self, result: AnalysisResult) -> None:
        """Fold ``result`` (the events of some analysed batches) into the answers."""

    def note_unanalysed(self, received_ns: int, spans: int, reason: str) -> None:
        """Note that ``spans`` accepted at ``received_ns`` were not analysed, for ``reason``."""

    def absorb(self, counts: AnalyzerCounts) -> None:
        """Add the analysing side's counts (errors, bad spans, batches, value tally)."""


class EngineSink(ResultSink):
    """Folds into ``engine``: its state (`SliState.apply`) and its analyzer's counts."""

    def __init__(self, engine: SliEngine) -> None:
        self.engine = engine

    def apply(self, result: AnalysisResult) -> None:
        try:
            self.engine.state.apply(result)
        except Exception as error:  # a bug must not stop intake: counted as an analysis error
            self.engine.analyzer.absorb(errors=1)
            logger.exception("folding an analysis result failed: %s", error)

    def note_unanalysed(self, received_ns: int, spans: int, reason: str) -> None:
        self.engine.state.note_unanalysed(received_ns, spans, reason)

    def absorb(self, counts: AnalyzerCounts) -> None:
        self.engine.analyzer.absorb(
            errors=counts.errors,
            bad_spans=counts.bad_spans,
            batches=counts.batches,
            value_tally=counts.value_tally,
            previous_tally=counts.previous_tally,
        )


Relayed = AnalysisResult | Unanalysed | AnalyzerCounts
"""What a `RelaySink` sends (inside the sender's message lists)."""


class RelaySink(ResultSink):
    """Sends everything to ``send`` (the relay to the process that folds it; see `deliver`)."""

    def __init__(self, send: Callable[[object], None]) -> None:
        self._send = send

    def apply(self, result: AnalysisResult) -> None:
        self._send(result)

    def note_unanalysed(self, received_ns: int, spans: int, reason: str) -> None:
        self._send(Unanalysed(received_ns, spans, reason))

    def absorb(self, counts: AnalyzerCounts) -> None:
        self._send(counts)


def deliver(message: object, sink: ResultSink) -> bool:
    """Hand a relayed ``message`` to ``sink``; False when it is not an analysis message."""
    if isinstance(message, AnalysisResult):
        sink.apply(message)
    elif isinstance(message, Unanalysed):
        sink.note_unanalysed(message.received_ns, message.spans, message.reason)
    elif isinstance(message, AnalyzerCounts):
        sink.absorb(message)
    else:
        return False
    return True


class LoopAnalyzer:
    """Analysis on the event loop whose results go to a sink (``analysis.workers: 0`` in an extra
    intake process): ``engine``'s analyzer computes each batch's result, ``sink`` folds it."""

    name = "sli"

    def __init__(self, engine: SliEngine, sink: ResultSink) -> None:
        self.engine = engine
        self.sink = sink
        self.needs_view = engine.needs_view

    def analyze(self, batch: TraceBatch) -> None:
        """Analyse ``batch`` and hand the result to the sink. Never raises."""
        analyzer = self.engine.analyzer
        errors, bad_spans, tally = analyzer.errors, analyzer.bad_spans, analyzer.value_tally()
        result = analyzer.results((batch,))
        self.sink.apply(result)
        self.sink.absorb(
            AnalyzerCounts(
                errors=analyzer.errors - errors,
                bad_spans=analyzer.bad_spans - bad_spans,
                batches=1,
                value_tally=analyzer.value_tally(),
                previous_tally=tally,
            )
        )
