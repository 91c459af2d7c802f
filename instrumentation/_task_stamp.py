"""Stamping the tasks of ``OTEL_IMPACT_TASKS`` on server spans, at response time.

The route is often known only once the framework matched it (Django sets ``http.route`` after
``process_request``), so the request phase only opens a `TaskProbe` and the response phase,
before the server span ends, matches ``(method, http.route)`` (gRPC: the full method) and stamps
``impact.task.name``, ``impact.task.root=true`` and ``impact.task.outcome`` on the server span.

**Code wins.** The probe sits in the request's context; `TaskProbeProcessor` marks it when a span
starts in that context inside a task (an explicit ``user_task`` in the handler). Such a request,
and a server span that already carries a task (a trusted caller's), is left as the code made it.

Nothing here runs, and `TaskProbeProcessor` is not installed, while ``OTEL_IMPACT_TASKS`` names
no task: the hooks test one module global. Nothing here raises into the request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry import context as context_api
from opentelemetry.context import Context, create_key, get_current
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import Span, SpanKind

from otel_impact import _attributes as attrs
from otel_impact._log import log_once
from otel_impact._state import STATE_KEY

from .tasks import TaskRules

PROBE_KEY = create_key("otel-impact-task-probe")
CARRIER_KEY = "otel_impact.task_probe"
"""Where the probe is kept in a WSGI environ or ASGI scope (Django: an attribute of the request)."""

HTTP_ROUTE = "http.route"

rules: TaskRules | None = None
"""The compiled ``OTEL_IMPACT_TASKS``; ``None`` while no task is named (the hooks' fast path)."""


def install_rules(new: TaskRules | None) -> None:
    """Use ``new`` from now on (``None`` or rules naming no task: stamp nothing)."""
    global rules
    rules = new if new is not None and new.active else None


class TaskProbe:
    """One request's watch for an explicit task: its server span and whether code opened a task."""

    __slots__ = ("done", "explicit", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.explicit = False
        self.done = False


def open_probe(span: Span) -> TaskProbe:
    """A probe for the request served by ``span``, put in the current context.

    The layer is undone with the instrumentation's own context (as the attribution's is).
    """
    probe = TaskProbe(span)
    context_api.attach(context_api.set_value(PROBE_KEY, probe))
    return probe


def open_carried_probe(span: Span, carrier: object) -> None:
    """`open_probe`, kept in ``carrier`` (a WSGI environ, an ASGI scope) for the response phase. Never raises."""
    try:
        probe = open_probe(span)
        if isinstance(carrier, dict):
            carrier[CARRIER_KEY] = probe
    except Exception as error:
        _failed(error)


class TaskProbeProcessor(SpanProcessor):
    """Marks the request's `TaskProbe` when a span starts inside a task in that request.

    ``on_start`` runs on the thread starting the span: two dictionary lookups, no lock, no I/O,
    never raises. Installed only when ``OTEL_IMPACT_TASKS`` names a task.
    """

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        ctx = parent_context if parent_context is not None else get_current()
        probe: TaskProbe | None = ctx.get(PROBE_KEY)  # type: ignore[assignment]
        if probe is None or probe.explicit:
            return
        state = ctx.get(STATE_KEY)
        if state is not None and getattr(state, "task", None) is not None:
            probe.explicit = True


def finish_http(probe: TaskProbe | None, method: object, status: int | None) -> None:
    """Response phase of an HTTP request: stamp its server span when a rule names its task. Never raises."""
    current = rules
    if current is None or probe is None:
        return
    try:
        attributes = _claimable(probe)
        if attributes is None:
            return
        route = attributes.get(HTTP_ROUTE)
        if not isinstance(route, str) or not isinstance(method, str):
            return
        name = current.match_http(method, route)
        if name is not None:
            failed = None if status is None else current.failure.http_failed(status)
            _stamp(probe.span, name, failed)
    except Exception as error:
        _failed(error)


def finish_grpc(probe: TaskProbe | None, name: str, code: str | None) -> None:
    """Response phase of an RPC whose task is ``name``: stamp its server span with the outcome of
    status ``code`` (``None``: unknown). Never raises."""
    current = rules
    if current is None or probe is None:
        return
    try:
        if _claimable(probe) is not None:
            _stamp(probe.span, name, None if code is None else current.failure.grpc_failed(code))
    except Exception as error:
        _failed(error)


def _claimable(probe: TaskProbe) -> Mapping[str, object] | None:
    """The server span's attributes, or ``None`` when the env rules must leave it alone."""
    if probe.done or probe.explicit:
        return None
    probe.done = True
    span = probe.span
    if not span.is_recording() or getattr(span, "kind", None) is not SpanKind.SERVER:
        return None
    attributes: Mapping[str, object] = getattr(span, "attributes", None) or {}
    if attrs.TASK_NAME in attributes:
        return None  # already inside a task: it keeps it
    return attributes


def _stamp(span: Span, name: str, failed: bool | None) -> None:
    stamped: dict[str, str | bool] = {attrs.TASK_NAME: name, attrs.TASK_ROOT: True}
    if failed is not None:
        stamped[attrs.TASK_OUTCOME] = attrs.OUTCOME_FAILURE if failed else attrs.OUTCOME_SUCCESS
    span.set_attributes(stamped)


def http_status(status: object) -> int | None:
    """The code of a WSGI status line (``"500 INTERNAL SERVER ERROR"``) or an int status, or ``None``."""
    if isinstance(status, int):
        return status
    if isinstance(status, str) and status[:3].isdigit():
        return int(status[:3])
    return None


def _failed(error: Exception) -> None:
    log_once(
        f"tasks:{type(error).__name__}",
        logging.ERROR,
        "otel-impact: naming a task from OTEL_IMPACT_TASKS failed (%s); the request is not counted as a task.",
        type(error).__name__,
    )
