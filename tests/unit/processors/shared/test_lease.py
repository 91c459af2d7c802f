"""The leader lease against a real Redis: acquire, renew, takeover after expiry, fencing, an
unreachable Redis, release."""

from __future__ import annotations

import time

import pytest
from support.redis_servers import RedisServer

from otel_impact.processors.shared.alert_store import AlertStore
from otel_impact.processors.shared.connection import SharedConnection
from otel_impact.processors.shared.keys import SharedKeys
from otel_impact.processors.shared.lease import LeaderLease
from otel_impact.processors.shared.settings import parse_redis_url
from otel_impact.processors.slo.leadership import AlertUpdate

KEYS = SharedKeys("lease-test").leader


def connect(server: RedisServer) -> SharedConnection:
    return SharedConnection(parse_redis_url(server.url), timeout_s=1.0)


def lease(server: RedisServer, replica: str, ttl_s: float = 30.0, **kwargs: object) -> LeaderLease:
    return LeaderLease(connect(server), KEYS, replica, ttl_s, **kwargs)  # type: ignore[arg-type]


def pttl_ms(server: RedisServer) -> int:
    return int(server.cli("pttl", KEYS.lease).strip())


def test_the_first_replica_takes_the_lease_with_a_new_token(redis: RedisServer) -> None:
    a = lease(redis, "host-1-aaaa", ttl_s=30.0)
    assert (a.is_leader, a.token) == (False, None)
    assert a.renew_or_acquire() == 1
    assert (a.is_leader, a.token, a.acquisitions, a.losses) == (True, 1, 1, 0)
    assert redis.cli("get", KEYS.lease).strip() == "host-1-aaaa:1"
    assert 0 < pttl_ms(redis) <= 30_000


def test_renewing_keeps_the_token_and_restarts_the_ttl(redis: RedisServer) -> None:
    a = lease(redis, "a", ttl_s=30.0)
    a.renew_or_acquire()
    redis.cli("pexpire", KEYS.lease, "5000")
    assert a.renew_or_acquire() == 1
    assert pttl_ms(redis) > 5000
    assert (a.acquisitions, redis.cli("get", KEYS.fence).strip()) == (1, "1")


def test_a_follower_neither_leads_nor_consumes_tokens(redis: RedisServer) -> None:
    a, b = lease(redis, "a"), lease(redis, "b")
    assert a.renew_or_acquire() == 1
    for _ in range(3):
        assert b.renew_or_acquire() is None
    assert (b.is_leader, b.token, b.holder, b.acquisitions) == (False, None, "a:1", 0)
    assert redis.cli("get", KEYS.fence).strip() == "1"


def test_another_replica_takes_over_once_the_lease_expires_and_the_old_leader_notices(redis: RedisServer) -> None:
    ttl = 0.3
    a, b = lease(redis, "a", ttl_s=ttl), lease(redis, "b", ttl_s=ttl)
    assert a.renew_or_acquire() == 1
    assert 0 < pttl_ms(redis) <= ttl * 1000  # the bound: gone at most a TTL after the last renewal
    assert b.renew_or_acquire() is None  # while it lives, nobody else leads
    deadline = time.monotonic() + 30
    while redis.cli("exists", KEYS.lease).strip() != "0" and time.monotonic() < deadline:
        time.sleep(ttl / 3)
    assert b.renew_or_acquire() == 2
    assert a.renew_or_acquire() is None
    assert (a.losses, a.holder, b.acquisitions) == (1, "b:2", 1)


def test_a_replica_stops_counting_itself_leader_a_ttl_after_its_last_renewal(redis: RedisServer) -> None:
    now = [100.0]
    a = lease(redis, "a", ttl_s=30.0, monotonic=lambda: now[0])
    assert a.renew_or_acquire() == 1
    now[0] += 29.9
    assert a.is_leader
    now[0] += 0.2
    assert (a.is_leader, a.token) == (False, None)
    assert a.renew_or_acquire() == 1  # still its own lease in Redis: renewed, the same token
    assert (a.is_leader, a.acquisitions) == (True, 1)


def test_a_stale_leaders_write_is_refused(redis: RedisServer) -> None:
    a, b = lease(redis, "a"), lease(redis, "b")
    old = a.renew_or_acquire()
    assert old is not None
    redis.cli("del", KEYS.lease)  # a stalls past its lease, which runs out
    new = b.renew_or_acquire()
    assert new is not None and new > old
    update = AlertUpdate((), (), {"evaluated_at": "b"}, 1)
    assert AlertStore(connect(redis), KEYS, "b").save(update, new) == "saved"
    stale = AlertUpdate((), (), {"evaluated_at": "a"}, 2)
    assert AlertStore(connect(redis), KEYS, "a").save(stale, old) == "lease lost"
    assert AlertStore(connect(redis), KEYS, "a").load().snapshot == {"evaluated_at": "b"}


@pytest.mark.slow  # redis-py retries a refused connection for a few seconds before it raises
def test_an_unreachable_redis_means_not_leader_and_is_counted(redis: RedisServer) -> None:
    a = lease(redis, "a")
    assert a.renew_or_acquire() == 1
    redis.stop()
    assert a.renew_or_acquire() is None
    assert (a.is_leader, a.errors, a.losses) == (False, 1, 1)
    a.release()  # never raises either
    redis.start()
    assert a.renew_or_acquire() == 1  # a fresh Redis (no persistence): the lease is free again
    assert a.acquisitions == 2


def test_release_frees_the_lease_at_once_but_never_another_replicas(redis: RedisServer) -> None:
    a, b = lease(redis, "a"), lease(redis, "b")
    a.renew_or_acquire()
    a.release()
    assert redis.cli("exists", KEYS.lease).strip() == "0"
    assert (a.is_leader, a.losses) == (False, 0)
    a.release()  # idempotent
    assert b.renew_or_acquire() == 2
    c = lease(redis, "c")
    b.release()
    assert c.renew_or_acquire() == 3
    redis.cli("del", KEYS.lease)  # c stalls past its lease
    assert b.renew_or_acquire() == 4
    c.release()  # c still believes it holds token 3: it must not delete b's lease
    assert redis.cli("get", KEYS.lease).strip() == "b:4"


def test_bad_arguments_are_refused(redis: RedisServer) -> None:
    with pytest.raises(ValueError, match="replica"):
        lease(redis, "a:b")
    with pytest.raises(ValueError, match="ttl_s"):
        lease(redis, "a", ttl_s=0.0)
