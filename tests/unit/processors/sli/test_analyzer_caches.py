"""The analyzer's caches stay bounded by entries and by key size, and never change an answer."""

from __future__ import annotations

from support.otlp_traces import batch, request, span

from otel_impact.processors.sli import SliConfig
from otel_impact.processors.sli.analyzer import SliAnalyzer
from otel_impact.processors.sli.state import SliState

MINUTE = 60 * 10**9
T0 = 1_800_000_000 * 10**9 // MINUTE * MINUTE
HUGE = "x" * 10_000


def analyzer(config: SliConfig | None = None) -> SliAnalyzer:
    return SliAnalyzer(SliState(config or SliConfig.from_mapping({"tasks": [{"name": "checkout"}]}), now_ns=T0))


def test_huge_values_are_counted_but_not_remembered() -> None:
    sli = analyzer()
    spans = [
        span(end_ns=T0, attributes={"impact.task.name": HUGE}),  # not a task name: too long
        span(
            end_ns=T0,
            attributes={"impact.task.name": "checkout", "impact.customer.tier": HUGE, "impact.customer.hash": HUGE},
            error=True,
        ),
    ]
    for _ in range(3):
        sli.analyze(batch(request(spans), T0))
    assert sli.errors == 0
    assert sli.state.task_events == 3
    assert set(sli.state.tasks) == {"checkout"}
    assert all(len(raw) < 1000 for raw in sli._tasks_by_raw)
    assert all(len(raw) < 1000 for raw in sli.values.user_texts)
    task = sli.state.tasks["checkout"]
    assert task.raw_keys == {}
    (series,) = task.series.values()
    assert len(series.values[0]) <= 128  # the label itself is truncated as before
    assert int(series.cumulative[1]) == 3  # bad events


def test_segment_keys_are_bounded_over_all_tasks() -> None:
    sli = analyzer(SliConfig.from_mapping({"max_series_per_task": 20_000, "max_series_total": 100_000}))
    for start in range(0, 20_000, 500):
        spans = [
            span(end_ns=T0, attributes={"impact.task.name": f"task{i % 8}", "impact.customer.tier": f"t{i}"})
            for i in range(start, start + 500)
        ]
        sli.analyze(batch(request(spans), T0))
    assert sli.errors == 0
    assert sli.state.task_events == 20_000
    held = sum(len(task.raw_keys) for task in sli.state.tasks.values())
    assert 0 < held <= 16_384
    assert all(len(task.raw_keys) <= 4096 for task in sli.state.tasks.values())
