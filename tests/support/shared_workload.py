"""A checkout workload with known truth, split across replicas that share their state.

30,000 customers (keyed pseudonyms from the SDK's own `Pseudonymizer`) in 3 tiers and 2
variants of the ``new_checkout`` flag; only ``tier=pro`` with ``new_checkout=on`` fails. Every
customer checks out twice, and a few "whales" in the failing segment retry many times, so they
top the impacted customers. A customer's checkouts go to different replicas (checkout ``k`` of
customer ``i`` goes to replica ``(i + k) % replicas``): distinct users must be united across
replicas, not added. Every tenth checkout comes with an unrelated span (no task), forwarded but
never counted. Every span id is unique, so a downstream can tell that nothing was lost.

The events end in the few minutes before the workload is built (inside the processor's
lateness), and `Workload.end_s` pins the end of the queried window, so every replica is asked
about exactly the same hour whenever the question is asked.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from opentelemetry.proto.trace.v1 import trace_pb2

from otel_impact import HashKey, Pseudonymizer
from support import sli_workload
from support.canaries import TEST_KEY_HEX
from support.otlp_traces import request, span

TASK = "checkout"
TIERS = ("free", "pro", "enterprise")
VARIANTS = ("off", "on")
FAILING = ("pro", "on")
THRESHOLDS = (0.3, 1.0)
WHALES = 5
WHALE_RETRIES = 40
CUSTOMERS = 30_000
SECOND_NS = 10**9

SLI_CONFIG = """\
sli:
  dimensions:
    - {name: tier, attribute: impact.customer.tier}
    - {name: new_checkout, flag: new_checkout}
  tasks:
    - {name: checkout, latency_thresholds: [300ms, 1s]}
"""
"""The ``sli:`` section every replica runs with (segments: tier x variant)."""

Segment = tuple[str, str]
_PSEUDONYMIZER = Pseudonymizer(HashKey(bytes.fromhex(TEST_KEY_HEX), "tests"))
_span_ids = itertools.count(1)


def pseudonym(customer: int) -> str:
    """The pseudonym the SDK gives customer ``customer`` under the tests' hash key."""
    value = _PSEUDONYMIZER.pseudonymize(f"customer-{customer}")
    assert value is not None
    return value


@dataclass
class Truth(sli_workload.Truth):
    """What the shared answer must hold, per (tier, variant) segment."""

    @property
    def events(self) -> int:
        return sum(self.total.values())

    def all_users(self) -> set[str]:
        return set().union(*self.users.values())

    def all_impacted(self) -> set[str]:
        return set().union(*self.impacted.values())

    def add(self, other: Truth) -> None:
        """Fold ``other`` (more events of the same task) into this truth."""
        self.total.update(other.total)
        self.bad.update(other.bad)
        self.bad_by_customer.update(other.bad_by_customer)
        for key, value in other.revenue.items():
            self.revenue[key] += value
        for key, users in other.users.items():
            self.users[key] |= users
        for key, users in other.impacted.items():
            self.impacted[key] |= users
        for key, met in other.met.items():
            self.met[key].update(met)


@dataclass
class Workload:
    """OTLP requests per replica (each in time order), the task events in each request, every
    span id sent, and the truth."""

    parts: list[list[bytes]]
    events: list[list[int]]
    span_ids: list[bytes]
    truth: Truth
    end_s: int

    @property
    def spans(self) -> int:
        return len(self.span_ids)

    def requests(self) -> list[tuple[int, bytes]]:
        """``(replica, request)`` interleaved across replicas, as they would arrive."""
        return [(replica, self.parts[replica][index]) for replica, index in self._order()]

    def events_in_first(self, requests: int) -> int:
        """How many task events the first ``requests`` of `requests` hold."""
        return sum(self.events[replica][index] for replica, index in self._order()[:requests])

    def _order(self) -> list[tuple[int, int]]:
        rows = itertools.zip_longest(*([(r, i) for i in range(len(part))] for r, part in enumerate(self.parts)))
        return [item for row in rows for item in row if item is not None]


@dataclass
class _Event:
    customer: int
    tier: str
    variant: str
    attempt: int
    bad: bool
    duration_ms: float
    value: float


def _events(first: int, customers: int, checkouts: int) -> Iterator[_Event]:
    for i in range(first, first + customers):
        tier = TIERS[i % 3]
        variant = VARIANTS[(i // 3) % 2]
        failing = (tier, variant) == FAILING
        whale = failing and i - first < 3 * 2 * WHALES and i % 6 == 4
        attempts = checkouts + (WHALE_RETRIES if whale else 0)
        for attempt in range(attempts):
            bad = failing and (attempt != 1 or i % 4 == 0)
            # 1.2 s when bad (misses both thresholds); otherwise 20-419 ms, never on a threshold.
            duration = 1200.0 if bad else 20.0 + (i * 7919 + attempt * 104_729) % 400
            yield _Event(i, tier, variant, attempt, bad, duration, 10.0 + i % 7)


def build(
    now_ns: int,
    *,
    replicas: int = 3,
    customers: int = CUSTOMERS,
    first_customer: int = 0,
    checkouts: int = 2,
    spread_s: float = 200.0,
    batch_size: int = 500,
) -> Workload:
    """The workload, its events ending over the ``spread_s`` seconds before ``now_ns``.

    ``first_customer`` shifts the customer numbers (a second workload of new customers);
    ``checkouts`` is how many times each customer checks out (whales retry on top).
    """
    events = list(_events(first_customer, customers, checkouts))
    truth = Truth()
    per_replica: list[list[trace_pb2.Span]] = [[] for _ in range(replicas)]
    is_event: list[list[bool]] = [[] for _ in range(replicas)]
    span_ids: list[bytes] = []
    first_end = now_ns - int(spread_s * SECOND_NS)
    step = int(spread_s * SECOND_NS) // max(1, len(events))
    for n, event in enumerate(events):
        end_ns = first_end + n * step
        key = (event.tier, event.variant)
        user = pseudonym(event.customer)
        attributes = {
            "impact.task.name": TASK,
            "impact.task.root": True,
            "impact.customer.hash": user,
            "impact.customer.tier": event.tier,
            "impact.feature_flags": [f"new_checkout={event.variant}"],
            "impact.task.value": event.value,
            "http.response.status_code": 503 if event.bad else 200,
        }
        replica = (event.customer + event.attempt) % replicas
        target = per_replica[replica]
        number = next(_span_ids)
        target.append(
            span(end_ns=end_ns, duration_ms=event.duration_ms, attributes=attributes, error=event.bad, span_id=number)
        )
        is_event[replica].append(True)
        span_ids.append(number.to_bytes(8, "big"))
        if n % 10 == 0:
            number = next(_span_ids)
            target.append(span(end_ns=end_ns, duration_ms=1, attributes={"http.route": "/health"}, span_id=number))
            is_event[replica].append(False)
            span_ids.append(number.to_bytes(8, "big"))
        truth.count(key, user, event)
    parts = [
        [request(spans[i : i + batch_size], {"service.name": "shop"}) for i in range(0, len(spans), batch_size)]
        for spans in per_replica
    ]
    counts = [[sum(flags[i : i + batch_size]) for i in range(0, len(flags), batch_size)] for flags in is_event]
    # The window asked about ends two minutes from now: it holds every event, and stays the
    # same hour for every question of the test.
    return Workload(parts, counts, span_ids, truth, end_s=now_ns // SECOND_NS + 120)
