"""The SLO evaluation loop: every ``evaluation_interval``, evaluate every SLO, move the alerts on,
hand the notifications to delivery.

`SloEngine.evaluate` runs one pass at the injected clock's time: `evaluate_slo` per SLO (reading
only the `ImpactQueries` contract), `AlertStates` for the alerts, and the `AlertSink` for what
must be sent, without waiting for delivery. `SloEngine.snapshot` is what ``GET /api/v1/slos``
serves (rendered by `render.snapshot_document`); `SloEngine.budget_histories` is what the
dashboard draws; `SloEngine.timeline` is the alert timeline the postmortem reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from otel_impact.processors.clock import Clock
from otel_impact.processors.impact_queries import ImpactQueries

from .alert_state import AlertStates, AlertTransition
from .alerting_config import AlertingConfig
from .alerts import Notification
from .config import SloConfig
from .delivery import AlertSink
from .evaluate import BudgetHistory, SloEvaluation, budget_history, evaluate_slo
from .render import snapshot_document

__all__ = ["SloEngine"]

logger = logging.getLogger("otel_impact.slo")


class SloEngine:
    """Evaluates the configured SLOs against an `ImpactQueries` source.

    Single-threaded: call `evaluate`, `snapshot`, `start` and `aclose` from one event loop.
    ``dispatcher`` is optional (without it, alerts are tracked and served but not sent).
    """

    def __init__(
        self,
        slos: Sequence[SloConfig],
        alerting: AlertingConfig,
        queries: ImpactQueries,
        *,
        clock: Clock,
        dispatcher: AlertSink | None = None,
    ) -> None:
        self.slos = tuple(slos)
        self.alerting = alerting
        self.queries = queries
        self.clock = clock
        self.dispatcher = dispatcher
        self.evaluations = 0
        self.evaluation_errors = 0
        self.alerts = AlertStates(alerting, clock)
        self.last_evaluation: tuple[SloEvaluation, ...] = ()
        self._snapshot: dict[str, Any] | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, *, sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        """Start the dispatcher and evaluate every ``evaluation_interval`` until `aclose`."""
        if self._task is not None:
            return
        if self.dispatcher is not None:
            await self.dispatcher.start()
        self._stop.clear()
        self._task = asyncio.create_task(self._run(sleep), name="slo-evaluation")

    async def aclose(self, timeout: float = 5.0) -> None:
        """Stop evaluating and give queued notifications up to ``timeout`` seconds. Idempotent."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self.dispatcher is not None:
            await self.dispatcher.aclose(timeout)

    async def _run(self, sleep: Callable[[float], Awaitable[None]] | None) -> None:
        interval = self.alerting.evaluation_interval
        while not self._stop.is_set():
            self.evaluate()
            if sleep is not None:
                await sleep(interval)
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=interval)

    # -- one pass --------------------------------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        """One pass over every SLO at the clock's current time; returns the new snapshot."""
        now = self.clock.now_ns()
        outgoing: list[Notification] = []
        evaluations = []
        for slo in self.slos:
            try:
                evaluations.append(self._evaluate_slo(slo, now, outgoing))
            except Exception as error:  # a broken answer must not stop the other SLOs or the loop
                self.evaluation_errors += 1
                logger.exception("evaluating SLO %s failed", slo.name)
                reason = f"evaluation failed: {error}"
                evaluations.append(SloEvaluation(slo, now, "error", reason))
                self.alerts.hold_all(slo.name, reason, now, outgoing)
        self.evaluations += 1
        if self.dispatcher is not None and outgoing:
            self.dispatcher.submit(outgoing)
        self.last_evaluation = tuple(evaluations)
        self._snapshot = snapshot_document(
            now,
            self.alerting.evaluation_interval,
            evaluations,
            self.alerts.active,
            self.dispatcher.stats() if self.dispatcher is not None else {},
        )
        return self._snapshot

    def snapshot(self) -> dict[str, Any]:
        """The last evaluation (evaluating now if there was none)."""
        return self._snapshot if self._snapshot is not None else self.evaluate()

    def _evaluate_slo(self, slo: SloConfig, now: int, outgoing: list[Notification]) -> SloEvaluation:
        evaluation = evaluate_slo(slo, self.alerting, self.queries, now, also=self.alerts.keys(slo.name))
        if evaluation.status != "ok":
            assert evaluation.reason is not None
            if evaluation.status == "error":
                logger.warning("SLO %s cannot be evaluated: %s", slo.name, evaluation.reason)
            self.alerts.hold_all(slo.name, evaluation.reason, now, outgoing)
            return evaluation
        complete, incomplete_reason = evaluation.telemetry or (True, None)
        hold_reason = None if complete else incomplete_reason
        for segment in evaluation.segments:
            self.alerts.update(slo, segment, now, hold_reason, outgoing)
        return evaluation

    # -- what the other tools read ---------------------------------------------------------------

    def timeline(self, start_ns: int, end_ns: int, *, task: str | None = None) -> list[AlertTransition]:
        """Alerts fired or resolved in ``[start_ns, end_ns)`` (optionally for one task), oldest first."""
        return self.alerts.timeline(start_ns, end_ns, task=task)

    def budget_histories(self, now_ns: int | None = None) -> list[BudgetHistory]:
        """The error budget of each SLO over its current period so far (see `budget_history`),
        in configuration order, for the SLOs whose task the SLI engine knows."""
        now = self.clock.now_ns() if now_ns is None else now_ns
        known = set(self.queries.tasks())
        return [budget_history(slo, self.queries, now) for slo in self.slos if slo.task in known]
