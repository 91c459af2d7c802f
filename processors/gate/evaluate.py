"""Evaluating the gate against the SLI engine: canary and baseline segments over one window."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from otel_impact.processors.impact_queries import ImpactQueries
from otel_impact.processors.proportions import Proportion

from ._verdict import GatePolicy, GateResult, SignalResult, Verdict, compare


class GateError(ValueError):
    """The gate cannot be evaluated as asked (unknown task or dimension, malformed selector)."""


@dataclass(frozen=True)
class Selector:
    """One side of the comparison: ``dimension=value`` as the user typed it, and the resolved dimension."""

    text: str
    dimension: str
    value: str


def parse_selector(text: str, resolve: Callable[[str], str], *, side: str) -> Selector:
    """``service.version=1.5`` → a `Selector`; ``resolve`` maps what the user typed to a dimension.

    The dimension may be given by its name (``tier``), as ``flag:<key>``, or by the attribute it
    reads (``service.version``). Raises `GateError` naming the side and the fix.
    """
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value:
        raise GateError(f"{side} {text!r} is not DIMENSION=VALUE, e.g. service.version=1.5 or flag:new_checkout=on")
    try:
        dimension = resolve(name.strip())
    except ValueError as error:
        raise GateError(f"{side}: {error}; add it to sli.dimensions to gate on it") from None
    return Selector(text=f"{name.strip()}={value}", dimension=dimension, value=value)


def evaluate(
    queries: ImpactQueries,
    task: str,
    baseline: Selector,
    canary: Selector,
    start_ns: int,
    end_ns: int,
    *,
    window: str,
    policy: GatePolicy,
    latency_threshold: float | None = None,
) -> GateResult:
    """Compare the canary's failures with the baseline's: task success and, when the task counts
    one, a latency threshold (``latency_threshold`` or the task's smallest).

    An incomplete window (`ImpactQueries.window_completeness`: the processor's state is
    younger than the window, or telemetry loss is detected) makes every signal inconclusive,
    with the reason in the answer: missing spans would make either side look better than it
    is. Raises `GateError` for an unknown task or threshold.
    """
    if task not in queries.tasks():
        known = ", ".join(queries.tasks()) or "none yet"
        raise GateError(f"unknown task {task!r}; known tasks: {known}")
    thresholds = sorted(queries.latency_thresholds(task))
    if latency_threshold is not None and latency_threshold not in thresholds:
        shown = ", ".join(f"{t:g}s" for t in thresholds) or "none"
        raise GateError(f"latency threshold {latency_threshold:g}s is not counted for {task!r} (counted: {shown})")
    threshold = latency_threshold if latency_threshold is not None else (thresholds[0] if thresholds else None)

    def counts(side: Selector) -> tuple[int, int, int]:
        answer = queries.counts(task, start_ns, end_ns, where={side.dimension: side.value})
        got = answer.get(())
        if got is None:
            return 0, 0, 0
        met = got.latency_met.get(threshold, got.total) if threshold is not None else got.total
        return got.total, got.bad, got.total - met

    c_total, c_bad, c_slow = counts(canary)
    b_total, b_bad, b_slow = counts(baseline)
    signals = [
        compare(
            "success", Proportion(c_bad, c_total), Proportion(b_bad, b_total), policy.max_success_degradation, policy
        )
    ]
    if threshold is not None:
        signals.append(
            compare(
                f"latency <= {threshold:g}s",
                Proportion(c_slow, c_total),
                Proportion(b_slow, b_total),
                policy.max_latency_degradation,
                policy,
            )
        )
    completeness = queries.window_completeness(task, start_ns, end_ns)
    reason = None
    if not completeness.complete:
        signals = [_inconclusive(s) for s in signals]
        reason = completeness.reason or "the window's telemetry is incomplete"
    return GateResult(
        task,
        window,
        baseline.text,
        canary.text,
        policy,
        tuple(signals),
        telemetry_reason=reason,
        observed_seconds=completeness.observed_seconds,
    )


def _inconclusive(signal: SignalResult) -> SignalResult:
    return SignalResult(
        signal.signal,
        Verdict.INCONCLUSIVE,
        signal.canary,
        signal.baseline,
        signal.difference,
        signal.lower,
        signal.upper,
        signal.tolerance,
    )
