"""One processor fed with a canary release for the on-call tool tests."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from support.oncall import CONFIG, PER_VERSION, send_release
from support.processor import Processor, get_json, serve


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
        # ...and evaluated: the SLO engine runs every second, after the counts are in.
        processor.wait_for(
            lambda: get_json(processor, "/api/v1/slos")["slos"][0]["alert_state"] in ("page", "ticket"),
            what="the failing release burning the budget",
        )
        yield processor, started
