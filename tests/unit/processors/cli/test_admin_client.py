"""The admin client's options: where the token comes from, when TLS is used, and that the token never shows."""

from __future__ import annotations

import argparse

import pytest

from otel_impact.processors.cli import build_parser
from otel_impact.processors.cli._admin_client import AdminConnection, AdminError, add_admin_arguments, base_url


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_admin_arguments(parser)
    return parser.parse_args(list(argv))


def test_the_token_comes_from_the_option_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_IMPACT_ADMIN_TOKEN", raising=False)
    assert AdminConnection.from_args(parse()).token is None
    monkeypatch.setenv("OTEL_IMPACT_ADMIN_TOKEN", " from-env ")
    assert AdminConnection.from_args(parse()).token == "from-env"
    assert AdminConnection.from_args(parse("--token", "from-flag")).token == "from-flag"
    monkeypatch.setenv("OTEL_IMPACT_ADMIN_TOKEN", "")
    assert AdminConnection.from_args(parse()).token is None


def test_the_token_never_shows_in_repr() -> None:
    connection = AdminConnection.from_args(parse("--token", "hunter2-secret"))
    assert "hunter2-secret" not in repr(connection) and "hunter2-secret" not in str(connection)


def test_https_is_used_for_https_urls_and_for_bare_addresses_with_a_tls_option() -> None:
    assert base_url("localhost:9464") == "http://localhost:9464"
    assert base_url("https://host:9464/") == "https://host:9464"
    assert AdminConnection("host:9464").url == "http://host:9464"
    assert AdminConnection("host:9464", ca_cert="ca.pem").url == "https://host:9464"
    assert AdminConnection("http://host:9464", ca_cert="ca.pem").url == "http://host:9464"  # as written


@pytest.mark.parametrize(
    ("connection", "fix"),
    [
        (AdminConnection("http://127.0.0.1:9", ca_cert="ca.pem"), "use an https:// address"),
        (AdminConnection("https://127.0.0.1:9", client_key="k.pem"), "--client-key needs --client-cert"),
        (AdminConnection("https://127.0.0.1:9", ca_cert="/nonexistent/ca.pem"), "cannot load --ca-cert"),
    ],
)
def test_bad_tls_options_are_errors_that_name_the_fix(connection: AdminConnection, fix: str) -> None:
    with pytest.raises(AdminError, match=fix) as caught:
        connection.get_json("/api/v1/tasks")
    assert not caught.value.refused


REQUIRED = {
    "report": ["--task", "t"],
    "gate": ["--task", "t", "--baseline", "a=1", "--canary", "a=2"],
    "postmortem": ["--task", "t", "--from", "1", "--to", "2"],
}
ADMIN = ["--admin", "h:1", "--token", "x", "--ca-cert", "ca.pem", "--client-cert", "c.pem", "--client-key", "k.pem"]


@pytest.mark.parametrize("command", sorted(REQUIRED))
def test_every_client_command_takes_the_same_admin_options(command: str) -> None:
    connection = AdminConnection.from_args(build_parser().parse_args([command, *REQUIRED[command], *ADMIN]))
    assert (connection.admin, connection.token, connection.ca_cert) == ("h:1", "x", "ca.pem")
    assert (connection.client_cert, connection.client_key) == ("c.pem", "k.pem")
