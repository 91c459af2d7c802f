"""The servers' limits in the config: defaults, reading, errors that name the field and the fix, and
what the gRPC receiver makes of them."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
import yaml

from otel_impact.processors.config import Problems, ServerLimits, parse_receivers
from otel_impact.processors.config.model import FILES_RESERVE, default_max_connections
from otel_impact.processors.intake.grpc_receiver import server_options
from otel_impact.processors.serve_config import ConfigurationErrors, Overrides, ServeConfig, load_config


def load(tmp_path: Path, text: str) -> ServeConfig:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(Overrides(config_file=str(path)), environ={})


def problems_of(tmp_path: Path, text: str) -> dict[str, str]:
    with pytest.raises(ConfigurationErrors) as raised:
        load(tmp_path, text)
    return {problem.setting: str(problem) for problem in raised.value.problems}


def test_every_server_has_limits_by_default(tmp_path: Path) -> None:
    config = load(tmp_path, "log_level: info\n")
    for listener in (config.receivers.grpc, config.receivers.http, config.admin):
        assert listener.limits == ServerLimits()
    assert config.receivers.max_decompression_ratio == 100
    limits = ServerLimits()
    assert (limits.read_header_timeout, limits.read_timeout, limits.idle_timeout) == (10.0, 60.0, 60.0)
    assert limits.max_connections is None and limits.connection_cap() == default_max_connections()


def test_limits_are_read_for_each_server(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "receivers:\n"
        "  max_decompression_ratio: 250\n"
        "  http: {read_header_timeout: 2s, read_timeout: 30s, idle_timeout: 90s, max_connections: 500}\n"
        "  grpc: {read_header_timeout: 5s, idle_timeout: 5m, max_connections: 50, max_connection_age: 1h,\n"
        "         max_connection_age_grace: 10s, keepalive_time: 30m, keepalive_timeout: 5s,\n"
        "         max_concurrent_streams: 16}\n"
        "admin: {read_header_timeout: 1s, max_connections: 20}\n",
    )
    assert config.receivers.max_decompression_ratio == 250
    assert config.receivers.http.limits == ServerLimits(
        read_header_timeout=2, read_timeout=30, idle_timeout=90, max_connections=500
    )
    grpc = config.receivers.grpc.limits
    assert (grpc.read_header_timeout, grpc.idle_timeout, grpc.max_connections) == (5, 300, 50)
    assert (grpc.grpc_max_connection_age, grpc.grpc_max_connection_age_grace) == (3600, 10)
    assert (grpc.grpc_keepalive_time, grpc.grpc_keepalive_timeout, grpc.grpc_max_concurrent_streams) == (1800, 5, 16)
    assert config.admin.limits == ServerLimits(read_header_timeout=1, max_connections=20)


def test_bad_limits_name_the_field_and_the_fix(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        "receivers:\n"
        "  max_decompression_ratio: 1\n"
        "  http: {read_header_timeout: 0s, read_timeout: 1s, idle_timeout: 2h, max_connections: 0,\n"
        "         keepalive_time: 1h}\n"
        "  grpc: {read_timeout: 5s, max_concurrent_streams: 0}\n"
        "admin: {read_header_timeout: 20s, read_timeout: 10s}\n",
    )
    assert "use e.g. 100" in found["receivers.max_decompression_ratio"]
    assert "use e.g. 10s" in found["receivers.http.read_header_timeout"]
    assert "use e.g. 60s" in found["receivers.http.idle_timeout"]
    assert "at least 1" in found["receivers.http.max_connections"]
    assert "unknown key" in found["receivers.http.keepalive_time"]  # gRPC only
    assert "max_connection_age" in found["receivers.grpc.read_timeout"]  # gRPC has max_connection_age instead
    assert "at least 1" in found["receivers.grpc.max_concurrent_streams"]
    assert "make it >= read_header_timeout" in found["admin.read_timeout"]


def test_the_default_cap_is_a_quarter_of_the_open_files_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        assert default_max_connections() == max(16, (soft - FILES_RESERVE) // 4)
    assert (1024 - FILES_RESERVE) // 4 == 240  # three servers at their caps leave files for the rest


def test_the_grpc_server_options_carry_the_limits() -> None:
    limits = ServerLimits(read_header_timeout=5, idle_timeout=120, max_connections=300, grpc_max_concurrent_streams=8)
    options = dict(server_options(limits, 4 << 20))
    assert options["grpc.per_message_decompression"] == 0  # the receiver decompresses, within the ratio
    assert options["grpc.max_receive_message_length"] == 16 << 20
    assert options["grpc.server_handshake_timeout_ms"] == 5000
    assert options["grpc.max_connection_idle_ms"] == 120_000
    assert options["grpc.max_connection_age_ms"] == 1_800_000
    assert options["grpc.max_connection_age_grace_ms"] == 30_000
    assert options["grpc.keepalive_time_ms"] == 7_200_000 and options["grpc.keepalive_timeout_ms"] == 20_000
    assert options["grpc.max_concurrent_streams"] == 8
    assert options["grpc.max_allowed_incoming_connections"] == 300
    never = dict(server_options(ServerLimits(grpc_max_connection_age=0), 4 << 20))
    assert "grpc.max_connection_age_ms" not in never


def test_the_documented_example_sets_the_limits() -> None:
    raw = yaml.safe_load((Path(__file__).parent / "testdata" / "config.yaml").read_text())
    for receiver in ("grpc", "http"):
        del raw["receivers"][receiver]["auth"]  # a placeholder file
    problems = Problems()
    receivers = parse_receivers(raw["receivers"], "receivers", problems)
    assert len(problems) == 0, problems.items
    assert receivers.http.limits == ServerLimits(max_connections=1000)
    assert receivers.grpc.limits == ServerLimits() and receivers.max_decompression_ratio == 100
