"""Alert delivery: Alertmanager v2 and generic JSON webhooks, off the intake path.

`AlertDispatcher.submit` never waits: it puts notifications into one bounded queue per
receiver and returns. Each receiver has its own worker task, so a slow or failing receiver
delays only itself, never span intake or the other receivers.

Per receiver:

- the queue holds at most ``queue_size`` distinct alerts; a newer state of an alert already
  queued replaces it (counted as *superseded*, not lost: the newer state goes out);
- a notification arriving when the queue is full is dropped, counted and logged;
- a send that fails with a connection error, a timeout, 408, 429 or 5xx is retried per the
  processor's one retry policy (`otel_impact.processors.retry`): exponential backoff from
  ``initial_backoff`` doubling to ``max_backoff`` with ±20% jitter, a ``Retry-After`` (seconds
  or an HTTP-date) honoured, until ``max_elapsed`` has passed (0: no retries); then it is
  counted as *failed* and logged. Any other 4xx is *rejected* at once (retrying cannot help)
  and logged with the receiver's reason.

Time comes from the injected clock and waits from the injected ``sleep``, so tests run the
backoff without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import aiohttp
from yarl import URL

from otel_impact.processors.clock import Clock
from otel_impact.processors.retry import Backoff, BackoffPolicy, parse_retry_after

from .alerting_config import AlertingConfig, DeliveryConfig
from .alerts import Notification

__all__ = [
    "AlertDispatcher",
    "AlertSink",
    "AlertmanagerReceiver",
    "DeliveryStats",
    "Receiver",
    "SendResult",
    "WebhookReceiver",
    "receivers_from_config",
]

logger = logging.getLogger("otel_impact.slo.delivery")

Sleep = Callable[[float], Awaitable[None]]
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class SendResult:
    """The outcome of one POST: ``ok``, or why not and whether retrying may help."""

    ok: bool
    retryable: bool = False
    reason: str = ""
    retry_after: float | None = None


class AlertSink(Protocol):
    """Where the engine hands notifications: `AlertDispatcher`, or a recorder in tests."""

    def submit(self, notifications: Iterable[Notification]) -> None: ...

    def stats(self) -> dict[str, dict[str, int]]: ...

    async def start(self) -> None: ...

    async def aclose(self, timeout: float = 5.0) -> None: ...


class Receiver(Protocol):
    """Somewhere alerts go. ``send`` must not raise: it reports failures as a `SendResult`."""

    name: str

    async def send(self, session: aiohttp.ClientSession, batch: Sequence[Notification]) -> SendResult: ...


async def _post_json(
    session: aiohttp.ClientSession, url: str, body: object, timeout: float, headers: Mapping[str, str] | None = None
) -> SendResult:
    try:
        async with session.post(
            url, json=body, headers=dict(headers or {}), timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            if 200 <= response.status < 300:
                return SendResult(ok=True)
            text = (await response.text(errors="replace"))[:300].strip()
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return SendResult(
                ok=False,
                retryable=response.status in _RETRYABLE_STATUS,
                reason=f"HTTP {response.status}: {text}" if text else f"HTTP {response.status}",
                retry_after=retry_after,
            )
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
        return SendResult(ok=False, retryable=True, reason=f"{type(error).__name__}: {error}".rstrip(": "))


def _loggable(url: str) -> str:
    """``url`` without credentials or query string (either may hold a secret), for names and logs."""
    try:
        parsed = URL(url)
        return str(parsed.with_user(None).with_password(None).with_query(None).with_fragment(None))
    except (ValueError, TypeError):
        return "<unparsable URL>"


class AlertmanagerReceiver:
    """Posts to Alertmanager's ``/api/v2/alerts``; ``url`` is its base URL."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.name = f"alertmanager {_loggable(self.url)}"
        self.timeout = timeout

    async def send(self, session: aiohttp.ClientSession, batch: Sequence[Notification]) -> SendResult:
        body = [notification.alertmanager_json() for notification in batch]
        return await _post_json(session, f"{self.url}/api/v2/alerts", body, self.timeout)


class WebhookReceiver:
    """Posts ``{"version": "1", "source": "otel-impact", "alerts": [...]}`` to ``url``.

    Each alert has ``status``, ``fingerprint``, ``labels``, ``annotations``, ``startsAt``,
    ``endsAt`` and the structured ``slo`` and ``impact`` objects. ``headers`` (for example an
    Authorization token) are sent as given and never logged.
    """

    def __init__(self, url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 5.0) -> None:
        self.url = url
        self.name = f"webhook {_loggable(url)}"
        self.headers = dict(headers or {})
        self.timeout = timeout

    async def send(self, session: aiohttp.ClientSession, batch: Sequence[Notification]) -> SendResult:
        body = {"version": "1", "source": "otel-impact", "alerts": [n.webhook_json() for n in batch]}
        return await _post_json(session, self.url, body, self.timeout, self.headers)


def receivers_from_config(config: AlertingConfig) -> list[Receiver]:
    """One receiver per configured Alertmanager URL and webhook."""
    timeout = config.delivery.timeout
    receivers: list[Receiver] = [AlertmanagerReceiver(url, timeout=timeout) for url in config.alertmanager_urls]
    receivers.extend(WebhookReceiver(h.url, headers=dict(h.headers), timeout=timeout) for h in config.webhooks)
    return receivers


@dataclass
class DeliveryStats:
    """Counters of one receiver (notifications, not HTTP requests, except ``retries``)."""

    submitted: int = 0
    sent: int = 0
    superseded: int = 0
    dropped_overflow: int = 0
    rejected: int = 0
    failed: int = 0
    retries: int = 0
    queued: int = 0


def _backoff_policy(config: DeliveryConfig) -> BackoffPolicy:
    """The delivery settings as the shared retry policy: doubling waits with ±20% jitter."""
    return BackoffPolicy(
        initial_interval=config.initial_backoff,
        max_interval=config.max_backoff,
        max_elapsed_time=config.max_elapsed,
        multiplier=2.0,
        randomization_factor=0.2,
    )


class _ReceiverQueue:
    """The bounded, coalescing queue and the worker of one receiver."""

    def __init__(self, receiver: Receiver, config: DeliveryConfig, clock: Clock, sleep: Sleep, rng: random.Random):
        self.receiver = receiver
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.backoff = Backoff(_backoff_policy(config), rng)
        self.stats = DeliveryStats()
        self.pending: dict[str, Notification] = {}
        self.wakeup = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.closing = False

    def submit(self, notification: Notification) -> None:
        self.stats.submitted += 1
        key = notification.fingerprint
        if key in self.pending:
            self.stats.superseded += 1
            del self.pending[key]  # re-inserted at the end: the newest state goes last
        elif len(self.pending) >= self.config.queue_size:
            self.stats.dropped_overflow += 1
            if self.stats.dropped_overflow == 1 or self.stats.dropped_overflow % 100 == 0:
                logger.warning(
                    "alert queue of %s is full (%d alerts): dropped %d notification(s) so far",
                    self.receiver.name,
                    self.config.queue_size,
                    self.stats.dropped_overflow,
                )
            return
        self.pending[key] = notification
        self.stats.queued = len(self.pending)
        self.idle.clear()
        self.wakeup.set()

    def _take(self) -> list[Notification]:
        keys = list(self.pending)[: self.config.max_batch]
        batch = [self.pending.pop(key) for key in keys]
        self.stats.queued = len(self.pending)
        return batch

    async def run(self, session: aiohttp.ClientSession) -> None:
        while True:
            if not self.pending:
                self.idle.set()
                if self.closing:
                    return
                self.wakeup.clear()
                await self.wakeup.wait()
                continue
            await self._deliver(session, self._take())

    async def _deliver(self, session: aiohttp.ClientSession, batch: list[Notification]) -> None:
        started = self.clock.monotonic()
        attempt = 1
        while True:
            result = await self.receiver.send(session, batch)
            if result.ok:
                self.stats.sent += len(batch)
                if attempt > 1:
                    logger.info("%s accepted alerts again after %d attempts", self.receiver.name, attempt)
                return
            if not result.retryable:
                self.stats.rejected += len(batch)
                logger.error("%s rejected %d alert(s): %s", self.receiver.name, len(batch), result.reason)
                return
            wait = self.backoff.next_wait(attempt - 1, self.clock.monotonic() - started, result.retry_after)
            if self.closing or wait is None or self.config.max_elapsed <= 0:
                self.stats.failed += len(batch)
                logger.error(
                    "giving up on %d alert(s) for %s after %d attempts: %s",
                    len(batch),
                    self.receiver.name,
                    attempt,
                    result.reason,
                )
                return
            if attempt == 1:
                logger.warning("%s failed (%s); retrying with backoff", self.receiver.name, result.reason)
            self.stats.retries += 1
            await self.sleep(wait)
            attempt += 1
            fresh = [n for n in batch if n.fingerprint not in self.pending]
            self.stats.superseded += len(batch) - len(fresh)
            batch = fresh
            if not batch:
                return


class AlertDispatcher:
    """Fans notifications out to every receiver, each through its own queue and worker.

    Call `start` on the event loop that will run the workers, `submit` from that loop
    (it never blocks), and `aclose` at shutdown: it lets the workers try what is queued for
    up to ``timeout`` seconds, without further retries, then stops them.
    """

    def __init__(
        self,
        receivers: Iterable[Receiver],
        config: DeliveryConfig,
        clock: Clock,
        *,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._queues = [_ReceiverQueue(r, config, clock, sleep, rng or random.Random()) for r in receivers]
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self._session is not None:
            return
        self._session = aiohttp.ClientSession()
        self._tasks = [
            asyncio.create_task(queue.run(self._session), name=queue.receiver.name) for queue in self._queues
        ]

    def submit(self, notifications: Iterable[Notification]) -> None:
        """Queue notifications for every receiver; returns at once."""
        batch = list(notifications)
        for queue in self._queues:
            for notification in batch:
                queue.submit(notification)

    async def wait_idle(self) -> None:
        """Wait until every queue is empty and no send is in flight (tests, shutdown)."""
        for queue in self._queues:
            await queue.idle.wait()

    async def aclose(self, timeout: float = 5.0) -> None:
        for queue in self._queues:
            queue.closing = True
            queue.wakeup.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters per receiver name."""
        return {queue.receiver.name: asdict(queue.stats) for queue in self._queues}
