"""The SLO alert state in a real Redis: typed records in and out, the bounded timeline, fencing."""

from __future__ import annotations

import pytest
from support.redis_servers import RedisServer

from otel_impact.processors.shared import alert_store
from otel_impact.processors.shared.alert_store import AlertStore
from otel_impact.processors.shared.connection import SharedConnection
from otel_impact.processors.shared.keys import SharedKeys
from otel_impact.processors.shared.leadership import SharedLeadership
from otel_impact.processors.shared.lease import LeaderLease
from otel_impact.processors.shared.settings import parse_redis_url
from otel_impact.processors.slo.alert_state import AlertRecord, AlertStateRecord, AlertTransition
from otel_impact.processors.slo.alerts import Notification
from otel_impact.processors.slo.leadership import AlertUpdate, SharedAlerts, SharedStateUnavailable

KEYS = SharedKeys("store-test").leader
T = 1_700_000_000 * 10**9


def connect(server: RedisServer) -> SharedConnection:
    return SharedConnection(parse_redis_url(server.url), timeout_s=1.0)


def leader(server: RedisServer, replica: str) -> tuple[AlertStore, int]:
    """A store writing as ``replica``, which holds the lease (its token)."""
    token = LeaderLease(connect(server), KEYS, replica, 30.0).renew_or_acquire()
    assert token is not None
    return AlertStore(connect(server), KEYS, replica), token


def alert(segment: str, *, held: str | None = None) -> AlertRecord:
    labels = {"alertname": "ImpactSLOBurnRate", "slo": "checkout", "tier": segment, "severity": "page"}
    details = {
        "slo": {"name": "checkout", "objective": 99.9},
        "burn_rates": {"5m": 20.0, "1h": None, "3d": float("inf")},
        "impact": {"top_segments": [{"segment": {"tier": segment}, "bad_events": 12}]},
    }
    last = Notification(labels, {"summary": f"checkout [{segment}] burning", "é": "ü"}, T, T + 10**12, False, details)
    return AlertRecord("checkout", (segment, "eu"), labels, T, "SEV2", last, T + 5 * 10**9, held)


def transition(n: int, event: str = "fired") -> AlertTransition:
    return AlertTransition(T + n, event, {"task": "checkout", "n": str(n)}, f"summary {n}")  # type: ignore[arg-type]


def test_nothing_saved_loads_as_an_empty_state(redis: RedisServer) -> None:
    assert AlertStore(connect(redis), KEYS, "a").load() == SharedAlerts()


def test_the_state_round_trips_typed(redis: RedisServer) -> None:
    store, token = leader(redis, "a")
    active = (alert("pro"), alert("free", held="telemetry incomplete: spans dropped"))
    snapshot = {"evaluated_at": "2023-11-14T22:13:00.000Z", "slos": [{"name": "checkout", "score": 1.5}]}
    timeline = (transition(1), transition(2, "resolved"))
    assert store.save(AlertUpdate(active, timeline, snapshot, T + 7), token) == "saved"

    loaded = AlertStore(connect(redis), KEYS, "b").load()  # any replica reads it
    assert loaded == SharedAlerts(AlertStateRecord(active, timeline), snapshot, token, T + 7)
    assert loaded.alerts.active[0].last.fingerprint == active[0].last.fingerprint
    assert isinstance(loaded.alerts.active[0].key, tuple)


def test_saves_replace_the_active_alerts_and_append_to_a_bounded_timeline(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alert_store, "TIMELINE_LENGTH", 5)
    store, token = leader(redis, "a")
    assert store.save(AlertUpdate((alert("pro"),), tuple(map(transition, range(3))), {}, T), token) == "saved"
    assert store.save(AlertUpdate((), tuple(map(transition, range(3, 7))), {"n": 2}, T + 1), token) == "saved"
    loaded = store.load()
    assert loaded.alerts == AlertStateRecord((), tuple(map(transition, range(2, 7))))
    assert loaded.snapshot == {"n": 2}
    assert int(redis.cli("llen", KEYS.timeline)) == 5


def test_a_write_without_the_lease_is_refused_and_changes_nothing(redis: RedisServer) -> None:
    store, token = leader(redis, "a")
    assert store.save(AlertUpdate((alert("pro"),), (transition(1),), {"by": "a"}, T), token) == "saved"
    before = store.load()
    intruder = AlertStore(connect(redis), KEYS, "b")
    assert intruder.save(AlertUpdate((), (transition(2),), {"by": "b"}, T + 1), token) == "lease lost"
    assert store.save(AlertUpdate((), (transition(2),), {"by": "a"}, T + 1), token + 1) == "lease lost"
    redis.cli("del", KEYS.lease)
    assert store.save(AlertUpdate((), (transition(2),), {"by": "a"}, T + 1), token) == "lease lost"
    assert store.load() == before


def test_a_stored_state_that_cannot_be_read_is_reported(redis: RedisServer) -> None:
    redis.cli("hset", KEYS.alerts, "active", '[{"slo": "checkout"}]')
    with pytest.raises(ValueError, match="cannot be read"):
        AlertStore(connect(redis), KEYS, "a").load()
    leadership = SharedLeadership(connect(redis), KEYS, "a", 30.0)
    with pytest.raises(SharedStateUnavailable, match="cannot be read"):
        leadership.load()
    assert leadership.load_errors == 1


@pytest.mark.slow  # redis-py retries a refused connection for a few seconds per command
def test_the_leadership_turns_redis_errors_into_contract_results(redis: RedisServer) -> None:
    leadership = SharedLeadership(connect(redis), KEYS, "a", 30.0)
    token = leadership.renew_or_acquire()
    assert token is not None and leadership.is_leader
    redis.stop()
    assert leadership.save(AlertUpdate((), (), {}, T), token) == "unavailable"
    with pytest.raises(SharedStateUnavailable):
        leadership.load()
    assert (leadership.save_errors, leadership.load_errors) == (1, 1)
