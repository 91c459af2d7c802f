"""Flask hello-world served by werkzeug (one thread, HTTP/1.1 keep-alive, no request log), for
`bench_flask_instrument.py`, which runs it under ``opentelemetry-instrument``. Prints its port.

``--drive N`` serves no socket: it calls the app in-process for 512 warm-up requests and then
``N`` more (the customer headers of the load generator), flushing every span after each part,
and exits. ``--until-stop`` serves until a request for ``/stop``, flushes every span and exits.
`bench_flask_instrument.py --instructions` counts their instructions under callgrind.
"""

from __future__ import annotations

import sys

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

app = Flask(__name__)

TIERS = ("free", "pro", "enterprise")


@app.get("/")
def hello() -> str:
    return "Hello, World!"


class KeepAliveHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, *args: object, **kwargs: object) -> None:
        pass


def drive(n: int) -> None:
    """512 warm-up requests, then ``n``, each part followed by a flush of the exporter."""
    from opentelemetry import trace  # noqa: PLC0415 - only in this mode
    from werkzeug.test import EnvironBuilder  # noqa: PLC0415

    environs = [
        EnvironBuilder(
            path="/", headers={"X-Customer-Id": f"customer-{i % 1000}", "X-Customer-Tier": TIERS[i % 3]}
        ).get_environ()
        for i in range(3000)
    ]

    def start_response(status: str, headers: object, exc_info: object = None) -> None:
        return None

    def run(first: int, count: int) -> None:
        for i in range(first, first + count):
            for _ in app(dict(environs[i % 3000]), start_response):
                pass

    provider = trace.get_tracer_provider()
    run(0, 512)
    getattr(provider, "force_flush", lambda: True)()
    run(512, n)
    getattr(provider, "force_flush", lambda: True)()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--drive":
        drive(int(sys.argv[2]))
        sys.exit(0)
    server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=KeepAliveHandler)
    print(server.server_port, flush=True)
    if sys.argv[1:] == ["--until-stop"]:
        stopped = []
        app.add_url_rule("/stop", "stop", lambda: stopped.append(True) or "stopping")
        while not stopped:
            server.handle_request()
        from opentelemetry import trace

        getattr(trace.get_tracer_provider(), "force_flush", lambda: True)()
        sys.exit(0)
    server.serve_forever()
