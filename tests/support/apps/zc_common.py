"""Shared by the zero-code test apps (run under opentelemetry-instrument, with this folder on PYTHONPATH)."""

from __future__ import annotations

import socketserver
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from otel_impact._state import current_state
from otel_impact.instrumentation import status


def state_json() -> dict[str, Any]:
    """The impact state of the current context, as the app sees it (pseudonyms only)."""
    state = current_state()
    if state is None:
        return {"customer_hash": None, "tier": None, "flags": []}
    return {"customer_hash": state.customer_hash, "tier": state.tier, "flags": list(state.flag_strings())}


def status_json() -> dict[str, Any]:
    current = status()
    return {
        "enabled": current.enabled,
        "reason": current.reason,
        "hooks": list(current.hooks),
        "openfeature_hook": current.openfeature_hook,
    }


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_wsgi(app: Callable[..., Any]) -> None:
    """Serve ``app`` on a free loopback port, printed on the first line of stdout."""
    server = make_server("127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler)
    print(server.server_port, flush=True)
    server.serve_forever()
