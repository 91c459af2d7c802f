"""Fixtures of the end-to-end tests: real processes (``serve``, instrumented apps, promtool,
Alertmanager, Chromium) on free loopback ports. Every test under ``tests/e2e`` is marked slow."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.oncall import CONFIG, PER_VERSION, send_release
from support.otlp_sink import OtlpSink
from support.processor import Processor, get_json, serve

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    """A real OTLP receiver playing the downstream (collector or backend)."""
    with OtlpSink() as downstream:
        yield downstream


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
