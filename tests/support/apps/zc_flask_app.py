"""A Flask app under opentelemetry-instrument, with no otel-impact code but one explicit call.

Environment: ``ZC_BACKEND_URL`` (the plain WSGI backend) and ``ZC_GRPC_TARGET`` (the gRPC server)
for ``/fanout``, which calls the backend with requests, httpx and urllib3 and the gRPC server with
a grpc channel, after evaluating an OpenFeature flag whose targeting key is the customer ID.
"""

from __future__ import annotations

import json
import os
from typing import Any

import grpc
import httpx
import requests
import urllib3
from flask import Flask, jsonify, request
from openfeature import api
from openfeature.contrib.hook.opentelemetry import TracingHook
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider
from opentelemetry import trace
from werkzeug.serving import make_server
from zc_common import state_json, status_json

import otel_impact

app = Flask(__name__)
tracer = trace.get_tracer("zc-flask")


def _email_users_get_new_checkout(flag: InMemoryFlag[bool], context: EvaluationContext) -> FlagResolutionDetails[bool]:
    """Targeting on the raw key: the provider must see the real ID, not its pseudonym."""
    if context.targeting_key and "@" in context.targeting_key:
        return FlagResolutionDetails(value=True, variant="on", reason=Reason.TARGETING_MATCH)
    return FlagResolutionDetails(value=False, variant="off", reason=Reason.DEFAULT)


api.set_provider(
    InMemoryProvider(
        {
            "new_checkout": InMemoryFlag(
                "off", {"on": True, "off": False}, context_evaluator=_email_users_get_new_checkout
            ),
            "max_items": InMemoryFlag("ten", {"ten": 10}),
        }
    )
)
api.add_hooks([TracingHook()])  # OpenFeature's own OpenTelemetry hook, beside otel-impact's
flags = api.get_client()


@app.get("/whoami")
def whoami() -> Any:
    with tracer.start_as_current_span("flask.work"):
        return jsonify(state_json())


@app.get("/explicit")
def explicit() -> Any:
    otel_impact.set_customer("explicit-customer-7", tier="enterprise")  # the application's own call wins
    with tracer.start_as_current_span("flask.work"):
        return jsonify(state_json())


@app.get("/fanout")
def fanout() -> Any:
    customer = request.headers.get("X-Customer-Id")
    flags.get_boolean_value("new_checkout", False, EvaluationContext(targeting_key=customer))
    backend = os.environ["ZC_BACKEND_URL"]
    echoed: dict[str, Any] = {}
    echoed["requests"] = requests.get(f"{backend}/echo", timeout=10).json()["headers"]
    echoed["httpx"] = httpx.get(f"{backend}/echo", timeout=10).json()["headers"]
    pool = urllib3.PoolManager()
    echoed["urllib3"] = json.loads(pool.request("GET", f"{backend}/echo", timeout=10).data)["headers"]
    with grpc.insecure_channel(os.environ["ZC_GRPC_TARGET"]) as channel:
        reply = channel.unary_unary("/zc.Echo/Metadata")(b"{}", timeout=10)
    grpc_reply = json.loads(reply)
    echoed["grpc"] = grpc_reply["metadata"]
    echoed["grpc_state"] = grpc_reply["state"]
    echoed["state"] = state_json()
    return jsonify(echoed)


@app.get("/_status")
def impact_status() -> Any:
    return jsonify(status_json())


if __name__ == "__main__":
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()
