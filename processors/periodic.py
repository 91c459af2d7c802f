"""`Periodic`: work that runs every few seconds on the service's event loop until it is stopped.

Used by the components that live as long as the service (the SLI engine's tick, the OTLP metrics
export). An exception from the work is logged with the component's name and the loop goes on: a
failed checkpoint or export never stops intake, and the next round tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable

__all__ = ["Periodic"]

logger = logging.getLogger("otel_impact.processor")


class Periodic:
    """Calls ``work`` every ``interval`` seconds, first after one interval, from `start` to `stop`.

    ``work`` may be a plain or an async function. `stop` is safe before `start` and twice.
    """

    def __init__(self, name: str, interval: float, work: Callable[[], Awaitable[None] | None]) -> None:
        if interval <= 0:
            raise ValueError(f"{name}: interval must be positive, got {interval!r}")
        self.name = name
        self.interval = interval
        self.work = work
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the loop on the running event loop (once; a second call does nothing)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                result = self.work()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("otel-impact: %s failed; trying again in %gs", self.name, self.interval)

    async def stop(self) -> None:
        """Cancel the loop and wait until it has ended (a round in progress is cancelled)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
