"""Hostile clients against ``otel-impact serve``: slow connections, floods, malformed requests, bad times.

The processor runs with the common open-files limit of 1024 and short header and request timeouts;
the test opens 1,100 half-sent connections to each HTTP server. A good client must still be
answered, the slow connections closed, the log stay small (and likewise for 1,100 connections to
the OTLP/gRPC port that never finish the HTTP/2 preface); every answer of the admin server
carries the security headers; every time parameter out of range gets a 400 naming it.
"""

from __future__ import annotations

import resource
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
import requests
from support.oncall import send_release
from support.otlp_requests import make_request
from support.processor import Processor, grpc_export, serve

pytestmark = pytest.mark.slow

SLOW = 1100
FILES_LIMIT = 1024
CONFIG = """
admin: {read_header_timeout: 2s, read_timeout: 3s}
receivers:
  http: {read_header_timeout: 2s, read_timeout: 3s}
  grpc: {read_header_timeout: 2s}
"""
SLOW_BODY = (
    b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100\r\n\r\n\x0a"
)
"""Headers complete, one byte of a 100-byte body: the request deadline applies."""
SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy")


@pytest.fixture(scope="module")
def processor() -> Iterator[Processor]:
    """A processor whose open-files limit is 1024 (set here and inherited; the test's own is restored)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(FILES_LIMIT, hard), hard))
    try:
        context = serve(config=CONFIG)
        running = context.__enter__()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        yield running
    finally:
        context.__exit__(None, None, None)


def _half_sent(port: int, count: int, partial: bytes) -> list[socket.socket]:
    """``count`` connections that each sent ``partial`` (an unfinished request) and then nothing."""
    opened = []
    for _ in range(count):
        sock = socket.socket()
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(partial)
        except OSError:  # refused or reset at once: the server is at its cap
            sock.close()
            continue
        opened.append(sock)
    return opened


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (what it sent before, e.g. HTTP/2 settings, is skipped)."""
    sock.settimeout(0.01)
    try:
        while sock.recv(4096):
            pass
        return True
    except TimeoutError:
        return False
    except OSError:  # reset
        return True


def _answered_within(seconds: float, attempt: object) -> bool:
    """Whether ``attempt()`` succeeds (retried on connection errors) within ``seconds``."""
    assert callable(attempt)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if attempt():
                return True
        except (OSError, requests.RequestException, grpc.RpcError):
            pass
        time.sleep(0.1)
    return False


def test_slow_clients_neither_block_good_ones_nor_flood_the_log(processor: Processor) -> None:
    log_before = len(processor.log().encode())
    admin, http = processor.ports["admin"], processor.ports["otlp_http"]
    slow = _half_sent(admin, SLOW, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    slow += _half_sent(http, SLOW, SLOW_BODY)
    slow += _half_sent(processor.ports["otlp_grpc"], SLOW, b"PRI * HTTP/2.0\r\n")  # half the HTTP/2 preface
    try:

        def health() -> bool:
            return requests.get(f"http://127.0.0.1:{admin}/healthz", timeout=2).status_code == 200

        def export() -> bool:
            reply = requests.post(
                processor.http_url,
                data=make_request(2),
                headers={"Content-Type": "application/x-protobuf"},
                timeout=2,
            )
            return reply.status_code == 200

        assert _answered_within(10, health), "the admin server did not answer a good client within 10 s"
        assert _answered_within(10, export), "the OTLP/HTTP receiver did not answer a good client within 10 s"

        def grpc_call() -> bool:
            grpc_export(processor.ports["otlp_grpc"], make_request(2), timeout=2)
            return True

        assert _answered_within(10, grpc_call), "the OTLP/gRPC receiver did not answer a good client within 10 s"
        deadline = time.monotonic() + 10  # the timeouts are 2 s and 3 s
        while time.monotonic() < deadline and not all(_closed(sock) for sock in slow):
            time.sleep(0.2)
        still_open = sum(not _closed(sock) for sock in slow)
        assert still_open == 0, f"{still_open} slow connections still open 10 s after a 2 s header timeout"
    finally:
        for sock in slow:
            sock.close()
    closed = {
        (server, reason): processor.metric_sum(
            "otel_impact_server_closed_connections_total", server=server, reason=reason
        )
        for server in ("admin", "otlp_http")
        for reason in ("read_header_timeout", "read_timeout")
    }
    assert closed[("admin", "read_header_timeout")] > 0 and closed[("otlp_http", "read_timeout")] > 0, closed
    grown = len(processor.log().encode()) - log_before
    assert grown < 100_000, f"the log grew by {grown} bytes under attack:\n{processor.log()[-3000:]}"
    assert "Too many open files" not in processor.log() or grown < 100_000
    assert "Traceback" not in processor.log()


def test_a_malformed_request_is_one_log_line(processor: Processor) -> None:
    before = processor.log().splitlines()
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", processor.ports["admin"]), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
            assert sock.recv(1024).split(b"\r\n", 1)[0].endswith(b" 400 Bad Request")
    time.sleep(0.2)
    added = processor.log().splitlines()[len(before) :]
    assert len(added) == 1, added  # the next four are counted into the next line, at most one per 10 s
    assert "admin" in added[0] and "Traceback" not in processor.log()


ADMIN_PATHS = ("/", "/static/dashboard.js", "/static/dashboard.css", "/api/v1/tasks", "/metrics", "/healthz", "/nope")


@pytest.mark.parametrize("path", ADMIN_PATHS)
def test_every_admin_answer_carries_the_security_headers(processor: Processor, path: str) -> None:
    reply = requests.get(processor.admin_url + path, timeout=10)
    assert reply.status_code == (404 if path == "/nope" else 200)
    for name in SECURITY_HEADERS:
        assert name in reply.headers, f"{name} missing on {path}"
    policy = reply.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


def test_a_401_carries_the_security_headers() -> None:
    with serve(config="admin: {auth: {bearer_token: secret-token}}\n") as locked:
        reply = requests.get(locked.admin_url + "/api/v1/tasks", timeout=10)
    assert reply.status_code == 401
    assert all(name in reply.headers for name in SECURITY_HEADERS)


BAD_TIMES = ("99999999999999999999", "1e308", "-1e308", "inf", "nan", "10000-01-01T00:00:00Z")
TIMED_ROUTES = (
    ("/api/v1/impact?task=checkout", "end"),
    ("/api/v1/customers/top?task=checkout", "end"),
    ("/api/v1/postmortem?task=checkout&from=1767225600&to=1767229200", "mitigated_at"),
    ("/api/v1/postmortem?task=checkout&to=1767229200", "from"),
    ("/api/v1/postmortem?task=checkout&from=1767225600", "to"),
    ("/api/v1/alerts?", "from"),
    ("/api/v1/alerts?", "to"),
)


def _status(processor: Processor, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(processor.admin_url + path, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


@pytest.fixture(scope="module")
def with_checkout(processor: Processor) -> Processor:
    """The processor after one ``checkout`` task, so the routes that need a known task get that far."""
    send_release(processor, "1.0", None)
    processor.wait_for(lambda: _status(processor, "/api/v1/impact?task=checkout")[0] == 200, what="checkout")
    return processor


@pytest.mark.parametrize(("route", "name"), TIMED_ROUTES)
def test_times_out_of_range_get_400_naming_the_parameter(with_checkout: Processor, route: str, name: str) -> None:
    for value in BAD_TIMES:
        status, body = _status(with_checkout, f"{route}&{name}={urllib.request.quote(value)}")
        assert status == 400, (route, name, value, body)
        assert name in body, body


def test_huge_numbers_elsewhere_get_400_naming_the_parameter(with_checkout: Processor) -> None:
    gate = "/api/v1/gate?task=checkout&baseline=tier=free&canary=tier=pro"
    for name in ("confidence", "min_events", "latency_threshold"):
        for value in ("inf", "nan", "-inf"):
            status, body = _status(with_checkout, f"{gate}&{name}={value}")
            assert status == 400 and name in body, (name, value, body)
    for value in ("1e308", "99999999999999999999d"):
        status, body = _status(with_checkout, f"/api/v1/dashboard?window={value}")
        assert status == 400 and "window" in body, body
