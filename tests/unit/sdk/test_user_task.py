from __future__ import annotations

import asyncio

import pytest
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import otel_impact
from otel_impact import ImpactSpanProcessor


@pytest.fixture
def tracer(provider: TracerProvider, hash_key: str) -> trace.Tracer:
    provider.add_span_processor(ImpactSpanProcessor())
    return provider.get_tracer("test")


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def attrs(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


def test_task_root_and_children(provider: TracerProvider, tracer: trace.Tracer, exporter: InMemorySpanExporter) -> None:
    with otel_impact.user_task("checkout", value=42.5, tracer_provider=provider):
        assert baggage.get_baggage("impact.task.name") == "checkout"
        with tracer.start_as_current_span("db"):
            pass
    (root,) = spans_named(exporter, "checkout")
    (child,) = spans_named(exporter, "db")
    assert attrs(root) | {} == {
        "impact.task.name": "checkout",
        "impact.task.root": True,
        "impact.task.outcome": "success",
        "impact.task.value": 42.5,
    }
    assert attrs(child) == {"impact.task.name": "checkout", "impact.task.root": False}
    assert child.parent is not None and child.parent.span_id == root.context.span_id  # type: ignore[union-attr]
    assert baggage.get_baggage("impact.task.name") is None


def test_exception_means_failure_and_is_reraised(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    with pytest.raises(KeyError), otel_impact.user_task("checkout", tracer_provider=provider):
        raise KeyError("secret-customer-42")
    (root,) = spans_named(exporter, "checkout")
    assert attrs(root)["impact.task.outcome"] == "failure"
    assert attrs(root)["error.type"] == "KeyError"
    assert root.status.status_code is StatusCode.ERROR
    assert "secret-customer-42" not in (root.status.description or "")


def test_explicit_outcome_wins(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    with otel_impact.user_task("checkout", tracer_provider=provider) as task:
        task.fail("payment_declined")
        task.set_value(10)
    with pytest.raises(ValueError), otel_impact.user_task("search", tracer_provider=provider) as task:
        task.succeed()
        raise ValueError("handled downstream")
    (checkout,) = spans_named(exporter, "checkout")
    (search,) = spans_named(exporter, "search")
    assert attrs(checkout)["impact.task.outcome"] == "failure"
    assert attrs(checkout)["error.type"] == "payment_declined"
    assert attrs(checkout)["impact.task.value"] == 10.0
    assert attrs(search)["impact.task.outcome"] == "success"


def test_decorator_sync_and_current_task(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    @otel_impact.user_task("upload", tracer_provider=provider)
    def upload(ok: bool) -> str:
        task = otel_impact.current_task()
        assert task is not None and task.name == "upload"
        if not ok:
            task.fail("quota")
        return "done"

    assert upload(True) == "done"
    assert upload(False) == "done"
    assert upload.__name__ == "upload"
    outcomes = [attrs(s)["impact.task.outcome"] for s in spans_named(exporter, "upload")]
    assert outcomes == ["success", "failure"]
    assert otel_impact.current_task() is None


def test_decorator_async(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    @otel_impact.user_task("search", value=1, tracer_provider=provider)
    async def search(fail: bool) -> int:
        await asyncio.sleep(0)
        if fail:
            raise RuntimeError("boom")
        return 7

    async def main() -> None:
        assert await search(False) == 7
        with pytest.raises(RuntimeError):
            await search(True)

    asyncio.run(main())
    outcomes = sorted(str(attrs(s)["impact.task.outcome"]) for s in spans_named(exporter, "search"))
    assert outcomes == ["failure", "success"]


def test_async_context_manager(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    async def main() -> None:
        async with otel_impact.user_task("checkout", tracer_provider=provider) as task:
            assert otel_impact.current_task() is task

    asyncio.run(main())
    assert attrs(spans_named(exporter, "checkout")[0])["impact.task.root"] is True


def test_nested_tasks_are_separate_roots(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    with otel_impact.user_task("checkout", tracer_provider=provider):
        with otel_impact.user_task("fraud_check", tracer_provider=provider):
            pass
    (outer,) = spans_named(exporter, "checkout")
    (inner,) = spans_named(exporter, "fraud_check")
    assert attrs(outer)["impact.task.root"] is True
    assert attrs(inner)["impact.task.root"] is True
    assert attrs(inner)["impact.task.name"] == "fraud_check"


@pytest.mark.parametrize("name", ["", 5, "x" * 200])
def test_bad_task_name_runs_the_code_without_a_task(
    provider: TracerProvider, exporter: InMemorySpanExporter, name: object
) -> None:
    ran = []
    with otel_impact.user_task(name, tracer_provider=provider):  # type: ignore[arg-type]
        ran.append(True)
    assert ran == [True]
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "12", True])
def test_bad_value_is_ignored(provider: TracerProvider, exporter: InMemorySpanExporter, value: object) -> None:
    with otel_impact.user_task("checkout", value=value, tracer_provider=provider):  # type: ignore[arg-type]
        pass
    assert "impact.task.value" not in attrs(spans_named(exporter, "checkout")[0])


def test_a_task_object_is_entered_once(provider: TracerProvider) -> None:
    task = otel_impact.user_task("checkout", tracer_provider=provider)
    with task:
        pass
    with pytest.raises(RuntimeError, match="entered once"), task:
        pass
