"""`TaskHandle`: an open user task, as `user_task` hands it out and `ImpactState` refers to it.

It sits below the state, the baggage and `user_task`, and imports none of them, so that
imports among them go one way: ``_task`` → ``_baggage`` → ``_state`` → ``_task_handle``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from . import _attributes as attrs
from ._log import log_once


class TaskHandle:
    """An open task. Set its outcome or value while it runs.

    ``outcome`` is ``None`` until set explicitly or until the task ends.
    """

    __slots__ = ("_error_type", "_outcome", "_value", "name", "span")

    def __init__(self, name: str, span: trace.Span, value: float | None) -> None:
        self.name = name
        self.span = span
        self._outcome: str | None = None
        self._error_type: str | None = None
        self._value = value

    @property
    def outcome(self) -> str | None:
        return self._outcome

    @property
    def value(self) -> float | None:
        return self._value

    def succeed(self) -> None:
        """Mark the task successful, whatever happens next."""
        self._outcome = attrs.OUTCOME_SUCCESS
        self._error_type = None

    def fail(self, error_type: str | None = None) -> None:
        """Mark the task failed. ``error_type`` (low cardinality, no user data) goes to ``error.type``."""
        self._outcome = attrs.OUTCOME_FAILURE
        self._error_type = error_type if isinstance(error_type, str) and error_type else None

    def set_value(self, value: float) -> None:
        """Money at stake in this task, reported as revenue at risk if it fails."""
        checked = valid_task_value(value)
        if checked is not None:
            self._value = checked

    def _finish(self, exc: BaseException | None) -> None:
        span = self.span
        outcome = self._outcome
        if outcome is None:
            outcome = attrs.OUTCOME_FAILURE if exc is not None else attrs.OUTCOME_SUCCESS
        if not span.is_recording():
            span.end()
            return
        if exc is not None:
            span.record_exception(exc)
        finished: dict[str, Any] = {attrs.TASK_OUTCOME: outcome}
        if self._value is not None:
            finished[attrs.TASK_VALUE] = self._value
        if outcome == attrs.OUTCOME_FAILURE:
            error_type = self._error_type or (type(exc).__qualname__ if exc is not None else None)
            if error_type:
                finished[attrs.ERROR_TYPE] = error_type
            # The description names the error type only: exception messages may hold user data.
            span.set_status(Status(StatusCode.ERROR, error_type or "task failed"))
        span.set_attributes(finished)
        span.end()


def valid_task_value(value: object) -> float | None:
    """``value`` as a float when it is a finite number, else ``None`` (logged once)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        log_once(
            "user_task:value",
            logging.WARNING,
            "otel-impact: a task value must be a finite number; it was ignored.",
        )
        return None
    return float(value)
