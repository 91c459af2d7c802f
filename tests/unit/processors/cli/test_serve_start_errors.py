"""What ``serve`` says when it cannot start: one `ListenError` line naming the server, the address
and the fix; and a start that never accepted data shuts down without a word about draining."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket

import pytest
from prometheus_client import CollectorRegistry

from otel_impact.processors.serve_config import Overrides, load_config
from otel_impact.processors.service import ListenError, ProcessorService


def test_a_port_in_use_names_the_server_the_address_and_the_flag() -> None:
    error = ListenError("OTLP/gRPC", "127.0.0.1:4317", "--otlp-grpc", OSError(errno.EADDRINUSE, "in use"))
    assert str(error) == (
        "cannot listen on 127.0.0.1:4317 for OTLP/gRPC: address already in use "
        "(choose another with --otlp-grpc or stop the other process)"
    )
    assert isinstance(error, OSError) and error.errno == errno.EADDRINUSE


def test_other_bind_failures_say_why_and_where_to_look() -> None:
    denied = ListenError("admin", "0.0.0.0:80", "--admin", PermissionError(errno.EACCES, "Permission denied"))
    assert str(denied).startswith("cannot listen on 0.0.0.0:80 for admin: permission denied (choose a port above 1023")
    lookup = ListenError("OTLP/HTTP", "nohost:4318", "--otlp-http", socket.gaierror(-2, "Name or service not known"))
    assert str(lookup) == (
        "cannot listen on nohost:4318 for OTLP/HTTP: name or service not known "
        "(check the address given with --otlp-http or in the config file)"
    )


@pytest.mark.parametrize(
    ("server", "overrides"),
    [
        ("OTLP/gRPC", {"otlp_http": "none", "admin": "none"}),
        ("OTLP/HTTP", {"otlp_grpc": "127.0.0.1:0", "admin": "none"}),
        ("admin", {"otlp_grpc": "127.0.0.1:0", "otlp_http": "none"}),
    ],
)
def test_a_failed_start_stops_quietly(server: str, overrides: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    key = {"OTLP/gRPC": "otlp_grpc", "OTLP/HTTP": "otlp_http", "admin": "admin"}[server]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        config = load_config(Overrides(**{**overrides, key: address}), environ={})  # type: ignore[arg-type]
        service = ProcessorService(config, registry=CollectorRegistry())
        with caplog.at_level(logging.INFO), pytest.raises(ListenError) as raised:
            asyncio.run(service.run())
    assert raised.value.server == server and raised.value.address == address
    assert not [record for record in caplog.records if "drain" in record.getMessage()]
