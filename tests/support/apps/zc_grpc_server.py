"""A gRPC server under opentelemetry-instrument (generic handlers, raw bytes: no generated code).

``/zc.Echo/Metadata`` answers JSON with the call's invocation metadata and the impact state it
sees inside a child span; ``/zc.Echo/Stream`` answers the same as a two-message stream.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
from opentelemetry import trace
from zc_common import state_json

tracer = trace.get_tracer("zc-grpc")


def _answer(context: Any) -> bytes:
    with tracer.start_as_current_span("grpc.work"):
        metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
        return json.dumps({"metadata": metadata, "state": state_json()}).encode()


def metadata(request: bytes, context: Any) -> bytes:
    return _answer(context)


def stream(request: bytes, context: Any) -> Iterator[bytes]:
    yield _answer(context)
    yield _answer(context)


if __name__ == "__main__":
    handler = grpc.method_handlers_generic_handler(
        "zc.Echo",
        {
            "Metadata": grpc.unary_unary_rpc_method_handler(metadata),
            "Stream": grpc.unary_stream_rpc_method_handler(stream),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    server.wait_for_termination()
