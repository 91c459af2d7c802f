"""The demo's customers and the load they put on checkout."""

from __future__ import annotations

import json
import random
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass

TIERS = (("free", 0.6), ("pro", 0.3), ("enterprise", 0.1))
AMOUNTS = {"free": (5.0, 40.0), "pro": (20.0, 150.0), "enterprise": (100.0, 900.0)}


@dataclass(frozen=True)
class Customer:
    id: str
    tier: str
    variant: str


def make_customers(count: int, seed: int = 7) -> list[Customer]:
    """``count`` customers across tiers; half of each tier sees variant ``on`` of the flag."""
    rng = random.Random(seed)
    customers = []
    for i in range(count):
        tier = rng.choices([t for t, _ in TIERS], weights=[w for _, w in TIERS])[0]
        customers.append(Customer(f"acct-{i:05d}@demo.example", tier, "on" if rng.random() < 0.5 else "off"))
    return customers


class Traffic:
    """Background threads sending checkouts at about ``rate`` per second, until `stop`."""

    def __init__(self, checkout_url: str, customers: list[Customer], rate: float, threads: int = 4) -> None:
        self.checkout_url = checkout_url
        self.customers = customers
        self.interval = threads / rate
        self.threads = threads
        self.sent = 0
        self.failed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), name=f"traffic-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=10)

    def _run(self, index: int) -> None:
        rng = random.Random(index)
        while not self._stop.is_set():
            customer = rng.choice(self.customers)
            low, high = AMOUNTS[customer.tier]
            ok = self._checkout(customer, round(rng.uniform(low, high), 2))
            with self._lock:
                self.sent += 1
                self.failed += not ok
            self._stop.wait(self.interval * rng.uniform(0.5, 1.5))

    def _checkout(self, customer: Customer, amount: float) -> bool:
        body = {"customer": customer.id, "tier": customer.tier, "variant": customer.variant, "amount": amount}
        request = urllib.request.Request(
            self.checkout_url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False
