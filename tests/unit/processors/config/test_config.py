"""Config loading: defaults, precedence, errors that name the field and the fix, registered sections."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from otel_impact.processors.config import (
    ConfigurationErrors,
    Fields,
    HostPort,
    Overrides,
    load_config,
    parse_config,
    register_section,
    unregister_section,
)

TESTDATA = Path(__file__).parent / "testdata"
CLI = str(Path(sys.executable).parent / "otel-impact")


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


def test_no_file_gives_the_documented_defaults() -> None:
    config = load_config(Overrides(), environ={})
    assert config.receivers.grpc.endpoint == HostPort("localhost", 4317)
    assert config.receivers.http.endpoint == HostPort("localhost", 4318)
    assert config.admin.endpoint == HostPort("localhost", 9464)
    assert config.receivers.max_request_bytes == 4 << 20
    assert config.exporters == () and config.state_dir is None
    assert not config.pseudonymization.enabled


def test_the_documented_example_is_valid(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    text = (TESTDATA / "config.yaml").read_text().replace("/etc/otel-impact/ingest-token", str(token))
    config = load_config(Overrides(config_file=write(tmp_path, text)), environ={})
    collector, vendor = config.exporters
    assert collector.protocol == "grpc" and collector.target == "otel-collector:4317"
    assert collector.retry.max_elapsed_time == 300 and collector.queue.max_bytes == 256 << 20
    assert vendor.protocol == "http" and vendor.uses_tls and vendor.traces_url.endswith("/v1/traces")
    assert config.receivers.http.auth.bearer_token == "s3cret"
    assert "s3cret" not in repr(config)
    assert config.drain_timeout == 15


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "receivers:\n  grpc: {endpoint: 'file:1'}\n  http: {endpoint: 'file:2'}\nadmin: {endpoint: 'file:3'}\n"
        "exporters: [grpc://file:4317]\nstate_dir: /file\n",
    )
    env = {"OTEL_IMPACT_OTLP_GRPC": "env:11", "OTEL_IMPACT_OTLP_HTTP": "env:12", "OTEL_IMPACT_FORWARD": "grpc://env:1"}
    config = load_config(Overrides(config_file=path, otlp_grpc="flag:21"), environ=env)
    assert str(config.receivers.grpc.endpoint) == "flag:21"  # flag beats env and file
    assert str(config.receivers.http.endpoint) == "env:12"  # env beats file
    assert str(config.admin.endpoint) == "file:3"  # file beats default
    assert [e.endpoint for e in config.exporters] == ["grpc://env:1"]
    assert config.state_dir == "/file"
    flagged = load_config(Overrides(config_file=path, forward=("http://flag:4318",), state_dir="/flag"), environ=env)
    assert [e.endpoint for e in flagged.exporters] == ["http://flag:4318"] and flagged.state_dir == "/flag"
    via_env = load_config(Overrides(), environ={"OTEL_IMPACT_CONFIG": path})
    assert str(via_env.admin.endpoint) == "file:3"


def test_none_turns_a_listener_off() -> None:
    config = load_config(Overrides(otlp_http="none"), environ={})
    assert config.receivers.http.endpoint is None and config.receivers.grpc.endpoint is not None


@pytest.mark.parametrize(
    ("text", "field", "fix"),
    [
        ("exporters:\n  - endpoint: grpc://a:1\n  - endpoint: ftp://b:2\n", "exporters[1].endpoint", "grpc://"),
        ("exporters:\n  - endpoint: grpc://a\n", "exporters[0].endpoint", "write e.g."),
        ("exporters:\n  - {endpoint: 'grpc://a:1', retry: {max_interval: 1s, initial_interval: 2s}}\n",
         "exporters[0].retry.max_interval", ">= initial_interval"),
        ("exporters:\n  - {endpoint: 'grpc://a:1', queue: {max_bytes: 10}}\n", "exporters[0].queue.max_bytes",
         "256MiB"),
        ("exporters:\n  - {endpoint: 'grpc://a:1', timeout: soon}\n", "exporters[0].timeout", "5s"),
        ("exporters:\n  - {endpoint: 'grpc://a:1', compresion: gzip}\n", "exporters[0].compresion", "compression"),
        ("exporters:\n  - grpc://a:1\n  - grpc://a:1\n", "exporters[1].name", "unique"),
        ("receivers:\n  grpc: {endpoint: 'localhost:99999'}\n", "receivers.grpc.endpoint", "65535"),
        ("receivers:\n  max_request_bytes: 12\n", "receivers.max_request_bytes", "4MiB"),
        ("recievers: {}\n", "recievers", "receivers"),
        ("admin: [1, 2]\n", "admin", "key: value"),
        ("pseudonymization:\n  attributes: enduser.id\n", "pseudonymization.attributes", "[a, b]"),
        ("drain_timeout: -1\n", "drain_timeout", "positive"),
        ("a: [\n", "config.yaml", "YAML"),
    ],
)  # fmt: skip
def test_errors_name_the_field_and_the_fix(tmp_path: Path, text: str, field: str, fix: str) -> None:
    with pytest.raises(ConfigurationErrors) as raised:
        load_config(Overrides(config_file=write(tmp_path, text)), environ={})
    message = str(raised.value)
    assert message.split(":", maxsplit=1)[0].endswith(field), message
    assert "Fix:" in message and fix in message.split("Fix:", 1)[1], message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = "exporters:\n  - {endpoint: 'grpc://a', timeout: 0}\n"
    with pytest.raises(ConfigurationErrors) as raised:
        load_config(Overrides(config_file=write(tmp_path, text)), environ={})
    fields = [problem.setting for problem in raised.value.problems]
    assert fields == ["exporters[0].endpoint", "exporters[0].timeout"]


@dataclass(frozen=True)
class ExampleSection:
    max_segments: int = 1000


def parse_example(raw: object, path: str) -> ExampleSection:
    fields = Fields(raw, path)
    section = ExampleSection(fields.take_int("max_segments", 1000, minimum=1))
    fields.done()
    return section


def test_components_register_their_own_sections(tmp_path: Path) -> None:
    register_section("example", parse_example)
    try:
        assert parse_config(None).section("example") == ExampleSection()
        config = load_config(Overrides(config_file=write(tmp_path, "example:\n  max_segments: 50\n")), environ={})
        assert config.section("example") == ExampleSection(50)
        with pytest.raises(ConfigurationErrors, match=r"example\.max_segmnts: unknown key"):
            load_config(Overrides(config_file=write(tmp_path, "example:\n  max_segmnts: 50\n")), environ={})
        with pytest.raises(ValueError, match="already registered"):
            register_section("example", lambda raw, path: None)
    finally:
        unregister_section("example")
    with pytest.raises(ConfigurationErrors, match="example: unknown key"):
        load_config(Overrides(config_file=write(tmp_path, "example: {}\n")), environ={})


def test_check_config_command(tmp_path: Path) -> None:
    good = subprocess.run([CLI, "check-config", str(TESTDATA / "config.yaml")], capture_output=True, text=True)
    # The example names a token file that does not exist here: a clear error, exit code 2.
    assert good.returncode == 2 and "receivers.http.auth.bearer_token_file" in good.stderr, good.stderr
    ok = subprocess.run(
        [CLI, "check-config", write(tmp_path, "exporters: [grpc://collector:4317]\n")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert ok.returncode == 0 and "forward: grpc://collector:4317 (grpc)" in ok.stdout, ok.stderr
    missing_key = subprocess.run(
        [CLI, "check-config", write(tmp_path, "pseudonymization: {attributes: [enduser.id]}\n")],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert missing_key.returncode == 2
    assert "pseudonymization.attributes: pseudonymization is configured but no key is set" in missing_key.stderr
    assert "OTEL_IMPACT_HASH_KEY" in missing_key.stderr
