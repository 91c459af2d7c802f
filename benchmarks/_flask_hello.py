"""Flask hello-world served by werkzeug (one thread, HTTP/1.1 keep-alive, no request log), for
`bench_flask_instrument.py`, which runs it under ``opentelemetry-instrument``. Prints its port."""

from __future__ import annotations

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, World!"


class KeepAliveHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, *args: object, **kwargs: object) -> None:
        pass


if __name__ == "__main__":
    server = make_server("127.0.0.1", 0, app, threaded=False, request_handler=KeepAliveHandler)
    print(server.server_port, flush=True)
    server.serve_forever()
