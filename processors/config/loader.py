"""Loading `ServeConfig`: defaults < YAML file < ``OTEL_IMPACT_*`` environment < command-line flags.

=========================== =========================== ==========================================
flag                        environment variable        file
=========================== =========================== ==========================================
``--otlp-grpc HOST:PORT``   ``OTEL_IMPACT_OTLP_GRPC``   ``receivers.grpc.endpoint``
``--otlp-http HOST:PORT``   ``OTEL_IMPACT_OTLP_HTTP``   ``receivers.http.endpoint``
``--admin HOST:PORT``       ``OTEL_IMPACT_ADMIN``       ``admin.endpoint``
``--forward URL`` (repeat)  ``OTEL_IMPACT_FORWARD``     ``exporters`` (a flag or variable replaces
                            (comma-separated)           the file's list)
``--config FILE``           ``OTEL_IMPACT_CONFIG``      (none)
``--state DIR``             ``OTEL_IMPACT_STATE_DIR``   ``state_dir``
=========================== =========================== ==========================================

An endpoint of ``none`` turns that server off. Every error is a `ConfigurationError` naming the
field (``exporters[1].endpoint``) and the fix; `load_config` raises `ConfigurationErrors` with all of them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import yaml

from otel_impact import ConfigurationError, ConfigurationErrors

from ._fields import Fields, Problems, join
from .model import (
    DEFAULT_ADMIN,
    DEFAULT_GRPC,
    DEFAULT_HTTP,
    DEFAULT_MAX_REQUEST_BYTES,
    ClientTls,
    ExporterConfig,
    HostPort,
    Listener,
    PseudonymizationConfig,
    QueueConfig,
    ReceiversConfig,
    RetryConfig,
    ServeConfig,
    ServerAuth,
    ServerTls,
)
from .sections import registered_sections

ENV_PREFIX: Final = "OTEL_IMPACT_"
MAX_CONFIG_BYTES: Final = 1 << 20


FLAGS: Final = {"OTLP_GRPC": "--otlp-grpc", "OTLP_HTTP": "--otlp-http", "ADMIN": "--admin", "STATE_DIR": "--state"}


@dataclass(frozen=True)
class Overrides:
    """Values from the command line; ``None`` (or empty) means not given."""

    otlp_grpc: str | None = None
    otlp_http: str | None = None
    admin: str | None = None
    forward: tuple[str, ...] = ()
    config_file: str | None = None
    state_dir: str | None = None


def read_yaml(path: str) -> Any:
    """The parsed YAML document in ``path``."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise ConfigurationError(
            "--config", f"cannot read {path} ({error.strerror or type(error).__name__})", "point it to a readable file"
        ) from None
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigurationError("--config", "the file is larger than 1 MiB", "is this the right file?")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigurationError(path, f"{problem}{where}", "fix the YAML syntax") from None


def load_config(overrides: Overrides = Overrides(), environ: Mapping[str, str] | None = None) -> ServeConfig:
    """Build and validate the config; raises `ConfigurationErrors`."""
    env = os.environ if environ is None else environ
    config_file = overrides.config_file or env.get(f"{ENV_PREFIX}CONFIG") or None
    try:
        raw = read_yaml(config_file) if config_file else None
        config = parse_config(raw)
        config = _apply_overrides(config, overrides, env)
    except ConfigurationErrors:
        raise
    except ConfigurationError as error:
        raise ConfigurationErrors([error]) from None
    problems = config.validate()
    if problems:
        raise ConfigurationErrors(problems)
    return config


def parse_config(raw: Any) -> ServeConfig:
    """Parse a YAML document (``None`` for none) into a `ServeConfig` (not yet validated).

    Raises `ConfigurationErrors` listing every problem of every section.
    """
    top = Fields(raw, "")
    receivers = _parse_receivers(top.take_section("receivers"))
    admin = _parse_listener(top.take_section("admin"), DEFAULT_ADMIN)
    exporters_raw = top.take_list("exporters", "write one '- endpoint: URL' item per downstream")
    exporters = tuple(_parse_exporter(item, join("exporters", i), top.problems) for i, item in enumerate(exporters_raw))
    pseudonymization = _parse_pseudonymization(top.take_section("pseudonymization"))
    state_dir = top.take_str("state_dir", None)
    drain_timeout = top.take_duration("drain_timeout", 10.0)
    log_level = top.take_str("log_level", "info")
    sections: dict[str, Any] = {}
    for name, section in registered_sections().items():
        with top.problems.collecting():  # report every section's problems at once
            sections[name] = section.parse(top.take(name), name)
    top.done()
    return ServeConfig(
        receivers=receivers,
        admin=admin,
        exporters=exporters,
        pseudonymization=pseudonymization,
        state_dir=state_dir,
        drain_timeout=drain_timeout,
        log_level=log_level,
        sections=sections,
    )


def _endpoint(value: Any, path: str) -> HostPort | None:
    if value is None or value == "none":
        return None
    if not isinstance(value, str):
        raise ConfigurationError(path, f"expected HOST:PORT, got {value!r}", "write e.g. localhost:4317, or none")
    return HostPort.parse(value, path)


def _parse_listener(fields: Fields, default_endpoint: str) -> Listener:
    endpoint = None
    with fields.problems.collecting():
        endpoint = _endpoint(fields.take("endpoint", default_endpoint), fields.at("endpoint"))
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
    fields.done()
    return Listener(endpoint, tls, auth)


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


def _parse_receivers(fields: Fields) -> ReceiversConfig:
    grpc = _parse_listener(fields.take_section("grpc"), DEFAULT_GRPC)
    http = _parse_listener(fields.take_section("http"), DEFAULT_HTTP)
    max_bytes = fields.take_size("max_request_bytes", DEFAULT_MAX_REQUEST_BYTES)
    fields.done()
    return ReceiversConfig(grpc, http, max_bytes)


def _parse_exporter(raw: Any, path: str, problems: Problems) -> ExporterConfig:
    fields = Fields({"endpoint": raw} if isinstance(raw, str) else raw, path, problems)
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


def _parse_pseudonymization(fields: Fields) -> PseudonymizationConfig:
    config = PseudonymizationConfig(
        attributes=fields.take_str_list("attributes"),
        key_file=fields.take_str("key_file", None),
        algorithm=fields.take_str("algorithm", "hmac-sha256"),
    )
    fields.done()
    return config


def _apply_overrides(config: ServeConfig, overrides: Overrides, env: Mapping[str, str]) -> ServeConfig:
    def pick(flag: str | None, variable: str) -> tuple[str, str] | None:
        if flag is not None:
            return flag, FLAGS[variable]
        value = env.get(ENV_PREFIX + variable)
        return (value, ENV_PREFIX + variable) if value else None

    receivers = config.receivers
    if (chosen := pick(overrides.otlp_grpc, "OTLP_GRPC")) is not None:
        receivers = replace(receivers, grpc=replace(receivers.grpc, endpoint=_endpoint(*chosen)))
    if (chosen := pick(overrides.otlp_http, "OTLP_HTTP")) is not None:
        receivers = replace(receivers, http=replace(receivers.http, endpoint=_endpoint(*chosen)))
    admin = config.admin
    if (chosen := pick(overrides.admin, "ADMIN")) is not None:
        admin = replace(admin, endpoint=_endpoint(*chosen))
    exporters = config.exporters
    if overrides.forward:
        exporters = tuple(ExporterConfig(endpoint=url) for url in overrides.forward)
    elif env.get(ENV_PREFIX + "FORWARD"):
        urls = [url.strip() for url in env[ENV_PREFIX + "FORWARD"].split(",") if url.strip()]
        exporters = tuple(ExporterConfig(endpoint=url) for url in urls)
    state_dir = config.state_dir
    if (chosen := pick(overrides.state_dir, "STATE_DIR")) is not None:
        state_dir = chosen[0]
    return replace(config, receivers=receivers, admin=admin, exporters=exporters, state_dir=state_dir)
