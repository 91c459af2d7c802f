"""A small Flask app of the kind a new user brings, with no otel-impact code but in ``/api/refund``.

Run under opentelemetry-instrument; its tasks come from ``OTEL_IMPACT_TASKS``. ``/api/checkout``
answers with the status in ``?status=`` (the test plays a broken payment provider for one tier);
``/api/refund`` opens a task itself and fails it while answering 200.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from werkzeug.serving import make_server

import otel_impact

app = Flask(__name__)


@app.post("/api/checkout")
def checkout() -> Any:
    return "checked out", int(request.args.get("status", "200"))


@app.get("/search/<query>")
def search(query: str) -> Any:
    return {"results": [], "query_length": len(query)}


@app.post("/api/refund")
def refund() -> Any:
    with otel_impact.user_task("refund") as task:
        task.fail("refund_declined")  # the code says failure: the 200 below does not override it
    return "refund queued", 200


if __name__ == "__main__":
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()
