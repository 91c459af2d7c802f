"""Config loading: defaults, precedence, errors that name the field and the fix, typed sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from otel_impact.processors.api.dashboard_config import DashboardConfig
from otel_impact.processors.config import HostPort
from otel_impact.processors.serve_config import ConfigurationErrors, Overrides, ServeConfig, load_config
from otel_impact.processors.sli import SliConfig
from otel_impact.processors.slo import AlertingConfig, SloConfig

TESTDATA = Path(__file__).parent / "testdata"


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
    config = load_config(Overrides(config_file=write(tmp_path, text)), environ={"VENDOR_API_KEY": "k"})
    collector, vendor = config.exporters
    assert dict(vendor.headers)["x-api-key"] == "k"
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


def test_each_analysis_section_is_a_typed_field(tmp_path: Path) -> None:
    defaults = load_config(Overrides(), environ={})
    assert defaults == ServeConfig()
    assert defaults.sli == SliConfig() and defaults.slos == ()
    assert defaults.alerting == AlertingConfig() and defaults.dashboard == DashboardConfig()
    text = (
        "sli:\n  max_tasks: 50\n"
        "slos:\n  - {name: checkout-availability, task: checkout, objective: 99.5}\n"
        "alerting:\n  evaluation_interval: 15s\n"
        "dashboard:\n  refresh: 30s\n"
    )
    config = load_config(Overrides(config_file=write(tmp_path, text)), environ={})
    assert isinstance(config.sli, SliConfig) and config.sli.max_tasks == 50
    (slo,) = config.slos
    assert isinstance(slo, SloConfig) and slo.name == "checkout-availability" and slo.objective == 99.5
    assert isinstance(config.alerting, AlertingConfig) and config.alerting.evaluation_interval == 15
    assert isinstance(config.dashboard, DashboardConfig) and config.dashboard.refresh_seconds == 30
    with pytest.raises(ConfigurationErrors, match=r"sli\.max_segmnts: unknown key"):
        load_config(Overrides(config_file=write(tmp_path, "sli:\n  max_segmnts: 50\n")), environ={})
    with pytest.raises(ConfigurationErrors, match="example: unknown key"):
        load_config(Overrides(config_file=write(tmp_path, "example: {}\n")), environ={})


@pytest.mark.parametrize(("written", "share"), [("90%", 0.9), ("0.5", 0.5), ("100%", 1.0)])
def test_the_dashboards_attribution_warning_is_a_share(tmp_path: Path, written: str, share: float) -> None:
    text = f"dashboard:\n  min_attribution: {written!r}\n"
    assert load_config(Overrides(config_file=write(tmp_path, text)), environ={}).dashboard.min_attribution == share


@pytest.mark.parametrize("written", ["120%", "most", "-0.1"])
def test_a_bad_attribution_warning_names_its_field(tmp_path: Path, written: str) -> None:
    text = f"dashboard:\n  min_attribution: {written!r}\n"
    with pytest.raises(ConfigurationErrors, match=r"dashboard\.min_attribution: .* Fix: write a percentage"):
        load_config(Overrides(config_file=write(tmp_path, text)), environ={})


def test_every_section_reports_its_problems_in_one_error(tmp_path: Path) -> None:
    text = (
        "exporters: [grpc://a]\n"
        "sli: {max_tasks: 0}\n"
        "slos: [{name: a, task: t, objective: 0.999}]\n"
        "alerting: {evaluation_interval: 500ms}\n"
        "dashboard: {refresh: 1s}\n"
        "extra: 1\n"
    )
    with pytest.raises(ConfigurationErrors) as raised:
        load_config(Overrides(config_file=write(tmp_path, text)), environ={})
    fields = {problem.setting for problem in raised.value.problems}
    assert fields == {
        "exporters[0].endpoint",
        "sli.max_tasks",
        "slos[0].objective",
        "alerting.evaluation_interval",
        "dashboard.refresh",
        "extra",
    }, str(raised.value)
    assert all(" Fix: " in line for line in str(raised.value).splitlines())
