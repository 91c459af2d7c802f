"""The one Redis client of the shared state, built from a `RedisAddress`.

A synchronous redis-py client (`redis.Redis`, or `redis.cluster.RedisCluster` for a Cluster),
with hiredis parsing replies. It is only ever called off the event loop (the flusher's and
the lease's threads, and queries run in worker threads), so intake never waits on Redis;
redis-py's connection pool makes it safe to share between those threads.

Every command has a socket timeout (``shared_state.timeout``); a Cluster client follows
MOVED/ASK redirections and refreshes its slot map itself.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from .settings import RedisAddress

__all__ = ["REDIS_ERRORS", "RedisClient", "SharedConnection", "connect"]

RedisClient: TypeAlias = "redis.Redis | RedisCluster"

REDIS_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException, OSError)
"""What a call to an unreachable, failing or misbehaving Redis (or Cluster) raises."""

MAX_CONNECTIONS = 16
"""Connections per node: the flusher, the lease and a few concurrent queries."""


def connect(address: RedisAddress, timeout_s: float) -> RedisClient:
    """A client for ``address``; it connects lazily (nothing is sent until the first command)."""
    common: dict[str, Any] = {
        "username": address.username,
        "password": address.password,
        "ssl": address.tls,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "health_check_interval": 30,
        "max_connections": MAX_CONNECTIONS,
        "decode_responses": True,
        # One quick retry: callers run on a schedule (the next flush, the next lease step) and
        # must learn of an outage within about one timeout, not after redis-py's default retries.
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
    }
    if address.cluster:
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in address.hosts],  # type: ignore[no-untyped-call]
            require_full_coverage=True,
            **common,
        )
    host, port = address.hosts[0]
    return redis.Redis(host=host, port=port, db=address.db, **common)


class SharedConnection:
    """The client, built on first use: a Cluster client reads the slot map when it is built, which
    fails while every seed is down, so building is retried by the next caller.

    `get` raises one of `REDIS_ERRORS` when the client cannot be built now.
    """

    def __init__(self, address: RedisAddress, timeout_s: float) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._client: RedisClient | None = None

    def get(self) -> RedisClient:
        client = self._client
        if client is None:
            client = self._client = connect(self.address, self.timeout_s)
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
