"""``GET /api/v1/gate``: the canary verdict as JSON, for Argo Rollouts' web metric provider or any CD tool.

Query: ``task``, ``baseline`` and ``canary`` (``DIMENSION=VALUE``), optional ``window`` (default
30m), ``confidence``, ``max_degradation`` (success), ``max_latency_degradation``, ``min_events``
and ``latency_threshold`` (seconds). The answer is always HTTP 200 with ``verdict`` ``pass``,
``fail`` or ``inconclusive`` (and ``exit_code`` 0, 1, 2), the numbers behind it and a one-paragraph
``explanation``; a malformed request is HTTP 400 with the reason. ``traffic=synthetic`` gates on
synthetic probes alone (the default, ``real``, on real users alone), so a canary can be judged
on probes before real users reach it. In an Argo Rollouts
AnalysisTemplate, use ``successCondition: result.verdict == "pass"`` and
``failureCondition: result.verdict == "fail"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiohttp import web

from otel_impact.processors.answers import Answers, LocalAnswers
from otel_impact.processors.api.params import QueryParams, bad_request
from otel_impact.processors.api.synthetic import SyntheticSource
from otel_impact.processors.clock import Clock
from otel_impact.processors.durations import MINUTE_NS, floor_minute
from otel_impact.processors.gate._verdict import GatePolicy
from otel_impact.processors.gate.evaluate import GateError, evaluate, parse_selector
from otel_impact.processors.impact_queries import ImpactQueries
from otel_impact.processors.traffic import parse_traffic

DEFAULT_WINDOW = "30m"


class GateRoutes:
    """The gate's HTTP handler over an `ImpactQueries` source."""

    def __init__(
        self,
        queries: ImpactQueries,
        resolve: Callable[[str], str],
        clock: Clock,
        answers: Answers | None = None,
        *,
        synthetic: SyntheticSource | None = None,
    ) -> None:
        """``answers`` asks the questions (default: ``queries`` on the event loop); ``synthetic``
        answers ``traffic=synthetic``."""
        self.queries = queries
        self.synthetic = synthetic
        self.resolve = resolve
        self.clock = clock
        self.answers: Answers = answers or LocalAnswers(queries)  # type: ignore[arg-type]

    async def gate(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            params = QueryParams(query)
            if params.choice("traffic", parse_traffic) == "synthetic":
                source = self._source()
                task = params.task()
                known = await self.answers.run(lambda queries: list(queries.tasks()))
                return web.json_response(await source.ask(task, known, lambda queries: self.answer(query, queries)))
            return web.json_response(await self.answers.run(lambda queries: self.answer(query, queries)))
        except (GateError, ValueError) as error:
            return bad_request(error)

    def answer(self, query: Mapping[str, str], queries: ImpactQueries | None = None) -> dict[str, object]:
        """The verdict document for ``query``; raises `GateError` / `ValueError` with the reason."""
        params = QueryParams(query)
        task = params.task()
        traffic = params.choice("traffic", parse_traffic)
        if traffic == "synthetic" and queries is None:  # asked directly: this replica's synthetic state
            local = self._source().local
            if task not in local.engine.tasks and task in self.queries.tasks():
                local.engine.ensure_task(task)  # no probe yet: an inconclusive verdict, not an error
            queries = local
        baseline = parse_selector(_selector(params, "baseline"), self.resolve, side="baseline")
        canary = parse_selector(_selector(params, "canary"), self.resolve, side="canary")
        if baseline.dimension != canary.dimension:
            raise GateError(f"baseline and canary must name the same dimension ({baseline.text} vs {canary.text})")
        window, length = params.window(DEFAULT_WINDOW)
        policy = GatePolicy(
            confidence=params.number("confidence", GatePolicy.confidence),
            max_success_degradation=params.number("max_degradation", GatePolicy.max_success_degradation),
            max_latency_degradation=params.number("max_latency_degradation", GatePolicy.max_latency_degradation),
            min_events=int(params.number("min_events", GatePolicy.min_events)),
        )
        threshold = params.optional_number("latency_threshold")
        end = floor_minute(self.clock.now_ns()) + MINUTE_NS
        result = evaluate(
            queries or self.queries,
            task,
            baseline,
            canary,
            end - length,
            end,
            window=window,
            policy=policy,
            latency_threshold=threshold,
        )
        return {**result.to_json(), "traffic": traffic}

    def _source(self) -> SyntheticSource:
        if self.synthetic is None:
            raise GateError("traffic=synthetic: this processor keeps no synthetic state")
        return self.synthetic


def add_routes(app: web.Application, routes: GateRoutes) -> None:
    """Serve ``GET /api/v1/gate`` on ``app``."""
    app.router.add_get("/api/v1/gate", routes.gate)


def _selector(params: QueryParams, name: str) -> str:
    return params.required(name, f", as DIMENSION=VALUE, e.g. {name}=service.version=1.4")
