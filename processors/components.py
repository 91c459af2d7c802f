"""The analysis on top of the delivery path: the SLI and SLO engines and the on-call tools, wired into serve.

`attach_impact` builds them from the sections of a loaded `ServeConfig` (``sli``, ``slos``,
``alerting``, ``dashboard``) and plugs them into a `ProcessorService`:

* the SLI engine analyzes every accepted batch (in ``analysis.workers`` worker processes, by
  default one, whose results it folds in; with 0, on the event loop), answers ``/api/v1/impact`` and
  ``/api/v1/customers/top``, and adds its series to ``/metrics``; it ticks once a second
  (pruning, checkpoints under ``--state``) and checkpoints a last time at shutdown;
* the SLO engine evaluates the SLOs on its own interval, answers ``/api/v1/slos`` and delivers
  alerts to the configured Alertmanagers and webhooks, never blocking span intake;
* with ``shared_state``, the SLI engine's deltas also go to Redis and every answer (the API,
  the SLO engine, the dashboard, the gate, the postmortem) is read from there, off the event
  loop (`SharedState`);
* with ``receivers.processes`` above 1 (``serve --workers N``), the extra intake processes
  (`IntakeProcesses`) relay their analysis results here, folded into the same SLI state as this
  process's own, and their metrics, summed into ``/metrics``; each of them builds its analysis
  with `attach_relayed_analysis`;
* the on-call tools read both: the dashboard at ``/``, the canary gate at ``/api/v1/gate`` and
  postmortem summaries at ``/api/v1/postmortem``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from otel_impact.processors.analysis.pool import AnalysisPool
from otel_impact.processors.analysis.sink import EngineSink, LoopAnalyzer, ResultSink
from otel_impact.processors.answers import Answers, LocalAnswers
from otel_impact.processors.api import dashboard_routes, explain_routes, postmortem_routes
from otel_impact.processors.api.dashboard_routes import DashboardRoutes
from otel_impact.processors.api.gate_routes import GateRoutes
from otel_impact.processors.api.gate_routes import add_routes as add_gate_routes
from otel_impact.processors.api.postmortem_routes import PostmortemRoutes
from otel_impact.processors.api.sli_routes import add_routes as add_sli_routes
from otel_impact.processors.api.slo_routes import add_routes as add_slo_routes
from otel_impact.processors.api.synthetic import SyntheticSource
from otel_impact.processors.export.metrics_export import MetricsExport
from otel_impact.processors.intake_processes.group import IntakeProcesses
from otel_impact.processors.periodic import Periodic
from otel_impact.processors.service import ProcessorService
from otel_impact.processors.shared.reader import SharedQueries
from otel_impact.processors.shared.runtime import SharedState
from otel_impact.processors.shared.settings import synthetic_shared_config
from otel_impact.processors.sli import SliCollector, SliEngine, SliQueries, build_metrics_request
from otel_impact.processors.sli.explain import explain_task
from otel_impact.processors.sli.synthetic_prometheus import SyntheticCollector
from otel_impact.processors.sli.synthetic_queries import synthetic_queries
from otel_impact.processors.slo import AlertDispatcher, SloEngine, receivers_from_config
from otel_impact.processors.slo.prometheus import SloCollector

logger = logging.getLogger("otel_impact.processor")

TICK_SECONDS = 1.0


@dataclass
class ImpactComponents:
    """The engines `attach_impact` built, for callers that want to read them in-process."""

    sli: SliEngine
    queries: SliQueries
    slo: SloEngine


class _SliComponent:
    """Ticks the SLI engine (pruning, checkpoints) and checkpoints it a last time at shutdown."""

    name = "sli engine"

    def __init__(self, engine: SliEngine) -> None:
        self.engine = engine
        self._ticks = Periodic("SLI engine periodic work", TICK_SECONDS, engine.tick)

    async def start(self) -> None:
        self._ticks.start()

    async def stop(self) -> None:
        await self._ticks.stop()
        self.engine.close()


class _SloComponent:
    """Runs the SLO evaluation loop and the alert dispatcher."""

    name = "slo engine"

    def __init__(self, engine: SloEngine) -> None:
        self.engine = engine

    async def start(self) -> None:
        await self.engine.start()

    async def stop(self) -> None:
        await self.engine.aclose()


def attach_impact(service: ProcessorService) -> ImpactComponents:
    """Build the SLI and SLO engines from ``service.config`` and plug them into ``service``.

    Call before ``service.start()``. Under ``--state DIR`` the SLI engine keeps its checkpoint
    in ``DIR/sli``.
    """
    config = service.config
    sli_config = config.sli
    state_dir = None if config.state_dir is None else os.path.join(config.state_dir, "sli")
    engine = SliEngine(sli_config, clock=service.clock, state_dir=state_dir)
    queries = SliQueries(engine)
    pool = None
    if sli_config.enabled:  # switched off, requests are forwarded without even being parsed
        if config.analysis.workers:
            pool = AnalysisPool(engine, config.analysis, log_level=logging.getLogger().getEffectiveLevel())
            service.add_analyzer(pool)
            service.accounting.registry.register(pool.collector())
            service.admin.add_before_answer(pool.caught_up)
        else:
            service.add_analyzer(engine)
    answers: Answers = LocalAnswers(queries)
    synthetic = synthetic_queries(queries)
    synthetic_source = SyntheticSource.of(synthetic)
    answer_queries: SliQueries | SharedQueries = queries
    shared = None
    if config.shared_state.enabled:
        shared = SharedState(
            config.shared_state,
            engine,
            queries,
            service.clock,
            evaluation_interval_s=config.alerting.evaluation_interval,
        )
        answers, answer_queries = shared.answers, shared.queries
        service.accounting.registry.register(shared.collector())
        service.admin.add_readiness_detail(shared.readiness_line)
        service.add_component(shared)
        if engine.synthetic is not None and synthetic is not None:  # the synthetic state, under its own prefix
            shared_synthetic = SharedState(
                synthetic_shared_config(config.shared_state),
                engine.synthetic,
                synthetic,
                service.clock,
                evaluation_interval_s=config.alerting.evaluation_interval,
            )
            synthetic_source = SyntheticSource(synthetic, shared_synthetic.answers)
            service.add_component(shared_synthetic)
    if config.receivers.processes > 1:
        peers = IntakeProcesses(
            config,
            EngineSink(engine),
            service.metrics,
            own_requests=lambda: _received_requests(service),
            log_level=logging.getLogger().getEffectiveLevel(),
        )
        service.add_peers(peers)
        service.accounting.registry.register(peers.collector())
        service.admin.add_before_answer(peers.caught_up)
    service.admin.add_routes(lambda app: add_sli_routes(app, queries, answers, synthetic=synthetic_source))
    service.admin.add_routes(lambda app: explain_routes.add_routes(app, queries))
    service.accounting.registry.register(SliCollector(queries))
    if synthetic is not None:
        service.accounting.registry.register(SyntheticCollector(synthetic))
    service.add_component(_SliComponent(engine))
    if pool is not None:  # stopped before the SLI engine's last checkpoint, which then holds its last results
        service.add_component(pool)
    if sli_config.otlp_metrics_interval_s is not None:
        export = MetricsExport(
            config.exporters, lambda: build_metrics_request(queries), sli_config.otlp_metrics_interval_s
        )
        service.accounting.registry.register(export)
        service.add_component(export)

    slos = config.slos
    alerting = config.alerting
    receivers = receivers_from_config(alerting)
    dispatcher = AlertDispatcher(receivers, alerting.delivery, service.clock) if receivers else None
    slo_engine = SloEngine(
        slos,
        alerting,
        answer_queries,
        clock=service.clock,
        dispatcher=dispatcher,
        leadership=None if shared is None else shared.leadership,
    )
    service.admin.add_routes(lambda app: add_slo_routes(app, slo_engine))
    service.accounting.registry.register(SloCollector(slo_engine))
    service.add_component(_SloComponent(slo_engine))

    board = DashboardRoutes(config.dashboard, queries, slo_engine, service.clock, answers, synthetic=synthetic_source)
    gate = GateRoutes(queries, queries.resolve_dimension, service.clock, answers, synthetic=synthetic_source)
    notes = PostmortemRoutes(
        queries,
        slos,
        lambda start, end, task: slo_engine.timeline(start, end, task=task),
        service.clock,
        answers,
        explain=lambda task, start, end: explain_task(engine.state.explain, sli_config.dimensions, task, start, end),
    )
    service.admin.add_routes(lambda app: dashboard_routes.add_routes(app, board))
    service.admin.add_routes(lambda app: add_gate_routes(app, gate))
    service.admin.add_routes(lambda app: postmortem_routes.add_routes(app, notes))
    return ImpactComponents(sli=engine, queries=queries, slo=slo_engine)


def attach_relayed_analysis(service: ProcessorService, sink: ResultSink) -> AnalysisPool | None:
    """Plug SLI analysis into an extra intake process's ``service``: in its own worker processes
    (``analysis.workers``) or on its loop (0), every result handed to ``sink`` (the relay to the
    main process). No engine of its own answers anything: the main one folds the results.
    Returns the pool, when there is one (to wait for it to catch up)."""
    config = service.config
    if not config.sli.enabled:
        return None
    engine = SliEngine(config.sli, clock=service.clock)
    if not config.analysis.workers:
        service.add_analyzer(LoopAnalyzer(engine, sink))
        return None
    pool = AnalysisPool(engine, config.analysis, log_level=logging.getLogger().getEffectiveLevel(), sink=sink)
    service.add_analyzer(pool)
    service.accounting.registry.register(pool.collector())
    service.add_component(pool)
    return pool


def _received_requests(service: ProcessorService) -> float:
    """Requests this process received (every transport and outcome)."""
    return sum(
        sample.value
        for metric in service.accounting.received_requests.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
