"""The ``shared_state:`` config section and the Redis address it names.

::

    shared_state:
      url: redis://redis.observability:6379/0     # or rediss://, or several seeds for a Cluster
      flush_interval: 2s                          # how often local deltas are flushed
      buffer_max_bytes: 64MiB                     # deltas held while Redis is unreachable
      timeout: 2s                                 # every Redis command's socket timeout
      key_prefix: otel-impact                     # every key starts with it
      cluster: false                              # true: a single seed that is a Cluster node

The section may also be just the URL (``shared_state: redis://...``); ``serve --shared-state
URL`` or ``OTEL_IMPACT_SHARED_STATE`` set the URL. Absent, the processor keeps its state in
memory (and under ``--state``) and answers for the spans it saw.

URL forms: ``redis://[user:password@]host:port[/db]``, ``rediss://...`` for TLS, and a Redis
Cluster as several comma-separated seed nodes, ``redis://host1:6379,host2:6379,host3:6379``
(a Cluster has no databases: ``/db`` must be 0 or absent).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import unquote

from otel_impact.processors.config import Fields, Problems

__all__ = [
    "DEFAULT_FLUSH_INTERVAL_S",
    "RedisAddress",
    "SharedStateConfig",
    "parse_redis_url",
    "parse_shared_state_section",
]

DEFAULT_FLUSH_INTERVAL_S: Final = 2.0
DEFAULT_BUFFER_MAX_BYTES: Final = 64 << 20
DEFAULT_TIMEOUT_S: Final = 2.0
DEFAULT_KEY_PREFIX: Final = "otel-impact"
URL_FIX: Final = "write redis://[user:password@]host:port[/db], rediss://... for TLS, or host:port seeds of a Cluster"

_URL = re.compile(r"\A(?P<scheme>rediss?)://(?:(?P<auth>[^@/]*)@)?(?P<hosts>[^/?#]+)(?:/(?P<db>\d*))?\Z")
_HOST = re.compile(r"\A(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9._-]+))(?::(?P<port>\d{1,5}))?\Z")


@dataclass(frozen=True)
class RedisAddress:
    """Where the shared state lives, parsed from its URL (the password is never shown by repr)."""

    hosts: tuple[tuple[str, int], ...]
    tls: bool = False
    username: str | None = None
    password: str | None = None
    db: int = 0
    cluster: bool = False

    def __repr__(self) -> str:
        return f"RedisAddress({self.display()})"

    def display(self) -> str:
        """The URL without its password, for logs, errors and ``/readyz``."""
        scheme = "rediss" if self.tls else "redis"
        user = f"{self.username or ''}:***@" if self.password is not None else ""
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.hosts)
        database = f"/{self.db}" if self.db else ""
        kind = " (cluster)" if self.cluster else ""
        return f"{scheme}://{user}{hosts}{database}{kind}"


def parse_redis_url(url: str, *, cluster: bool = False) -> RedisAddress:
    """Parse a shared-state URL; raises ``ValueError`` saying what is wrong (without the password).

    Several hosts make a Cluster; ``cluster=True`` makes a single seed one too.
    """
    match = _URL.match(url.strip())
    if match is None:
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if scheme and scheme not in ("redis", "rediss"):
            raise ValueError(f"unsupported scheme {scheme!r}")
        raise ValueError("not a redis:// or rediss:// URL")
    username = password = None
    if match.group("auth") is not None:
        user, colon, secret = match.group("auth").partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
        if not colon:  # redis://password@host is a common shorthand for a password without user
            username, password = None, unquote(user)
    hosts = []
    for part in match.group("hosts").split(","):
        host = _HOST.match(part.strip())
        if host is None:
            raise ValueError(f"{part.strip()!r} is not host[:port]")
        port = int(host.group("port") or 6379)
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is out of range")
        hosts.append((host.group("v6") or host.group("name"), port))
    db = int(match.group("db") or 0)
    is_cluster = cluster or len(hosts) > 1
    if is_cluster and db:
        raise ValueError("a Redis Cluster has only database 0")
    return RedisAddress(tuple(hosts), match.group("scheme") == "rediss", username, password, db, is_cluster)


@dataclass(frozen=True)
class SharedStateConfig:
    """The ``shared_state`` section; ``address`` is ``None`` when state is not shared."""

    address: RedisAddress | None = None
    flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S
    buffer_max_bytes: int = DEFAULT_BUFFER_MAX_BYTES
    timeout_s: float = DEFAULT_TIMEOUT_S
    key_prefix: str = DEFAULT_KEY_PREFIX

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def validate(self, problems: Problems, path: str) -> None:
        if not 0.1 <= self.flush_interval_s <= 60:
            problems.add(f"{path}.flush_interval", f"{self.flush_interval_s:g}s", "use 100ms to 60s (default 2s)")
        if self.buffer_max_bytes < 1 << 20:
            problems.add(f"{path}.buffer_max_bytes", f"{self.buffer_max_bytes} bytes", "use at least 1MiB")
        if not 0.05 <= self.timeout_s <= 60:
            problems.add(f"{path}.timeout", f"{self.timeout_s:g}s", "use 50ms to 60s (default 2s)")
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", self.key_prefix):
            problems.add(f"{path}.key_prefix", repr(self.key_prefix), "use 1-64 letters, digits, '_', '.', ':' or '-'")


def parse_shared_state_section(raw: object, path: str, problems: Problems) -> SharedStateConfig:
    """Read ``shared_state:`` (a mapping, or just the URL)."""
    fields = Fields.shorthand(raw, path, problems, string_means="url")
    url = fields.take_str("url", None)
    cluster = fields.take_bool("cluster", False)
    config = SharedStateConfig(
        address=address_of(url, f"{path}.url", problems, cluster=cluster),
        flush_interval_s=fields.take_duration("flush_interval", DEFAULT_FLUSH_INTERVAL_S),
        buffer_max_bytes=fields.take_size("buffer_max_bytes", DEFAULT_BUFFER_MAX_BYTES),
        timeout_s=fields.take_duration("timeout", DEFAULT_TIMEOUT_S),
        key_prefix=fields.take_str("key_prefix", DEFAULT_KEY_PREFIX),
    )
    fields.done()
    config.validate(problems, path)
    return config


def address_of(url: str | None, path: str, problems: Problems, *, cluster: bool = False) -> RedisAddress | None:
    """The parsed ``url`` (``None`` for none), noting a bad one at ``path``."""
    if url is None or not url.strip():
        return None
    try:
        return parse_redis_url(url, cluster=cluster)
    except ValueError as error:
        problems.add(path, str(error), URL_FIX)
        return None


SYNTHETIC_KEY_SUFFIX = ":synthetic"
"""Appended to ``key_prefix`` for the synthetic traffic's state: its keys never meet the real ones
(a real task's keys are ``{P:t:NAME}``, a synthetic task's ``{P:synthetic:t:NAME}``)."""
SYNTHETIC_BUFFER_SHARE = 8
"""The synthetic state buffers up to ``buffer_max_bytes / 8`` (at least 1 MiB) on top of the real one's."""


def synthetic_shared_config(config: SharedStateConfig) -> SharedStateConfig:
    """The settings of the synthetic traffic's shared state: the same Redis and intervals, its own
    key prefix and a smaller buffer (probes are few)."""
    return replace(
        config,
        key_prefix=config.key_prefix + SYNTHETIC_KEY_SUFFIX,
        buffer_max_bytes=max(1 << 20, config.buffer_max_bytes // SYNTHETIC_BUFFER_SHARE),
    )
