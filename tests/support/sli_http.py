"""An SLI engine fed 300 known checkouts, served over the real admin routes on a loopback port.

Three tiers and a flag variant; ``tier=pro`` on variant ``on`` fails (50 bad events of 300),
each event worth 10.0: the answers are known exactly.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.test_utils import TestServer

from otel_impact.processors.api.sli_routes import add_routes
from otel_impact.processors.clock import ManualClock
from otel_impact.processors.sli import SliConfig, SliEngine
from otel_impact.processors.sli.queries import SliQueries
from support.otlp_traces import batch, request, span

MINUTE = 60 * 10**9
T0 = 1_800_000_000 * 10**9 // MINUTE * MINUTE
CONFIG = SliConfig.from_mapping(
    {"dimensions": [{"name": "tier", "attribute": "impact.customer.tier"}, {"name": "variant", "flag": "new_checkout"}]}
)


def build_engine() -> SliEngine:
    clock = ManualClock(start_ns=T0)
    engine = SliEngine(CONFIG, clock=clock)
    clock.advance(20 * 60)
    now = clock.now_ns()
    spans = []
    for i in range(300):
        tier = ("free", "pro", "enterprise")[i % 3]
        variant = "on" if i % 2 else "off"
        bad = tier == "pro" and variant == "on"
        attributes = {
            "impact.task.name": "checkout",
            "impact.customer.tier": tier,
            "impact.feature_flags": [f"new_checkout={variant}"],
            "impact.customer.hash": f"{i % 120:032x}",
            "impact.task.value": 10.0,
        }
        spans.append(span(end_ns=now - (i % 10) * MINUTE, attributes=attributes, error=bad, duration_ms=50 + i))
    engine.analyze(batch(request(spans), now))
    return engine


@contextlib.asynccontextmanager
async def serving(engine: SliEngine) -> AsyncIterator[str]:
    app = web.Application()
    add_routes(app, SliQueries(engine))
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()
