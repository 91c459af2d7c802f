"""The delivery path's settings (receivers, admin server, exporters, pseudonymization): frozen dataclasses.

``validate(problems, path)`` notes every problem of a setting in `Problems`, each naming the
field and the fix (see `otel_impact.processors.config.fields`). `delivery` reads them from YAML;
``otel_impact.processors.serve_config`` assembles them with the analysis sections into a
`ServeConfig`. Defaults follow the OpenTelemetry Collector's where it has one.
"""

from __future__ import annotations

import re
import resource
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal
from urllib.parse import urlsplit

from otel_impact import ConfigurationError

from .cors import CorsConfig
from .fields import Problems

DEFAULT_GRPC: Final = "localhost:4317"
DEFAULT_HTTP: Final = "localhost:4318"
DEFAULT_ADMIN: Final = "localhost:9464"
DEFAULT_MAX_REQUEST_BYTES: Final = 4 << 20
DEFAULT_MAX_DECOMPRESSION_RATIO: Final = 100
"""Decompressed bytes per compressed byte a request may have. Real OTLP compresses 5-20x with gzip
(zstd a little more); a run of empty spans compresses ~1000x, which only a bomb sends."""
DEFAULT_MAX_SPANS_PER_REQUEST: Final = 100_000
"""Spans one request may hold. A span takes at least about 20 bytes on the wire, so a 4 MiB body
can hold about 200,000 empty ones, and gzip lets a small gRPC request expand to millions; real
exporters send batches of 512 (the SDK default) to a few thousand spans."""
SCHEMES: Final = ("grpc", "grpcs", "http", "https")
_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._:/\-]{0,127}\Z")

Protocol = Literal["grpc", "http"]


@dataclass(frozen=True)
class HostPort:
    """A listening address. Port 0 picks a free port (the chosen one is logged)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str, path: str) -> HostPort:
        """Parse ``HOST:PORT`` (``[::1]:4317`` for IPv6)."""
        host, sep, port_text = text.strip().rpartition(":")
        if not sep or not host:
            raise ConfigurationError(path, f"expected HOST:PORT, got {text!r}", "write e.g. localhost:4317")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not port_text.isdigit() or int(port_text) > 65535:
            raise ConfigurationError(path, f"bad port in {text!r}", "use a port from 0 (any free port) to 65535")
        return cls(host, int(port_text))


@dataclass(frozen=True)
class ServerTls:
    """TLS for a listener. With ``client_ca_file`` it is mTLS: clients must present a certificate it signed."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None


@dataclass(frozen=True)
class ServerAuth:
    """Bearer-token authentication for a listener (``Authorization: Bearer <token>``)."""

    bearer_token: str | None = None

    def __repr__(self) -> str:
        return f"ServerAuth(bearer_token={'<set>' if self.bearer_token else None})"


@dataclass(frozen=True)
class ServerLimits:
    """How long a server waits for a client, and how many clients it holds at once.

    Every server has them (OTLP/HTTP, OTLP/gRPC, admin); the ``grpc_*`` fields apply to OTLP/gRPC
    only. A client that has not sent a request's headers ``read_header_timeout`` after it connected
    (or after its previous answer) is disconnected, so is one whose whole request (headers and
    body) took longer than ``read_timeout``; a keep-alive connection idle for ``idle_timeout`` is
    closed. A connection beyond ``max_connections`` is closed at once (and counted); ``None``
    means a quarter of the process's open-files limit, less a reserve (`default_max_connections`),
    so the three servers at their caps still leave files for the queues and downstreams.
    """

    read_header_timeout: float = 10.0
    read_timeout: float = 60.0
    idle_timeout: float = 60.0
    max_connections: int | None = None
    grpc_max_connection_age: float = 1800.0
    """gRPC: a connection this old is asked to go away (the client reconnects); 0: never."""
    grpc_max_connection_age_grace: float = 30.0
    """gRPC: how long calls still running on a connection past its age may finish before it is closed."""
    grpc_keepalive_time: float = 7200.0
    """gRPC: after this long without a frame the server pings the client (gRPC's own default)."""
    grpc_keepalive_timeout: float = 20.0
    """gRPC: a ping not answered in this time closes the connection (gRPC's own default)."""
    grpc_max_concurrent_streams: int = 100
    """gRPC: calls one connection may have running at once."""

    def validate(self, problems: Problems, path: str, *, grpc: bool) -> None:
        """Note every problem in ``problems`` (``path`` is the listener's)."""
        timeouts = ["read_header_timeout", "idle_timeout"] + ([] if grpc else ["read_timeout"])
        for name in timeouts:
            if not 0 < getattr(self, name) <= 3600:
                problems.add(f"{path}.{name}", "must be from 1ms to 1h", f"use e.g. {_DEFAULT_SHOWN[name]}")
        if not grpc and self.read_timeout < self.read_header_timeout:
            problems.add(f"{path}.read_timeout", "is below read_header_timeout", "make it >= read_header_timeout")
        if self.max_connections is not None and self.max_connections < 1:
            problems.add(f"{path}.max_connections", "must be at least 1", "use e.g. 200, or leave it unset")
        if grpc and self.grpc_keepalive_time <= 0:
            problems.add(f"{path}.keepalive_time", "must be positive", "use e.g. 2h")
        if grpc and self.grpc_keepalive_timeout <= 0:
            problems.add(f"{path}.keepalive_timeout", "must be positive", "use e.g. 20s")
        if grpc and self.grpc_max_concurrent_streams < 1:
            problems.add(f"{path}.max_concurrent_streams", "must be at least 1", "use e.g. 100")

    def connection_cap(self) -> int:
        """``max_connections``, or `default_max_connections` when unset."""
        return self.max_connections if self.max_connections is not None else default_max_connections()


_DEFAULT_SHOWN: Final = {"read_header_timeout": "10s", "read_timeout": "60s", "idle_timeout": "60s"}
DEFAULT_INTAKE_PROCESSES: Final = 1
MAX_INTAKE_PROCESSES: Final = 64
INTAKE_PROCESSES_FIX: Final = (
    f"use 1 (the default) to {MAX_INTAKE_PROCESSES} intake processes; more than the spare cores only adds switching"
)
FILES_RESERVE: Final = 64
"""Open files `default_max_connections` keeps aside for queues, downstreams, logs and state files."""


def default_max_connections() -> int:
    """A quarter of the soft open-files limit (``ulimit -n``) less `FILES_RESERVE`, at least 16.

    With the common limit of 1024 that is 240 per server; with 65536, 16368.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        soft = 1 << 20
    return max(16, (soft - FILES_RESERVE) // 4)


@dataclass(frozen=True)
class Listener:
    """One server: where it listens (``None`` turns it off), TLS, authentication and limits;
    for the OTLP/HTTP receiver, the web pages allowed to send from a browser (``cors``)."""

    endpoint: HostPort | None
    tls: ServerTls | None = None
    auth: ServerAuth = field(default_factory=ServerAuth)
    limits: ServerLimits = field(default_factory=ServerLimits)
    cors: CorsConfig | None = None


@dataclass(frozen=True)
class ReceiversConfig:
    """The OTLP receivers. ``max_request_bytes`` bounds a request body after decompression,
    ``max_decompression_ratio`` its decompressed size per compressed byte (no decompression bombs),
    and ``max_spans_per_request`` the spans in one request (0: no bound).

    Authentication is all or nothing: when one open receiver (one with an endpoint) has a
    bearer token or mTLS, every open receiver must have one, or the same forged data would
    simply go in through the other.
    """

    grpc: Listener = field(default_factory=lambda: Listener(HostPort.parse(DEFAULT_GRPC, "")))
    http: Listener = field(default_factory=lambda: Listener(HostPort.parse(DEFAULT_HTTP, "")))
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_decompression_ratio: float = DEFAULT_MAX_DECOMPRESSION_RATIO
    max_spans_per_request: int = DEFAULT_MAX_SPANS_PER_REQUEST
    processes: int = DEFAULT_INTAKE_PROCESSES
    """Intake processes sharing the receivers' ports (``serve --workers``): the main one and
    ``processes - 1`` more, each with its own receivers, pipeline, forwarders and analysis."""
    separate_grpc: bool = False
    """With several intake processes: the main one serves OTLP/HTTP only and the others
    OTLP/gRPC only, so neither kind of sender can crowd the other out of an event loop."""

    def validate(self, problems: Problems, path: str = "receivers") -> None:
        """Note every problem in ``problems``."""
        if not 1 <= self.processes <= MAX_INTAKE_PROCESSES:
            problems.add(f"{path}.processes", f"{self.processes} is out of range", INTAKE_PROCESSES_FIX)
        if self.separate_grpc and (self.processes < 2 or self.grpc.endpoint is None or self.http.endpoint is None):
            problems.add(
                f"{path}.separate_grpc",
                "needs both receivers and at least 2 intake processes",
                "set receivers.processes (or serve --workers) to 2 or more and keep both endpoints, or remove it",
            )
        if self.max_request_bytes < 1024:
            problems.add(f"{path}.max_request_bytes", "is below 1 KiB", "use e.g. 4MiB (the default)")
        if not self.max_decompression_ratio >= 2:
            problems.add(f"{path}.max_decompression_ratio", "must be at least 2", "use e.g. 100 (the default)")
        self.grpc.limits.validate(problems, f"{path}.grpc", grpc=True)
        self.http.limits.validate(problems, f"{path}.http", grpc=False)
        if self.http.cors is not None:
            self.http.cors.validate(problems, f"{path}.http.cors")
        if self.max_spans_per_request < 0:
            problems.add(
                f"{path}.max_spans_per_request", "must not be negative", "use e.g. 100000 (the default), or 0 for none"
            )
        if self.grpc.endpoint is None and self.http.endpoint is None:
            problems.add(path, "both receivers are turned off", "give grpc or http an endpoint")
        listeners = {"grpc": self.grpc, "http": self.http}
        guarded = [
            name for name, listener in listeners.items() if listener.endpoint is not None and is_guarded(listener)
        ]
        if guarded:
            for name, listener in listeners.items():
                if listener.endpoint is not None and not is_guarded(listener):
                    problems.add(
                        f"{path}.{name}.auth",
                        f"receivers.{guarded[0]} requires authentication but receivers.{name} "
                        f"({listener.endpoint}) accepts anyone, so forged data would go in through it",
                        f"give receivers.{name} an auth.bearer_token (or tls.client_ca_file), "
                        f"or turn it off with receivers.{name}.endpoint: none",
                    )


def is_guarded(listener: Listener) -> bool:
    """Whether ``listener`` authenticates its clients (a bearer token, or mTLS)."""
    return bool(listener.auth.bearer_token) or (listener.tls is not None and listener.tls.client_ca_file is not None)


@dataclass(frozen=True)
class RetryConfig:
    """Retries of a downstream export, as the OTLP spec and the collector's ``retry_on_failure``.

    The wait before retry *n* is ``initial_interval * multiplier**n`` capped at ``max_interval``,
    randomized by ``±randomization_factor``; a server's RetryInfo/Retry-After replaces it. After
    ``max_elapsed_time`` (0: never) the data is dropped and counted.
    """

    enabled: bool = True
    initial_interval: float = 5.0
    max_interval: float = 30.0
    max_elapsed_time: float = 300.0
    multiplier: float = 1.5
    randomization_factor: float = 0.5

    def validate(self, problems: Problems, path: str) -> None:
        """Note every problem in ``problems``."""
        if self.initial_interval <= 0:
            problems.add(f"{path}.initial_interval", "must be positive", "use e.g. 5s")
        if self.max_interval < self.initial_interval:
            problems.add(f"{path}.max_interval", "is below initial_interval", "make it >= initial_interval")
        if self.multiplier < 1:
            problems.add(f"{path}.multiplier", "must be at least 1", "use e.g. 1.5")
        if not 0 <= self.randomization_factor < 1:
            problems.add(f"{path}.randomization_factor", "must be in [0, 1)", "use e.g. 0.5")


@dataclass(frozen=True)
class QueueConfig:
    """The bounded sending queue of one downstream: by request count AND by bytes.

    ``consumers`` requests are in flight at once. Consecutive queued requests are merged into one
    downstream request of at most ``max_batch_bytes`` (their protobuf bytes concatenated: OTLP
    requests concatenate into one valid request); 0 turns merging off. A consumer whose first
    request left the queue empty waits ``max_batch_wait`` for more before sending (0: never).
    """

    max_requests: int = 1000
    max_bytes: int = 256 << 20
    consumers: int = 4
    max_batch_bytes: int = 2 << 20
    max_batch_wait: float = 0.005
    """How long a consumer that found the queue empty after its first request waits for more to merge."""
    fsync: bool = False
    """Persistent queue only: flush every item to the disk before answering the sender (survives power loss)."""

    def validate(self, problems: Problems, path: str) -> None:
        """Note every problem in ``problems``."""
        if self.max_requests < 1:
            problems.add(f"{path}.max_requests", "must be at least 1", "use e.g. 1000")
        if self.max_bytes < 1 << 20:
            problems.add(f"{path}.max_bytes", "is below 1 MiB", "use e.g. 256MiB")
        if not 0 <= self.max_batch_wait <= 1:
            problems.add(f"{path}.max_batch_wait", "must be 0 to 1s", "use e.g. 5ms")
        if not 1 <= self.consumers <= 64:
            problems.add(f"{path}.consumers", "must be 1 to 64", "use e.g. 4")


@dataclass(frozen=True)
class ClientTls:
    """TLS towards a downstream: a CA to trust (default: the system's), and a client certificate for mTLS."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


@dataclass(frozen=True)
class ExporterConfig:
    """One downstream OTLP endpoint the processor forwards everything to."""

    endpoint: str
    name: str = ""
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    compression: Literal["none", "gzip"] = "none"
    timeout: float = 5.0
    tls: ClientTls | None = None
    retry: RetryConfig = field(default_factory=RetryConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))
        if not self.name:
            object.__setattr__(self, "name", self.endpoint.rstrip("/"))

    def __getstate__(self) -> dict[str, object]:  # a mapping proxy does not pickle (intake processes get a copy)
        return {**self.__dict__, "headers": dict(self.headers)}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))

    def __repr__(self) -> str:  # header values may be secrets
        return f"ExporterConfig(name={self.name!r}, endpoint={self.endpoint!r}, headers={sorted(self.headers)})"

    @property
    def scheme(self) -> str:
        return urlsplit(self.endpoint).scheme

    @property
    def protocol(self) -> Protocol:
        return "grpc" if self.scheme in ("grpc", "grpcs") else "http"

    @property
    def uses_tls(self) -> bool:
        return self.scheme in ("grpcs", "https") or self.tls is not None

    @property
    def target(self) -> str:
        """``host:port`` for gRPC."""
        parts = urlsplit(self.endpoint)
        host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
        return f"{host}:{parts.port}"

    @property
    def traces_url(self) -> str:
        """The full OTLP/HTTP URL: ``/v1/traces`` is appended to a URL without a path."""
        parts = urlsplit(self.endpoint)
        path = parts.path if parts.path not in ("", "/") else "/v1/traces"
        return f"{parts.scheme}://{parts.netloc}{path}"

    @property
    def metrics_url(self) -> str:
        """Where OTLP/HTTP metrics go: `/v1/metrics` beside the traces path (`/v1/traces` is replaced)."""
        parts = urlsplit(self.endpoint)
        path = parts.path.rstrip("/")
        if path.endswith("/v1/traces"):
            path = path[: -len("/v1/traces")]
        return f"{parts.scheme}://{parts.netloc}{path}/v1/metrics"

    def validate(self, problems: Problems, path: str) -> None:
        """Note every problem in ``problems``."""
        if not self.endpoint:  # the name, too, follows from the endpoint
            problems.add(f"{path}.endpoint", "is missing", "write e.g. grpc://collector:4317")
        else:
            self._validate_endpoint(problems, path)
        if self.compression not in ("none", "gzip"):
            problems.add(f"{path}.compression", "unknown compression", "use none or gzip")
        if self.timeout <= 0:
            problems.add(f"{path}.timeout", "must be positive", "use e.g. 5s")
        if self.tls is not None and (self.tls.cert_file is None) != (self.tls.key_file is None):
            problems.add(f"{path}.tls", "cert_file and key_file go together", "set both, or neither")
        for name in self.headers:
            if not name or name != name.strip() or any(c in name for c in ":\r\n "):
                problems.add(f"{path}.headers.{name}", "bad header name", "use a plain token")
        self.retry.validate(problems, f"{path}.retry")
        self.queue.validate(problems, f"{path}.queue")

    def _validate_endpoint(self, problems: Problems, path: str) -> None:
        try:
            parts = urlsplit(self.endpoint)
            port = parts.port
        except ValueError:
            parts, port = urlsplit(""), None
            problems.add(f"{path}.endpoint", "has a bad port", "write e.g. grpc://host:4317")
        if parts.scheme not in SCHEMES or not parts.hostname:
            problems.add(
                f"{path}.endpoint",
                f"expected grpc://, grpcs://, http:// or https:// with a host, got {self.endpoint!r}",
                "write e.g. grpc://collector:4317 or http://collector:4318",
            )
        elif port is None and parts.scheme != "https":
            problems.add(f"{path}.endpoint", "has no port", f"write e.g. {parts.scheme}://{parts.hostname}:4317")
        if parts.scheme in ("grpc", "grpcs") and parts.path not in ("", "/"):
            problems.add(f"{path}.endpoint", "a gRPC endpoint has no path", "remove the path")
        if not _NAME.match(self.name):
            problems.add(f"{path}.name", f"bad name {self.name!r}", "use letters, digits and . _ - : /")


@dataclass(frozen=True)
class PseudonymizationConfig:
    """Processor-side pseudonymization: raw identity attributes from services without the SDK.

    Empty ``attributes`` turns it off. The key comes from ``key_file`` or, when that is unset,
    from ``OTEL_IMPACT_HASH_KEY`` / ``OTEL_IMPACT_HASH_KEY_FILE`` as in the SDK.
    """

    attributes: tuple[str, ...] = ()
    key_file: str | None = None
    algorithm: str = "hmac-sha256"

    @property
    def enabled(self) -> bool:
        return bool(self.attributes)
