"""A real Redis for the shared-state unit tests: one server per module, emptied for each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.redis_servers import RedisServer, redis_server


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with redis_server() as running:
        yield running


@pytest.fixture
def redis(server: RedisServer) -> RedisServer:
    """The module's server, running (a test may have stopped it) and empty."""
    if server.process is None:
        server.start()
    server.cli("flushall")
    return server
