"""How the routes ask their questions: `Answers.run(question)`.

A question is a function of the queries (``lambda q: q.impact(...)``). `LocalAnswers` asks the
processor's own SLI state on the event loop (that state is only ever touched there). Under
shared state, the assembly passes an `Answers` that asks Redis from a worker thread, so the
event loop never waits on it, and falls back to the local state when Redis cannot answer.

A question no source can answer raises `AnswerUnavailable`; the admin server turns it into
HTTP 503 with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from otel_impact.processors.impact_queries import AnswerUnavailable, ImpactQueries, TopCustomers

__all__ = ["AnswerQueries", "AnswerUnavailable", "Answers", "LocalAnswers"]

T = TypeVar("T")


class AnswerQueries(ImpactQueries, Protocol):
    """The `ImpactQueries` contract plus what the routes also ask."""

    def top_customers(
        self, task: str, start_ns: int, end_ns: int, *, limit: int = 10, where: Mapping[str, str] | None = None
    ) -> TopCustomers: ...


class Answers(Protocol):
    async def run(self, question: Callable[[AnswerQueries], T]) -> T:
        """The answer of ``question``, asked of the best source there is."""
        ...


class LocalAnswers:
    """Asks ``queries`` directly, on the event loop."""

    def __init__(self, queries: AnswerQueries) -> None:
        self.queries = queries

    async def run(self, question: Callable[[AnswerQueries], T]) -> T:
        return question(self.queries)
