"""Where the routes ask about synthetic traffic: `SyntheticSource`.

Synthetic questions go to the synthetic state: this replica's own (`LocalAnswers`), or, under
shared state, the synthetic state every replica flushes to Redis under its own key prefix
(``<key_prefix>:synthetic``), with the same fallback to this replica's state as real answers.
A task that real users know but no probe ever ran has no synthetic state yet: it is made known
to this replica's synthetic state (on the event loop), whose answers are then empty, so both
traffics answer for the same tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TypeVar

from otel_impact.processors.answers import AnswerQueries, Answers, LocalAnswers
from otel_impact.processors.sli.queries import SliQueries
from otel_impact.processors.sli.synthetic_queries import NO_EVENTS, SyntheticSummary, summary_of

__all__ = ["SyntheticSource"]

T = TypeVar("T")


@dataclass(frozen=True)
class SyntheticSource:
    """The synthetic state's queries on this replica (``local``) and where to ask (``answers``)."""

    local: SliQueries
    answers: Answers

    @classmethod
    def of(cls, local: SliQueries | None, answers: Answers | None = None) -> SyntheticSource | None:
        """A source over ``local`` (``None`` without a synthetic state), asked through ``answers``
        (default: ``local`` on the event loop)."""
        if local is None:
            return None
        return cls(local, answers or LocalAnswers(local))

    async def ask(self, task: str, known: Collection[str], question: Callable[[AnswerQueries], T]) -> T:
        """``question`` about ``task``, of the best synthetic source. A task unknown there but in
        ``known`` (the real tasks) is asked of this replica's synthetic state once made known."""

        def asked(queries: AnswerQueries) -> T | None:
            return question(queries) if task in queries.tasks() else None

        answer = await self.answers.run(asked)
        if answer is not None:
            return answer
        engine = self.local.engine
        if task not in engine.tasks and task in known:
            engine.ensure_task(task)
        return question(self.local)  # an unknown task: the question's own error (an unknown task)

    async def summary(self, task: str, start_ns: int, end_ns: int) -> SyntheticSummary:
        """``task``'s synthetic events in ``[start_ns, end_ns)``; none when no probe ran it."""

        def counted(queries: AnswerQueries) -> SyntheticSummary | None:
            if task not in queries.tasks():
                return None
            return summary_of(queries.counts(task, start_ns, end_ns).get(()))

        return await self.answers.run(counted) or NO_EVENTS
