"""`ConnectionGuard` in process, over loopback: the cap, the header, request and idle deadlines; quiet logs."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

from otel_impact.processors.config import ServerLimits
from otel_impact.processors.intake.server_guard import (
    ConnectionGuard,
    GuardedSite,
    OneLineLogger,
    RateLimitedLog,
    quiet_accept_errors,
)


async def _echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


async def _serve(guard: ConnectionGuard) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_post("/", _echo)
    guard.install(app)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0, guard)
    await site.start()
    return runner, site.port


async def _is_closed(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), within) == b""
    except TimeoutError:
        return False
    except ConnectionError:
        return True


def test_the_cap_header_request_and_idle_deadlines() -> None:
    closed: list[str] = []
    limits = ServerLimits(read_header_timeout=1.5, read_timeout=3.0, idle_timeout=4.0, max_connections=3)

    async def scenario() -> None:
        guard = ConnectionGuard("test", limits, closed.append)
        runner, port = await _serve(guard)
        try:
            opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
            headers_only = opened[0][1]
            headers_only.write(b"POST / HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
            opened[1][1].write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")  # half a body
            good_reader, good_writer = opened[2]
            good_writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
            assert (await good_reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            assert await good_reader.readexactly(2) == b"ok"
            extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", port)
            assert await _is_closed(extra_reader, 1.0)  # the fourth: closed at once
            extra_writer.close()
            assert closed[0] == "max_connections"
            assert await _is_closed(opened[0][0], 5.0)
            assert await _is_closed(opened[1][0], 5.0)
            assert sorted(closed) == ["max_connections", "read_header_timeout", "read_timeout"]
            assert await _is_closed(good_reader, 5.0)  # idle after its answer
            assert len(closed) == 3  # idle closes are normal: not counted
            for _, writer in opened:
                writer.close()
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


def test_a_keep_alive_connection_gets_a_new_header_deadline_per_request() -> None:
    closed: list[str] = []
    limits = ServerLimits(read_header_timeout=1.0, read_timeout=2.0, idle_timeout=5.0)

    async def scenario() -> None:
        runner, port = await _serve(ConnectionGuard("test", limits, closed.append))
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(3):  # each request in time, 2.4 s in all: past one header deadline
                await asyncio.sleep(0.8)
                writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx")
                assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
                await reader.readexactly(1)
            writer.write(b"POST / HTTP/1.1\r\n")  # then one that stalls
            assert await _is_closed(reader, 4.0)
            assert closed == ["read_header_timeout"]
            writer.close()
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


def test_rate_limited_lines_count_what_they_leave_out(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    lines = RateLimitedLog(logging.getLogger("test.lines"), interval=10, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.lines"):
        assert lines.log(logging.WARNING, "k", "first")
        assert not lines.log(logging.WARNING, "k", "second")
        assert not lines.log(logging.WARNING, "k", "third")
        assert lines.log(logging.WARNING, "other", "another kind")
        now[0] = 10.0
        assert lines.log(logging.WARNING, "k", "fourth")
    assert [record.getMessage() for record in caplog.records] == [
        "first",
        "another kind",
        "fourth (and 2 more like it in the last 10s)",
    ]


def test_a_request_error_is_one_line_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    one_line = OneLineLogger("admin", RateLimitedLog(logging.getLogger("otel_impact.processor")))
    with caplog.at_level(logging.DEBUG, logger="otel_impact.processor"):
        try:
            raise ValueError("Invalid header token\n\n  b'x'\n  ^")
        except ValueError as error:
            one_line.exception("Error handling request from %s", "127.0.0.1", exc_info=error)
            one_line.exception("Error handling request from %s", "127.0.0.1", exc_info=error)
        one_line.exception("Error handling request", exc_info=ConnectionResetError("Connection lost"))
    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].exc_info is None
    assert warnings[0].getMessage() == (
        "otel-impact: admin: Error handling request from 127.0.0.1: ValueError Invalid header token"
    )


def test_accept_errors_are_one_line_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        quiet_accept_errors(loop)
        quiet_accept_errors(loop)  # idempotent
        context = {"message": "socket.accept() out of system resource", "exception": OSError(24, "Too many open files")}
        for _ in range(50):
            loop.call_exception_handler(dict(context))

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    lines = [record for record in caplog.records if "accept" in record.getMessage()]
    assert len(lines) == 1 and "Too many open files" in lines[0].getMessage() and lines[0].exc_info is None
