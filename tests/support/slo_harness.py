"""Helpers for driving the SLO engine in tests: a minute-aligned manual clock, a dispatcher that
records what the engine would send, and steady traffic histories."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from otel_impact.processors.clock import ManualClock
from otel_impact.processors.slo.alerting_config import AlertingConfig
from otel_impact.processors.slo.alerts import Notification
from otel_impact.processors.slo.config import SloConfig
from otel_impact.processors.slo.engine import SloEngine
from support.impact_store import MINUTE_NS, InMemoryImpactStore

T0 = 28_333_333 * 60 * 1_000_000_000
"""A minute-aligned instant (2023-11-14T22:13:00Z) where scenarios start."""

MINUTE = 60.0
DAY_NS = 86400 * 1_000_000_000


class RecordingDispatcher:
    """Stands in for `AlertDispatcher` in unit tests: keeps every submitted notification."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def submit(self, notifications: Iterable[Notification]) -> None:
        self.sent.extend(notifications)

    def stats(self) -> dict[str, dict[str, int]]:
        return {"recording": {"sent": len(self.sent)}}

    async def start(self) -> None:
        return None

    async def aclose(self, timeout: float = 5.0) -> None:
        return None

    def take(self) -> list[Notification]:
        sent, self.sent = self.sent, []
        return sent


def make_engine(
    store: InMemoryImpactStore,
    slos: Sequence[SloConfig],
    *,
    alerting: AlertingConfig | None = None,
    start_ns: int = T0,
) -> tuple[SloEngine, ManualClock, RecordingDispatcher]:
    clock = ManualClock(start_ns=start_ns)
    dispatcher = RecordingDispatcher()
    engine = SloEngine(slos, alerting or AlertingConfig(), store, clock=clock, dispatcher=dispatcher)
    return engine, clock, dispatcher


def steady_history(
    store: InMemoryImpactStore,
    task: str,
    *,
    until_ns: int = T0,
    days: int = 3,
    per_minute: int = 1000,
    older_good: int = 38_880_000,
    older_bad: int = 0,
    segment: dict[str, str] | None = None,
) -> None:
    """``per_minute`` good events in every minute of the ``days`` before ``until_ns``, plus one
    bucket 10 days earlier holding ``older_good`` + ``older_bad`` events: the rest of a 30-day
    period's traffic (by default 30 days at 1000/min = 43.2M events in all)."""
    store.traffic(task, until_ns - days * DAY_NS, days * 1440, good=per_minute, segment=segment)
    if older_good or older_bad:
        store.add(task, until_ns - 10 * DAY_NS, good=older_good, bad=older_bad, segment=segment)


def at(clock: ManualClock, minutes_after_t0: float) -> None:
    """Move the clock to ``T0 + minutes`` (forward only)."""
    target = T0 + int(minutes_after_t0 * MINUTE_NS)
    assert target >= clock.now_ns(), "the clock only moves forward"
    clock.advance((target - clock.now_ns()) / 1e9)


def segment_doc(snapshot: dict[str, Any], slo: str, **segment: str) -> dict[str, Any]:
    """The snapshot entry of one SLO segment."""
    (doc,) = [s for s in snapshot["slos"] if s["name"] == slo]
    (found,) = [s for s in doc["segments"] if s["segment"] == segment]
    return found
