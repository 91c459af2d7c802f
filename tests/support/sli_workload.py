"""A synthetic checkout workload with known truth, as OTLP requests (issue 5, section 8).

50,000 customers in 3 tiers and 2 variants of the ``new_checkout`` flag. Only ``tier=pro`` with
``new_checkout=on`` fails. Every customer checks out twice; each checkout is a task root span
(every tenth also with an inherited child span, attribution only, and an unrelated span without
a task). A few
"whale" customers in the failing segment retry many times, so they top the impacted list.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from opentelemetry.proto.trace.v1 import trace_pb2

from support.otlp_traces import request, span

TIERS = ("free", "pro", "enterprise")
VARIANTS = ("off", "on")
MINUTE = 60 * 10**9
THRESHOLDS = (0.3, 1.0)
WHALES = 5
WHALE_RETRIES = 40


def pseudonym(index: int) -> str:
    return hashlib.sha256(f"customer-{index}".encode()).hexdigest()[:32]


@dataclass
class Truth:
    """What the engine must find, per (tier, variant) segment."""

    total: Counter[tuple[str, str]] = field(default_factory=Counter)
    bad: Counter[tuple[str, str]] = field(default_factory=Counter)
    revenue: defaultdict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    users: defaultdict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    impacted: defaultdict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    met: defaultdict[tuple[str, str], Counter[float]] = field(default_factory=lambda: defaultdict(Counter))
    durations_ms: list[float] = field(default_factory=list)
    bad_by_customer: Counter[str] = field(default_factory=Counter)

    def count(self, key: tuple[str, str], user: str, event: Event) -> None:
        """Add one task event of segment ``key`` by ``user`` (durations are kept apart)."""
        self.total[key] += 1
        self.users[key].add(user)
        for threshold in THRESHOLDS:
            self.met[key][threshold] += event.duration_ms <= threshold * 1000
        if event.bad:
            self.bad[key] += 1
            self.revenue[key] += event.value
            self.impacted[key].add(user)
            self.bad_by_customer[user] += 1


@dataclass
class Event:
    customer: int
    tier: str
    variant: str
    bad: bool
    duration_ms: float
    value: float


def events(customers: int = 50_000) -> Iterator[Event]:
    for i in range(customers):
        tier = TIERS[i % 3]
        variant = VARIANTS[(i // 3) % 2]
        failing = tier == "pro" and variant == "on"
        attempts = 2 + (WHALE_RETRIES if failing and i < 3 * 2 * WHALES and i % 6 == 4 else 0)
        for attempt in range(attempts):
            bad = failing and (attempt != 1 or i % 4 == 0)
            duration = 1200.0 if bad else 20.0 + (i * 7919 + attempt * 104_729) % 400
            yield Event(i, tier, variant, bad, duration, 10.0 + i % 7)


def build(
    start_ns: int, minutes: int = 30, customers: int = 50_000, batch_size: int = 512
) -> tuple[list[tuple[int, bytes]], Truth]:
    """OTLP requests ``(received_ns, bytes)`` in time order, and the truth they hold."""
    all_events = list(events(customers))
    truth = Truth()
    per_minute = -(-len(all_events) // minutes)
    spans: list[tuple[int, trace_pb2.Span]] = []
    for n, event in enumerate(all_events):
        end_ns = start_ns + (n // per_minute) * MINUTE + (n % per_minute) * (MINUTE // per_minute)
        key = (event.tier, event.variant)
        user = pseudonym(event.customer)
        attributes = {
            "impact.task.name": "checkout",
            "impact.task.root": True,
            "impact.customer.hash": user,
            "impact.customer.tier": event.tier,
            "impact.feature_flags": [f"new_checkout={event.variant}"],
            "impact.task.value": event.value,
            "http.response.status_code": 503 if event.bad else 200,
        }
        spans.append(
            (end_ns, span(end_ns=end_ns, duration_ms=event.duration_ms, attributes=attributes, error=event.bad))
        )
        if n % 10 == 0:
            child = {"impact.task.name": "checkout", "impact.task.root": False, "impact.customer.tier": event.tier}
            spans.append((end_ns, span(end_ns=end_ns, duration_ms=5, attributes=child, error=event.bad, name="db")))
            spans.append((end_ns, span(end_ns=end_ns, duration_ms=1, attributes={"http.route": "/health"}, name="h")))
        truth.count(key, user, event)
        truth.durations_ms.append(event.duration_ms)
    requests = []
    for offset in range(0, len(spans), batch_size):
        chunk = spans[offset : offset + batch_size]
        requests.append((chunk[-1][0] + 2 * 10**9, request([s for _, s in chunk], {"service.name": "shop"})))
    return requests, truth
