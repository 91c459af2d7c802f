"""The shared_state section and its Redis URL: every form parses, every mistake names its field."""

from __future__ import annotations

import pytest

from otel_impact import ConfigurationErrors
from otel_impact.processors.config import Problems
from otel_impact.processors.serve_config import Overrides, load_config
from otel_impact.processors.shared.settings import parse_redis_url, parse_shared_state_section


def test_url_forms() -> None:
    plain = parse_redis_url("redis://cache:6380/2")
    assert plain.hosts == (("cache", 6380),) and plain.db == 2 and not plain.tls and not plain.cluster
    secure = parse_redis_url("rediss://impact:s%40cret@cache")
    assert secure.tls and secure.username == "impact" and secure.password == "s@cret"
    assert secure.hosts == (("cache", 6379),)
    assert parse_redis_url("redis://only-password@cache").password == "only-password"
    cluster = parse_redis_url("redis://a:7000,b:7001,[::1]:7002")
    assert cluster.cluster and cluster.hosts == (("a", 7000), ("b", 7001), ("::1", 7002))
    assert parse_redis_url("redis://seed:7000", cluster=True).cluster


def test_the_password_is_never_shown() -> None:
    address = parse_redis_url("redis://user:hunter2@cache:6379")
    assert "hunter2" not in address.display() and "hunter2" not in repr(address)
    assert address.display() == "redis://user:***@cache:6379"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://cache:6379", "unsupported scheme 'http'"),
        ("cache:6379", "not a redis:// or rediss:// URL"),
        ("redis://cache:99999", "port 99999 is out of range"),
        ("redis://a:1,b:2/3", "a Redis Cluster has only database 0"),
        ("redis://bad host:1", "is not host[:port]"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("(", r"\(")):
        parse_redis_url(url)


def test_section_fields_are_checked_with_their_fix() -> None:
    problems = Problems()
    config = parse_shared_state_section(
        {"url": "redis://:pw@cache", "flush_interval": "0s", "buffer_max_bytes": "1KiB", "key_prefix": "a b"},
        "shared_state",
        problems,
    )
    fields = {problem.setting for problem in problems.items}
    assert fields == {"shared_state.flush_interval", "shared_state.buffer_max_bytes", "shared_state.key_prefix"}
    assert config.address is not None and config.address.password == "pw"
    assert "pw" not in str(ConfigurationErrors(problems.items))


def test_the_flag_and_the_variable_set_the_url() -> None:
    from_flag = load_config(Overrides(shared_state="redis://flag:1"), environ={})
    assert from_flag.shared_state.address is not None and from_flag.shared_state.address.hosts == (("flag", 1),)
    from_env = load_config(environ={"OTEL_IMPACT_SHARED_STATE": "redis://env:2"})
    assert from_env.shared_state.address is not None and from_env.shared_state.address.hosts == (("env", 2),)
    assert not load_config(environ={}).shared_state.enabled
    with pytest.raises(ConfigurationErrors, match="--shared-state"):
        load_config(Overrides(shared_state="mysql://nope"), environ={})
