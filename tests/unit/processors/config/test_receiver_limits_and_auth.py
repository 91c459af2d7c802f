"""Receiver authentication is all or nothing, and the span limit per request is a setting."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from otel_impact.processors.config.model import DEFAULT_MAX_SPANS_PER_REQUEST
from otel_impact.processors.serve_config import ConfigurationErrors, Overrides, ServeConfig, load_config


def load(tmp_path: Path, text: str, overrides: Overrides | None = None) -> ServeConfig:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(replace(overrides or Overrides(), config_file=str(path)), environ={})


def problems_of(tmp_path: Path, text: str, overrides: Overrides | None = None) -> dict[str, str]:
    with pytest.raises(ConfigurationErrors) as raised:
        load(tmp_path, text, overrides)
    return {problem.setting: str(problem) for problem in raised.value.problems}


def test_a_token_on_http_only_leaves_grpc_open_and_is_refused_naming_it_and_the_fix(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        "receivers:\n"
        "  grpc: {endpoint: 0.0.0.0:4317}\n"
        "  http: {endpoint: 0.0.0.0:4318, auth: {bearer_token: s3cret}}\n",
    )
    assert set(found) == {"receivers.grpc.auth"}
    message = found["receivers.grpc.auth"]
    assert "receivers.http requires authentication" in message and "0.0.0.0:4317" in message
    assert "bearer_token" in message and "endpoint: none" in message
    assert "s3cret" not in message


def test_a_token_on_grpc_only_leaves_the_default_http_receiver_open(tmp_path: Path) -> None:
    found = problems_of(tmp_path, "receivers:\n  grpc: {auth: {bearer_token: s3cret}}\n")
    assert set(found) == {"receivers.http.auth"}


@pytest.mark.parametrize(
    "receivers",
    [
        "  grpc: {auth: {bearer_token: a}}\n  http: {auth: {bearer_token: b}}\n",
        "  grpc: {auth: {bearer_token: a}}\n  http: {endpoint: none}\n",
        "  grpc: {endpoint: none}\n  http: {auth: {bearer_token: b}}\n",
        "  grpc: {}\n  http: {}\n",  # no auth anywhere: open by default (documented)
    ],
    ids=["both", "http-off", "grpc-off", "none"],
)
def test_auth_on_every_open_receiver_or_on_none_is_accepted(tmp_path: Path, receivers: str) -> None:
    load(tmp_path, "receivers:\n" + receivers)


def test_mtls_counts_as_authentication(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("x")
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "cert.pem", "key.pem"))
    tls = f"{{cert_file: {cert}, key_file: {key}, client_ca_file: {ca}}}"
    text = f"receivers:\n  grpc: {{tls: {tls}}}\n  http: {{auth: {{bearer_token: b}}}}\n"
    try:
        load(tmp_path, text)
    except ConfigurationErrors as errors:  # only the placeholder files may be refused, not the auth
        assert all(not p.setting.endswith(".auth") for p in errors.problems), errors


def test_a_command_line_endpoint_is_checked_too(tmp_path: Path) -> None:
    text = "receivers:\n  grpc: {auth: {bearer_token: a}}\n  http: {endpoint: none}\n"
    found = problems_of(tmp_path, text, Overrides(otlp_http="0.0.0.0:4318"))
    assert "receivers.http.auth" in found


def test_max_spans_per_request_defaults_and_is_read(tmp_path: Path) -> None:
    assert load(tmp_path, "receivers: {}\n").receivers.max_spans_per_request == DEFAULT_MAX_SPANS_PER_REQUEST == 100_000
    assert load(tmp_path, "receivers: {max_spans_per_request: 5000}\n").receivers.max_spans_per_request == 5000
    assert load(tmp_path, "receivers: {max_spans_per_request: 0}\n").receivers.max_spans_per_request == 0
    assert "receivers.max_spans_per_request" in problems_of(tmp_path, "receivers: {max_spans_per_request: -1}\n")
