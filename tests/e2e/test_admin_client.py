"""The admin client commands against a secured processor: a bearer token, TLS and mTLS on the admin listener."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.certs import Certificates, make_certificates
from support.oncall import CONFIG, PER_VERSION, send_release
from support.processor import CLI, Processor, serve

TOKEN = "s3cret-admin-t0ken"
TOKEN_ENV = "OTEL_IMPACT_ADMIN_TOKEN"


@pytest.fixture(scope="module")
def certs() -> Iterator[Certificates]:
    with tempfile.TemporaryDirectory() as directory:
        yield make_certificates(Path(directory))


def admin_section(certs: Certificates, *, mtls: bool) -> str:
    client_ca = f", client_ca_file: {certs.ca}" if mtls else ""
    tls = f"{{cert_file: {certs.server_cert}, key_file: {certs.server_key}{client_ca}}}"
    return f"admin: {{endpoint: '127.0.0.1:0', tls: {tls}, auth: {{bearer_token: {TOKEN}}}}}\n"


def https_url(processor: Processor) -> str:
    return f"https://127.0.0.1:{processor.ports['admin']}"


def impact_events(processor: Processor, certs: Certificates) -> int:
    context = ssl.create_default_context(cafile=certs.ca)
    request = urllib.request.Request(
        f"{https_url(processor)}/api/v1/impact?task=checkout&window=5m", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            return int(json.load(response)["events"]["total"])
    except urllib.error.HTTPError:
        return 0  # no checkout analyzed yet


@pytest.fixture(scope="module")
def secured(certs: Certificates) -> Iterator[Processor]:
    """A processor whose admin listener wants TLS and a token, fed with one release of checkouts."""
    with serve(config=CONFIG + admin_section(certs, mtls=False)) as processor:
        send_release(processor, "1.4", None)
        deadline = time.monotonic() + 30
        while impact_events(processor, certs) < PER_VERSION:
            assert time.monotonic() < deadline, processor.log()[-3000:]
            time.sleep(0.2)
        yield processor


def report(*args: str, token_env: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    if token_env is not None:
        env[TOKEN_ENV] = token_env
    return subprocess.run(
        [CLI, "report", "--task", "checkout", "--window", "5m", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_without_a_token_the_error_says_how_to_pass_one(secured: Processor, certs: Certificates) -> None:
    result = report("--admin", https_url(secured), "--ca-cert", certs.ca)
    assert result.returncode != 0 and result.stdout == ""
    assert "the processor requires an admin token: pass --token or set OTEL_IMPACT_ADMIN_TOKEN" in result.stderr


def test_with_the_token_and_the_ca_it_prints_the_table(secured: Processor, certs: Certificates) -> None:
    result = report("--admin", https_url(secured), "--token", TOKEN, "--ca-cert", certs.ca)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Task 'checkout', last 5m")
    assert "impacted (95% bounds)" in result.stdout
    all_row = next(line for line in result.stdout.splitlines() if line.startswith("ALL"))
    assert all_row.split()[1] == f"{PER_VERSION:,}"
    assert TOKEN not in result.stdout + result.stderr


def test_the_token_comes_from_the_environment_too(secured: Processor, certs: Certificates) -> None:
    address = f"127.0.0.1:{secured.ports['admin']}"  # a bare address with --ca-cert means https
    result = report("--admin", address, "--ca-cert", certs.ca, token_env=TOKEN)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Task 'checkout'")


def test_a_wrong_token_is_refused_and_never_printed(secured: Processor, certs: Certificates) -> None:
    wrong = "not-the-t0ken"
    result = report("--admin", https_url(secured), "--token", wrong, "--ca-cert", certs.ca)
    assert result.returncode != 0
    assert "refused the admin token: check --token or OTEL_IMPACT_ADMIN_TOKEN" in result.stderr
    assert wrong not in result.stdout + result.stderr and TOKEN not in result.stderr


def test_an_untrusted_certificate_names_ca_cert(secured: Processor) -> None:
    result = report("--admin", https_url(secured), "--token", TOKEN)
    assert result.returncode != 0
    assert "cannot verify the certificate" in result.stderr and "--ca-cert FILE" in result.stderr


def test_plain_http_to_a_tls_listener_suggests_https(secured: Processor) -> None:
    result = report("--admin", f"http://127.0.0.1:{secured.ports['admin']}", "--token", TOKEN)
    assert result.returncode != 0
    assert "https://" in result.stderr, result.stderr


def test_mtls_needs_the_client_certificate(certs: Certificates) -> None:
    with serve(config=admin_section(certs, mtls=True)) as processor:
        without = report("--admin", https_url(processor), "--token", TOKEN, "--ca-cert", certs.ca)
        assert without.returncode != 0
        assert "--client-cert" in without.stderr, without.stderr
        client = ("--client-cert", certs.client_cert, "--client-key", certs.client_key)
        result = report("--admin", https_url(processor), "--token", TOKEN, "--ca-cert", certs.ca, *client)
        # Through TLS, the client certificate and the token: the processor itself answers (nothing analyzed yet).
        assert result.returncode == 2 and "unknown task 'checkout'" in result.stderr, result.stderr
