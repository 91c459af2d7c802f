"""Known-truth workloads for explain: failures from one (region, version) pair, or from nowhere.

Each event is a ``checkout`` task root. Its resource carries ``cloud.region`` (4 values) and
``service.version`` (3 values); its span carries 12 other attributes that vary at random
(``app.noise_0`` .. ``app.noise_11``, 2 to 5 values each) and a customer pseudonym.

* ``pattern``: events from ``cloud.region=eu-west`` with ``service.version=1.5`` fail with
  probability ``failure_rate``; no other event fails.
* ``no pattern``: every event fails with the same probability, whatever its attributes.
"""

from __future__ import annotations

import random
from typing import Final

from support.otlp_traces import request, span
from support.sli_workload import pseudonym

REGIONS: Final = ("eu-west", "us-east", "us-west", "ap-south")
VERSIONS: Final = ("1.4", "1.5", "1.6")
NOISE: Final = tuple((f"app.noise_{index}", 2 + index % 4) for index in range(12))
"""The 12 attributes that vary at random: (key, number of values)."""
BAD_REGION: Final = ("cloud.region", "eu-west")
BAD_VERSION: Final = ("service.version", "1.5")
MINUTE: Final = 60 * 10**9


def build(
    seed: int,
    *,
    start_ns: int,
    events: int = 6000,
    pattern: bool = True,
    failure_rate: float = 0.5,
    minutes: int = 10,
    users: int = 400,
    per_request: int = 50,
) -> list[tuple[int, bytes]]:
    """``(received ns, OTLP request)`` pairs, ``events`` task roots spread over ``minutes``."""
    rng = random.Random(seed)
    per_resource: dict[tuple[str, str], list[object]] = {}
    out: list[tuple[int, bytes]] = []
    base_rate = failure_rate / (len(REGIONS) * len(VERSIONS))
    for index in range(events):
        region, version = rng.choice(REGIONS), rng.choice(VERSIONS)
        if pattern:
            bad = region == BAD_REGION[1] and version == BAD_VERSION[1] and rng.random() < failure_rate
        else:
            bad = rng.random() < base_rate
        end_ns = start_ns + (index * minutes * MINUTE) // events
        attributes: dict[str, object] = {
            "impact.task.name": "checkout",
            "impact.customer.hash": pseudonym(rng.randrange(users)),
            "impact.task.outcome": "failure" if bad else "success",
        }
        for key, count in NOISE:
            attributes[key] = f"v{rng.randrange(count)}"
        held = per_resource.setdefault((region, version), [])
        held.append(span(end_ns=end_ns, attributes=attributes, span_id=index + 1))
        if len(held) >= per_request or index == events - 1:
            for (res_region, res_version), spans in list(per_resource.items()):
                if spans:
                    resource = {"service.name": "shop", "cloud.region": res_region, "service.version": res_version}
                    out.append((end_ns + MINUTE // 60, request(spans, resource)))  # type: ignore[arg-type]
            per_resource.clear()
    return out
