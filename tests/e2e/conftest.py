"""Fixtures of the end-to-end tests: real processes (``serve``, instrumented apps, promtool,
Alertmanager, Chromium) on free loopback ports. Every test under ``tests/e2e`` is marked slow."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.oncall import CONFIG, send_canary_release
from support.otlp_sink import OtlpSink
from support.processor import Processor, get_json, serve, state_begun

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


HISTORY_SECONDS = 3600
"""How long the `fed` processor's state has been watching (without events) when it starts."""


@pytest.fixture(scope="module")
def fed() -> Iterator[tuple[Processor, float]]:
    """The processor after a healthy 1.4 and a 1.5 that fails a third of checkouts; and when it started.

    Its state has watched for an hour before the checkouts (`state_begun`), so windows up to an
    hour are complete and the gate can pass or fail on them.
    """
    scratch = tempfile.TemporaryDirectory()
    state_begun(Path(scratch.name), HISTORY_SECONDS, CONFIG)
    started = time.time()
    with scratch, serve(config=CONFIG, state=scratch.name) as processor:
        send_canary_release(processor)
        # ...and burning: the failing release pages or tickets.
        processor.wait_for(
            lambda: get_json(processor, "/api/v1/slos")["slos"][0]["alert_state"] in ("page", "ticket"),
            what="the failing release burning the budget",
        )
        yield processor, started
