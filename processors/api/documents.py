"""The JSON documents of the impact API, from the typed answers of the SLI state and its readers.

The stages hand the HTTP layer frozen dataclasses (`ImpactReport`, `TopCustomers`,
`Postmortem`); this module is where they become JSON. The SLO engine's own documents (the
``/api/v1/slos`` snapshot, alert transitions, notification bodies) are rendered by
``slo.render``, whose forms of `Bounds` and `AlertTransition` are reused here so each is
written once. Key order is part of the shape: clients and the tests diff answers as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from otel_impact.processors.durations import SECOND_NS, format_duration
from otel_impact.processors.impact_queries import Attribution, ImpactFigures, ImpactReport, PipelineLag
from otel_impact.processors.postmortem.report import BudgetConsumed, Postmortem
from otel_impact.processors.sli.attribution import AttributionRow
from otel_impact.processors.sli.edges import Edge
from otel_impact.processors.sli.queries import TopCustomers
from otel_impact.processors.sli.synthetic_queries import SyntheticSummary
from otel_impact.processors.slo.alerts import rfc3339
from otel_impact.processors.slo.burn import budget_covers, budget_spent
from otel_impact.processors.slo.notify import bounds_json
from otel_impact.processors.slo.render import transition_json

__all__ = [
    "attribution_document",
    "attribution_json",
    "edge_json",
    "impact_document",
    "lag_fields",
    "postmortem_document",
    "top_customers_document",
]


def synthetic_summary_document(summary: SyntheticSummary) -> dict[str, Any]:
    """The ``synthetic`` part of a real-traffic impact document: the synthetic events of the same
    task and window (counted apart: none of them is in the real figures)."""
    ratio = summary.success_ratio
    return {
        "events": {"total": summary.total, "good": summary.good, "bad": summary.bad},
        "success_ratio": None if ratio is None else round(ratio, 6),
    }


def lag_fields(lag: PipelineLag | None) -> dict[str, Any]:
    """``lag_seconds`` (the window's), ``delayed``, ``behind_seconds`` (the p99 lag of the last 5
    minutes, when delayed) and ``delay_reason`` of a telemetry object (nulls when not measured)."""
    return {
        "lag_seconds": {"p50": None if lag is None else lag.p50_s, "p99": None if lag is None else lag.p99_s},
        "delayed": lag is not None and lag.delayed,
        "behind_seconds": lag.recent_p99_s if lag is not None and lag.delayed else None,
        "delay_reason": None if lag is None else lag.reason,
    }


def impact_document(report: ImpactReport) -> dict[str, Any]:
    """The answer of ``GET /api/v1/impact``: the whole window's figures, then each segment's."""
    return {
        "task": report.task,
        "window": report.window,
        "start": _iso(report.start_ns),
        "end": _iso(report.end_ns),
        **_figures(report),
        "telemetry": {
            "complete": report.telemetry.complete,
            "reason": report.telemetry.reason,
            "late_clamped_events": report.telemetry.late_clamped_events,
            "future_clamped_events": report.telemetry.future_clamped_events,
            **lag_fields(report.telemetry.lag),
        },
        "estimates_are_lower_bounds": report.estimates_are_lower_bounds,
        "overflow_events": report.overflow_events,
        "accuracy": {
            "users_bounds": report.accuracy.users_bounds,
            "users_relative_error": report.accuracy.users_relative_error,
            "latency_rank_error": report.accuracy.latency_rank_error,
            "sketch_window_start": _iso(report.accuracy.sketch_window_start_ns),
            "latency_relative_error": report.accuracy.latency_relative_error,
            "source": report.accuracy.source,
        },
        "dimensions": list(report.dimensions),
        "where": dict(report.where),
        "segments": [{"segment": dict(segment.segment), **_figures(segment)} for segment in report.segments],
    }


def top_customers_document(top: TopCustomers, window: str | None = None) -> dict[str, Any]:
    """The answer of ``GET /api/v1/customers/top`` (customers as pseudonyms, with bounds), with
    the ``window`` as asked when given."""
    document: dict[str, Any] = {
        "task": top.task,
        "start": _iso(top.start_ns),
        "end": _iso(top.end_ns),
        "customers": [
            {"customer": c.customer, "bad_events": c.bad_events, "lower": c.lower, "upper": c.upper}
            for c in top.customers
        ],
        "max_error": top.max_error,
        "impacted_users": bounds_json(top.impacted_users),
    }
    if window is not None:
        document["window"] = window
    return document


def postmortem_document(postmortem: Postmortem) -> dict[str, Any]:
    """The answer of ``GET /api/v1/postmortem`` (and what `render_markdown` reads)."""
    mitigation = postmortem.mitigation
    return {
        "task": postmortem.task,
        "from": rfc3339(postmortem.start_ns),
        "to": rfc3339(postmortem.end_ns),
        "duration": format_duration((postmortem.end_ns - postmortem.start_ns) // SECOND_NS),
        "generated_at": rfc3339(postmortem.generated_at_ns),
        "mitigation": None
        if mitigation is None
        else {
            "at": rfc3339(mitigation.at_ns),
            "time_to_mitigate": format_duration((mitigation.at_ns - mitigation.since_ns) // SECOND_NS),
            "measured_from": mitigation.measured_from,
        },
        "first_alert": None if postmortem.first_alert_ns is None else rfc3339(postmortem.first_alert_ns),
        "impact": impact_document(postmortem.impact),
        "budgets": [_budget(budget) for budget in postmortem.budgets],
        "alerts": [transition_json(t) for t in postmortem.alerts],
    }


def _budget(budget: BudgetConsumed) -> dict[str, Any]:
    return {
        "slo": budget.slo,
        "objective": budget.objective,
        "sli": budget.sli,
        "window": budget.window,
        "period_start": rfc3339(budget.period_start_ns),
        "observed_seconds": None if budget.observed_seconds is None else round(budget.observed_seconds, 3),
        "covers": None
        if budget.observed_seconds is None
        else budget_covers(budget.observed_seconds, budget.state_covers_period, budget.window),
        "segments": [
            {
                "segment": dict(s.segment),
                "events_in_incident": s.events_in_incident,
                "bad_in_incident": s.bad_in_incident,
                "allowed_bad_in_period": s.allowed_bad_in_period,
                "budget_consumed": s.budget_consumed,
                "budget_text": None if s.budget_consumed is None else budget_spent(s.budget_consumed),
            }
            for s in budget.segments
        ],
    }


def _figures(figures: ImpactFigures) -> dict[str, Any]:
    events = figures.events
    latency = figures.latency_ms
    return {
        "events": {"total": events.total, "good": events.good, "bad": events.bad},
        "success_ratio": figures.success_ratio,
        "users": bounds_json(figures.users),
        "impacted_users": bounds_json(figures.impacted_users),
        "revenue_at_risk": figures.revenue_at_risk,
        "latency_ms": {"p50": latency.p50, "p95": latency.p95, "p99": latency.p99},
        "latency_met": _latency_met(figures.latency_met),
        "attribution": attribution_json(figures.attribution),
    }


def attribution_document(
    task: str, window: str, start_ns: int, end_ns: int, rows: list[AttributionRow], edges: Sequence[Edge] = ()
) -> dict[str, Any]:
    """The answer of ``GET /api/v1/attribution``: the task's attribution overall, by service, by
    service and route, and by service edge (calls whose caller had the customer), each list worst
    coverage first."""
    services: dict[str, list[int]] = {}
    total = [0, 0, 0]
    for row in rows:
        counts = services.setdefault(row.service, [0, 0, 0])
        for index, value in enumerate(_counts(row.attribution)):
            counts[index] += value
            total[index] += value
    by_service = [(service, Attribution(*counts)) for service, counts in services.items()]
    by_service.sort(key=lambda item: (item[1].coverage or 0.0, -item[1].events_without_customer))
    return {
        "task": task,
        "window": window,
        "start": _iso(start_ns),
        "end": _iso(end_ns),
        "attribution": attribution_json(Attribution(*total)),
        "services": [{"service": service, **attribution_json(counts)} for service, counts in by_service],
        "routes": [{"service": row.service, "route": row.route, **attribution_json(row.attribution)} for row in rows],
        "edges": [edge_json(edge) for edge in edges],
    }


def edge_json(edge: Edge) -> dict[str, Any]:
    """One caller → callee edge: children that kept the customer, children that lost it."""
    return {
        "caller": edge.caller,
        "callee": edge.callee,
        "children_with_customer": edge.children_with_customer,
        "children_without_customer": edge.children_without_customer,
        "coverage": edge.coverage,
    }


def _counts(attribution: Attribution) -> tuple[int, int, int]:
    return (
        attribution.events_with_customer,
        attribution.events_without_customer,
        attribution.bad_events_without_customer,
    )


def attribution_json(attribution: Attribution) -> dict[str, Any]:
    """How many events carry the customer: ``coverage`` is their share (``None`` without events)."""
    return {
        "events_with_customer": attribution.events_with_customer,
        "events_without_customer": attribution.events_without_customer,
        "coverage": attribution.coverage,
        "bad_events_without_customer": attribution.bad_events_without_customer,
    }


def _latency_met(met: Mapping[float, int]) -> dict[str, int]:
    return {format(threshold, "g"): count for threshold, count in met.items()}


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z")
