"""Reading the delivery path's sections: ``receivers:``, ``admin:``, ``exporters:`` and ``pseudonymization:``.

Each parser follows the convention of `otel_impact.processors.config.fields`: it notes every
problem in the shared `Problems` and returns the settings read (defaults for what it could not
read). The checks between fields (`ExporterConfig.validate`, ...) run once the command-line flags
and environment variables are applied, since those replace values of these sections.
"""

from __future__ import annotations

from dataclasses import replace

from otel_impact import ConfigurationError

from .cors import parse_cors
from .fields import Fields, Problems, describe, join
from .model import (
    DEFAULT_GRPC,
    DEFAULT_HTTP,
    DEFAULT_INTAKE_PROCESSES,
    DEFAULT_MAX_DECOMPRESSION_RATIO,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_MAX_SPANS_PER_REQUEST,
    ClientTls,
    ExporterConfig,
    HostPort,
    Listener,
    PseudonymizationConfig,
    QueueConfig,
    ReceiversConfig,
    RetryConfig,
    ServerAuth,
    ServerLimits,
    ServerTls,
)

__all__ = [
    "parse_endpoint",
    "parse_exporters",
    "parse_listener",
    "parse_pseudonymization",
    "parse_receivers",
]

_EXPORTERS_FIX = "write one '- endpoint: URL' item per downstream"


def parse_endpoint(value: object, path: str, problems: Problems, *, default: HostPort | None) -> HostPort | None:
    """``HOST:PORT``, or ``None`` for ``none`` (or nothing): that server is off. A bad value is
    noted, and ``default`` stands for it."""
    if value is None or value == "none":
        return None
    if not isinstance(value, str):
        problems.add(path, f"expected HOST:PORT, got {value!r}", "write e.g. localhost:4317, or none")
        return default
    try:
        return HostPort.parse(value, path)
    except ConfigurationError as error:
        problems.extend(error)
        return default


def parse_listener(
    raw: object, path: str, problems: Problems, *, default_endpoint: str, grpc: bool = False, cors: bool = False
) -> Listener:
    """One server: ``endpoint``, ``tls``, ``auth`` and its `ServerLimits` (with ``grpc``, the
    gRPC-only ones too; without, they are unknown keys); with ``cors``, its ``cors`` section."""
    fields = Fields(raw, path, problems)
    default = HostPort.parse(default_endpoint, path)
    endpoint = parse_endpoint(
        fields.take("endpoint", default_endpoint), fields.at("endpoint"), problems, default=default
    )
    tls = None
    if fields.has("tls"):
        tls_fields = fields.take_section("tls")
        cert, key = tls_fields.take_str("cert_file", ""), tls_fields.take_str("key_file", "")
        client_ca = tls_fields.take_str("client_ca_file", None)
        tls_fields.done()
        if not cert or not key:
            fields.report("tls", "cert_file and key_file are required", "set both")
        tls = ServerTls(cert, key, client_ca)
    auth = ServerAuth()
    if fields.has("auth"):
        auth_fields = fields.take_section("auth")
        token = auth_fields.take_str("bearer_token", None)
        token_file = auth_fields.take_str("bearer_token_file", None)
        auth_fields.done()
        if token and token_file:
            fields.report("auth", "both bearer_token and bearer_token_file", "set only one")
        elif token_file:
            token = _read_secret(auth_fields, "bearer_token_file", token_file)
        auth = ServerAuth(token)
    limits = _parse_limits(fields, grpc=grpc)
    cors_config = parse_cors(fields) if cors else None
    fields.done()
    return Listener(endpoint, tls, auth, limits, cors_config)


def _parse_limits(fields: Fields, *, grpc: bool) -> ServerLimits:
    default = ServerLimits()
    limits = replace(
        default,
        read_header_timeout=fields.take_duration("read_header_timeout", default.read_header_timeout),
        idle_timeout=fields.take_duration("idle_timeout", default.idle_timeout),
        max_connections=fields.take_int("max_connections", 0, minimum=1) if fields.has("max_connections") else None,
    )
    if not grpc:
        return replace(limits, read_timeout=fields.take_duration("read_timeout", default.read_timeout))
    return replace(
        limits,
        grpc_max_connection_age=fields.take_duration("max_connection_age", default.grpc_max_connection_age),
        grpc_max_connection_age_grace=fields.take_duration(
            "max_connection_age_grace", default.grpc_max_connection_age_grace
        ),
        grpc_keepalive_time=fields.take_duration("keepalive_time", default.grpc_keepalive_time),
        grpc_keepalive_timeout=fields.take_duration("keepalive_timeout", default.grpc_keepalive_timeout),
        grpc_max_concurrent_streams=fields.take_int(
            "max_concurrent_streams", default.grpc_max_concurrent_streams, minimum=1
        ),
    )


def parse_receivers(raw: object, path: str, problems: Problems) -> ReceiversConfig:
    """The OTLP receivers: ``grpc``, ``http`` (each a listener), ``max_request_bytes``,
    ``max_decompression_ratio``, ``max_spans_per_request``, ``processes`` and ``separate_grpc``."""
    fields = Fields(raw, path, problems)
    grpc = parse_listener(fields.take("grpc"), fields.at("grpc"), problems, default_endpoint=DEFAULT_GRPC, grpc=True)
    http = parse_listener(fields.take("http"), fields.at("http"), problems, default_endpoint=DEFAULT_HTTP, cors=True)
    max_bytes = fields.take_size("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES)
    ratio = fields.take_float("max_decompression_ratio", DEFAULT_MAX_DECOMPRESSION_RATIO)
    max_spans = fields.take_int("max_spans_per_request", DEFAULT_MAX_SPANS_PER_REQUEST)
    processes = fields.take_int("processes", DEFAULT_INTAKE_PROCESSES)
    separate_grpc = fields.take_bool("separate_grpc", False)
    fields.done()
    return ReceiversConfig(grpc, http, max_bytes, ratio, max_spans, processes, separate_grpc)


def parse_exporters(raw: object, path: str, problems: Problems) -> tuple[ExporterConfig, ...]:
    """The downstreams: a list of ``{endpoint: URL, ...}`` mappings, or of bare URLs."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add(path, f"expected a list, got {describe(raw)}", _EXPORTERS_FIX)
        return ()
    return tuple(_parse_exporter(item, join(path, index), problems) for index, item in enumerate(raw))


def parse_pseudonymization(raw: object, path: str, problems: Problems) -> PseudonymizationConfig:
    """Processor-side pseudonymization: ``attributes``, ``key_file`` and ``algorithm``."""
    fields = Fields(raw, path, problems)
    config = PseudonymizationConfig(
        attributes=fields.take_str_list("attributes"),
        key_file=fields.take_str("key_file", None),
        algorithm=fields.take_str("algorithm", "hmac-sha256"),
    )
    fields.done()
    return config


def _read_secret(fields: Fields, key: str, path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read(4096).strip()
    except (OSError, UnicodeDecodeError) as error:
        fields.report(key, f"cannot read {path} ({type(error).__name__})", "point it to a readable file")
        return None
    if not value:
        fields.report(key, f"{path} is empty", "write the token into the file")
        return None
    return value


def _parse_exporter(raw: object, path: str, problems: Problems) -> ExporterConfig:
    fields = Fields.shorthand(raw, path, problems, string_means="endpoint")
    endpoint = fields.take_str("endpoint", "", if_missing="write e.g. grpc://collector:4317")
    name = fields.take_str("name", "")
    headers = fields.take_str_map("headers")
    compression = fields.take_str("compression", "none")
    timeout = fields.take_duration("timeout", 5.0)
    tls = None
    if fields.has("tls"):
        tls_fields = fields.take_section("tls")
        ca_file, cert_file = tls_fields.take_str("ca_file", None), tls_fields.take_str("cert_file", None)
        tls = ClientTls(ca_file, cert_file, tls_fields.take_str("key_file", None))
        tls_fields.done()
    retry_fields = fields.take_section("retry")
    default_retry = RetryConfig()
    retry = RetryConfig(
        enabled=retry_fields.take_bool("enabled", True),
        initial_interval=retry_fields.take_duration("initial_interval", default_retry.initial_interval),
        max_interval=retry_fields.take_duration("max_interval", default_retry.max_interval),
        max_elapsed_time=retry_fields.take_duration("max_elapsed_time", default_retry.max_elapsed_time),
        multiplier=retry_fields.take_float("multiplier", default_retry.multiplier),
        randomization_factor=retry_fields.take_float("randomization_factor", default_retry.randomization_factor),
    )
    retry_fields.done()
    queue_fields = fields.take_section("queue")
    default_queue = QueueConfig()
    queue = QueueConfig(
        max_requests=queue_fields.take_int("max_requests", default_queue.max_requests, minimum=1),
        max_bytes=queue_fields.take_size("max_bytes", default_queue.max_bytes),
        consumers=queue_fields.take_int("consumers", default_queue.consumers, minimum=1),
        max_batch_bytes=queue_fields.take_size("max_batch_bytes", default_queue.max_batch_bytes),
        max_batch_wait=queue_fields.take_duration("max_batch_wait", default_queue.max_batch_wait),
        fsync=queue_fields.take_bool("fsync", default_queue.fsync),
    )
    queue_fields.done()
    fields.done()
    return ExporterConfig(
        endpoint=endpoint,
        name=name,
        headers=headers,
        compression=compression,  # type: ignore[arg-type]  # validate() checks it
        timeout=timeout,
        tls=tls,
        retry=retry,
        queue=queue,
    )
