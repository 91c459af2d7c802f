"""User tasks: the journeys (checkout, search, upload...) whose success is the SLI.

``user_task`` opens a task: it starts a span named after the task, marks it as the task's root
(``impact.task.root = true``), and makes the task the current one, so every span started inside
it, here and in downstream services, carries ``impact.task.name`` with ``impact.task.root =
false``. The impact processor counts one task event per root span.

On exit the root span records ``impact.task.outcome``: ``failure`` when an exception escapes,
``success`` otherwise, unless the code set the outcome explicitly with `TaskHandle.succeed` or
`TaskHandle.fail`, which always wins. Works as a context manager and as a decorator, for plain
and ``async`` functions::

    with otel_impact.user_task("checkout", value=order.total) as task:
        if not charge(order):
            task.fail("payment_declined")

    @otel_impact.user_task("search")
    async def search(query): ...

``synthetic=True`` marks the task as synthetic traffic (a probe, a check, a load test): its root
span and every span inside it, here and downstream (through baggage), carry
``impact.synthetic=true``, and the impact processor counts it apart from real users::

    with otel_impact.user_task("checkout", synthetic=True):
        ...
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, TypeVar, cast

from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.trace import SpanKind, TracerProvider

from . import _attributes as attrs
from ._baggage import context_with_state
from ._log import log_once
from ._state import EMPTY_STATE, current_state, valid_task_name
from ._task_handle import TaskHandle, valid_task_value
from .version import __version__

F = TypeVar("F", bound=Callable[..., Any])

_TRACER_NAME: Final = "otel_impact"


class user_task:
    """Open a user task; a context manager (sync and async) and a decorator.

    ``name`` is the task (low cardinality: ``checkout``, not ``checkout-order-123``). ``value``
    is the money at stake. ``synthetic`` marks synthetic traffic (``impact.synthetic=true``); a
    task opened inside a synthetic request (or task) is synthetic whatever ``synthetic`` says.
    An invalid name or value is ignored and logged once; the code inside runs regardless.
    Exceptions are recorded and re-raised, never swallowed.
    """

    def __init__(
        self,
        name: str,
        *,
        value: float | None = None,
        synthetic: bool = False,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._name = name
        self._value = value
        self._synthetic = bool(synthetic)
        self._tracer_provider = tracer_provider
        self._handle: TaskHandle | None = None
        self._token: object | None = None

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> TaskHandle:
        return self._open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._close(exc)

    async def __aenter__(self) -> TaskHandle:
        return self._open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._close(exc)

    # -- decorator ---------------------------------------------------------------------------
    def __call__(self, func: F) -> F:
        name, value, synthetic, provider = self._name, self._value, self._synthetic, self._tracer_provider
        if inspect.iscoroutinefunction(func):
            async_func = cast(Callable[..., Awaitable[Any]], func)

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with user_task(name, value=value, synthetic=synthetic, tracer_provider=provider):
                    return await async_func(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with user_task(name, value=value, synthetic=synthetic, tracer_provider=provider):
                return func(*args, **kwargs)

        return cast(F, run)

    # -- internals ---------------------------------------------------------------------------
    def _open(self) -> TaskHandle:
        if self._handle is not None:
            raise RuntimeError("a user_task object can be entered once; make a new one per use")
        name = valid_task_name(self._name)
        value = valid_task_value(self._value) if self._value is not None else None
        tracer = trace.get_tracer(_TRACER_NAME, __version__, tracer_provider=self._tracer_provider)
        if name is None:
            log_once(
                "user_task:name",
                logging.WARNING,
                "otel-impact: user_task() got a name that is not a string of 1 to %d printable characters; "
                "the code runs without a task.",
                attrs.MAX_TASK_NAME_LENGTH,
            )
            handle = TaskHandle("", trace.INVALID_SPAN, value)
            self._handle = handle
            return handle
        state = current_state() or EMPTY_STATE
        if self._synthetic:
            state = state.as_synthetic()
        span = tracer.start_span(name, context=context_with_state(state.with_task(name, None)), kind=SpanKind.INTERNAL)
        handle = TaskHandle(name, span, value)
        task_context = context_with_state(state.with_task(name, handle))
        if span.is_recording():  # its own marks, whether or not an ImpactSpanProcessor is installed
            marks: dict[str, str | bool] = {attrs.TASK_NAME: name, attrs.TASK_ROOT: True}
            if state.synthetic:
                marks[attrs.SYNTHETIC] = True
            span.set_attributes(marks)
        self._token = context_api.attach(trace.set_span_in_context(span, task_context))
        self._handle = handle
        return handle

    def _close(self, exc: BaseException | None) -> None:
        handle = self._handle
        token, self._token = self._token, None
        try:
            if handle is not None:
                handle._finish(exc)
        finally:
            if token is not None:
                context_api.detach(token)  # type: ignore[arg-type]


def current_task() -> TaskHandle | None:
    """The innermost task open in the current context, or ``None``."""
    state = current_state()
    return None if state is None else state.task_handle
