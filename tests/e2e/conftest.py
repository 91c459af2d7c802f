"""Fixtures of the end-to-end tests: real processes (``serve``, instrumented apps, promtool,
Alertmanager, Chromium) on free loopback ports. Every test under ``tests/e2e`` is marked slow."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.oncall import CONFIG, send_canary_release
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


HISTORY_SECONDS = 3600
"""How long the `fed` processor's state has been watching (without events) when it starts."""


def state_begun(directory: Path, seconds_ago: float) -> None:
    """Make ``directory`` the state of a processor that began watching ``seconds_ago`` and saw no
    event since: a processor restored from it has the history of one that ran that long, so its
    windows up to that length are complete (a fresh processor's are not)."""
    with serve(config=CONFIG, state=str(directory)):
        pass  # stopping writes the checkpoint
    begun = time.time_ns() - int(seconds_ago * 1e9)
    db = sqlite3.connect(directory / "sli" / "sli-state.sqlite")
    try:
        with db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'coverage_start_ns'", (str(begun),))
    finally:
        db.close()


@pytest.fixture(scope="module")
def fed() -> Iterator[tuple[Processor, float]]:
    """The processor after a healthy 1.4 and a 1.5 that fails a third of checkouts; and when it started.

    Its state has watched for an hour before the checkouts (`state_begun`), so windows up to an
    hour are complete and the gate can pass or fail on them.
    """
    scratch = tempfile.TemporaryDirectory()
    state_begun(Path(scratch.name), HISTORY_SECONDS)
    started = time.time()
    with scratch, serve(config=CONFIG, state=scratch.name) as processor:
        send_canary_release(processor)
        # ...and burning: the failing release pages or tickets.
        processor.wait_for(
            lambda: get_json(processor, "/api/v1/slos")["slos"][0]["alert_state"] in ("page", "ticket"),
            what="the failing release burning the budget",
        )
        yield processor, started
