"""Fixtures for the processor's acceptance tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.otlp_sink import OtlpSink


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    """A real OTLP receiver playing the downstream (collector or backend)."""
    with OtlpSink() as downstream:
        yield downstream
