"""One processor fed with a canary release for the on-call tool tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from support.oncall import CONFIG, PER_VERSION, get_json, send_release
from support.processor import Processor, serve


@pytest.fixture(scope="module")
def fed() -> Iterator[tuple[Processor, float]]:
    """The processor after a healthy 1.4 and a 1.5 that fails a third of checkouts; and when it started."""
    started = time.time()
    with serve(config=CONFIG) as processor:
        send_release(processor, "1.4", None)
        send_release(processor, "1.5", 3)
        processor.wait_for(
            lambda: get_json(processor, "/api/v1/impact?task=checkout&window=5m")["events"]["total"] == 2 * PER_VERSION,
            what="every checkout counted",
        )
        # The SLO engine evaluates every second: wait for an evaluation that has seen the failures,
        # so the pages read a decided state rather than racing the first evaluation.
        processor.wait_for(
            lambda: any(
                slo["alert_state"] in ("page", "ticket") for slo in get_json(processor, "/api/v1/slos")["slos"]
            ),
            what="an SLO evaluation after the failing release",
        )
        yield processor, started
