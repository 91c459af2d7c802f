"""The SLO evaluation loop: every ``evaluation_interval``, evaluate every SLO, move the alerts on,
hand the notifications to delivery.

`SloEngine.evaluate` runs one pass at the injected clock's time: `evaluate_slo` per SLO (reading
only the `ImpactQueries` contract), `AlertStates` for the alerts, and the `AlertSink` for what
must be sent, without waiting for delivery. `SloEngine.snapshot` is what ``GET /api/v1/slos``
serves (rendered by `render.snapshot_document`); `SloEngine.budget_histories` is what the
dashboard draws; `SloEngine.timeline` is the alert timeline the postmortem reads.

Shared among replicas
---------------------
With a `Leadership` (replicas sharing one state), one replica at a time evaluates and delivers.
The loop then runs `SloEngine.step` every third of ``evaluation_interval`` (the lease's TTL is
the interval, so a dead leader's lease runs out and another replica takes over within about
1.33 intervals). Each step runs in a worker thread: renew or take the lease; on taking it, load
the alert state the previous leader saved (so a failover neither pages twice nor forgets an
active alert); as leader, evaluate when an interval has passed, save the alert state fenced by
the lease's token, and hand the notifications to the dispatcher (back on the event loop) only
once the save was accepted. A follower evaluates and delivers nothing; it reloads the leader's
snapshot and timeline every interval and serves those. What the event loop reads (`snapshot`,
`timeline`) is swapped in whole, so it never sees a half-made state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from otel_impact.processors.clock import Clock
from otel_impact.processors.impact_queries import ImpactQueries

from .alert_state import AlertStates, AlertTransition, select_transitions
from .alerting_config import AlertingConfig
from .alerts import Notification
from .config import SloConfig
from .delivery import AlertSink
from .evaluate import BudgetHistory, SloEvaluation, budget_history, evaluate_slo
from .leadership import AlertUpdate, Leadership, SharedStateUnavailable
from .render import snapshot_document

__all__ = ["SloEngine"]

logger = logging.getLogger("otel_impact.slo")


@dataclass(frozen=True)
class _Published:
    """What `snapshot` and `timeline` serve with a leadership, swapped in whole after each step."""

    snapshot: dict[str, Any]
    timeline: tuple[AlertTransition, ...]


class SloEngine:
    """Evaluates the configured SLOs against an `ImpactQueries` source.

    Call `evaluate`, `snapshot`, `step`, `start` and `aclose` from one event loop.
    ``dispatcher`` is optional (without it, alerts are tracked and served but not sent).

    ``leadership`` is optional: with it, only the replica holding the lease evaluates and
    delivers (see the module docstring); evaluation then runs in a worker thread, so
    ``queries`` must be safe to call from one (the shared-state reader is), and `evaluate` is
    not to be called directly (`step` is the one pass).
    """

    def __init__(
        self,
        slos: Sequence[SloConfig],
        alerting: AlertingConfig,
        queries: ImpactQueries,
        *,
        clock: Clock,
        dispatcher: AlertSink | None = None,
        leadership: Leadership | None = None,
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
        self.leadership = leadership
        self.leader_token: int | None = None
        """The fencing token this replica evaluates under while it leads (with a leadership)."""
        self.takeovers = 0
        """Times this replica started leading (and loaded the stored alert state)."""
        self.unsaved_evaluations = 0
        """Evaluations whose alert state was not saved (lease lost, store unreachable): nothing sent."""
        self.shared_read_failures = 0
        """Loads of the stored alert state that failed (the store unreachable or unreadable)."""
        self._step_lock = threading.Lock()
        self._saved_mark = 0
        self._next_evaluation = -math.inf
        self._next_refresh = -math.inf
        self._published: _Published | None = None

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
        """Stop evaluating, give up the lease (with a leadership, so another replica takes over at
        once) and give queued notifications up to ``timeout`` seconds. Idempotent."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self.leadership is not None:
            await asyncio.to_thread(self.leadership.release)
            self.leader_token = None
        if self.dispatcher is not None:
            await self.dispatcher.aclose(timeout)

    async def _run(self, sleep: Callable[[float], Awaitable[None]] | None) -> None:
        interval = self.alerting.evaluation_interval
        if self.leadership is not None:
            interval /= 3  # the lease is renewed three times per TTL (= evaluation_interval)
        while not self._stop.is_set():
            if self.leadership is None:
                self.evaluate()
            else:
                try:
                    await self.step()
                except Exception:  # a bug in one step must not end evaluation for good
                    logger.exception("SLO leadership step failed; trying again in %gs", interval)
            if sleep is not None:
                await sleep(interval)
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=interval)

    # -- one pass --------------------------------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        """One pass over every SLO at the clock's current time; returns the new snapshot.

        Without a leadership only (with one, `step` decides who evaluates): raises RuntimeError.
        """
        if self.leadership is not None:
            raise RuntimeError("this SloEngine shares its work through a leadership: call step(), not evaluate()")
        now = self.clock.now_ns()
        evaluations, outgoing = self._evaluate_all(now)
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
        """The last evaluation (evaluating now if there was none).

        With a leadership: the leader's last snapshot, as this replica last evaluated or loaded
        it, with a ``shared_state`` member (``leader``, ``reachable``, ``reason``); before any
        replica evaluated, every SLO has status ``no_data``. Never evaluates nor waits.
        """
        if self.leadership is None:
            return self._snapshot if self._snapshot is not None else self.evaluate()
        published = self._published
        return published.snapshot if published is not None else self._nothing_yet()

    def _evaluate_all(self, now: int) -> tuple[list[SloEvaluation], list[Notification]]:
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
        return evaluations, outgoing

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

    # -- shared among replicas ----------------------------------------------------------------------

    async def step(self) -> bool:
        """One round with a leadership (see the module docstring); returns whether this replica leads.

        The lease, the shared alert state and the evaluation run in a worker thread; the
        notifications of an accepted save go to the dispatcher here, on the event loop. Called
        every third of ``evaluation_interval`` by `start`'s loop, or directly (tests): one at a time.
        """
        leadership = self.leadership
        if leadership is None:
            raise RuntimeError("step() needs a leadership; without one, call evaluate()")
        delivery = self.dispatcher.stats() if self.dispatcher is not None else {}
        outgoing = await asyncio.to_thread(self._lead_or_follow, leadership, delivery)
        if outgoing and self.dispatcher is not None:
            self.dispatcher.submit(outgoing)
        return self.leader_token is not None

    def _lead_or_follow(self, leadership: Leadership, delivery: Mapping[str, Any]) -> list[Notification]:
        """The worker thread's part of `step`: the notifications to deliver (saved already)."""
        with self._step_lock:
            interval = self.alerting.evaluation_interval
            token = leadership.renew_or_acquire()
            mono = self.clock.monotonic()
            if token is None:
                if self.leader_token is not None:
                    logger.warning("this replica no longer leads SLO evaluation (token %d)", self.leader_token)
                    self.leader_token = None
                    self._next_refresh = -math.inf
                if mono >= self._next_refresh:
                    self._next_refresh = mono + interval
                    self._follow(leadership)
                return []
            if token != self.leader_token and not self._take_over(leadership, token):
                return []
            if mono < self._next_evaluation:
                return []
            self._next_evaluation = mono + interval
            try:
                return self._lead(leadership, token, delivery)
            except BaseException:
                self.leader_token = None  # the state in memory may be ahead of the stored one: reload it
                raise

    def _take_over(self, leadership: Leadership, token: int) -> bool:
        """Start leading under ``token``: load the alert state the last leader saved."""
        try:
            shared = leadership.load()
        except SharedStateUnavailable as error:
            self.shared_read_failures += 1
            logger.warning("cannot lead SLO evaluation yet: the alert state cannot be read (%s)", error)
            self._republish(leader=False, reason=f"shared state unreachable: {error}")
            return False
        self.alerts.restore(shared.alerts, self.clock.now_ns())
        self._saved_mark = self.alerts.mark
        self.leader_token = token
        self.takeovers += 1
        self._next_evaluation = -math.inf
        logger.info(
            "this replica leads SLO evaluation now (token %d; %d active alerts loaded)",
            token,
            len(shared.alerts.active),
        )
        return True

    def _lead(self, leadership: Leadership, token: int, delivery: Mapping[str, Any]) -> list[Notification]:
        """Evaluate, save fenced by ``token``, and return the notifications once the save is accepted."""
        now = self.clock.now_ns()
        evaluations, outgoing = self._evaluate_all(now)
        snapshot = snapshot_document(now, self.alerting.evaluation_interval, evaluations, self.alerts.active, delivery)
        appended, mark = self.alerts.transitions_since(self._saved_mark)
        result = leadership.save(AlertUpdate(self.alerts.export_active(now), appended, snapshot, now), token)
        if result != "saved":
            # The state in memory is ahead of the stored one: forget it (the next lead reloads it),
            # and deliver nothing, so the replica that leads now decides what is sent.
            self.unsaved_evaluations += 1
            self.leader_token = None
            self._next_refresh = -math.inf
            logger.warning(
                "SLO alert state not saved (%s); %d notifications withheld for the leader to send",
                result,
                len(outgoing),
            )
            return []
        self._saved_mark = mark
        self.last_evaluation = tuple(evaluations)
        self._publish(snapshot, self.alerts.transitions(), leader=True, reason=None)
        return outgoing

    def _follow(self, leadership: Leadership) -> None:
        """Serve the leader's last saved snapshot and timeline."""
        try:
            shared = leadership.load()
        except SharedStateUnavailable as error:
            self.shared_read_failures += 1
            self._republish(leader=False, reason=f"shared state unreachable: {error}")
            return
        if shared.snapshot is None:
            self._published = None
            return
        self._publish(shared.snapshot, shared.alerts.timeline, leader=False, reason=None)

    def _publish(
        self, snapshot: Mapping[str, Any], timeline: tuple[AlertTransition, ...], *, leader: bool, reason: str | None
    ) -> None:
        shared = {"leader": leader, "reachable": reason is None, "reason": reason}
        self._published = _Published({**snapshot, "shared_state": shared}, timeline)

    def _republish(self, *, leader: bool, reason: str) -> None:
        """Keep serving what was published, marked as not refreshed for ``reason``."""
        published = self._published
        if published is not None:
            self._publish(published.snapshot, published.timeline, leader=leader, reason=reason)

    def _nothing_yet(self) -> dict[str, Any]:
        now = self.clock.now_ns()
        interval = self.alerting.evaluation_interval
        reason = f"waiting for the first SLO evaluation in the shared state (one replica evaluates every {interval:g}s)"
        evaluations = [SloEvaluation(slo, now, "no_data", reason) for slo in self.slos]
        document = snapshot_document(now, interval, evaluations, lambda slo, key: None, {})
        return {**document, "shared_state": {"leader": False, "reachable": None, "reason": reason}}

    # -- what the other tools read ---------------------------------------------------------------

    def timeline(self, start_ns: int, end_ns: int, *, task: str | None = None) -> list[AlertTransition]:
        """Alerts fired or resolved in ``[start_ns, end_ns)`` (optionally for one task), oldest first.

        With a leadership: from the shared timeline, as this replica last saved or loaded it.
        """
        if self.leadership is None:
            return self.alerts.timeline(start_ns, end_ns, task=task)
        published = self._published
        return select_transitions(published.timeline if published else (), start_ns, end_ns, task=task)

    def budget_histories(self, now_ns: int | None = None, queries: ImpactQueries | None = None) -> list[BudgetHistory]:
        """The error budget of each SLO over its current period so far (see `budget_history`),
        in configuration order, for the SLOs whose task the SLI engine knows; asked of
        ``queries`` when given (the source the caller answers from), else of the engine's."""
        now = self.clock.now_ns() if now_ns is None else now_ns
        source = self.queries if queries is None else queries
        known = set(source.tasks())
        return [budget_history(slo, source, now) for slo in self.slos if slo.task in known]
