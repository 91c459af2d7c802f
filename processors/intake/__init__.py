"""OTLP intake: gRPC (raw bytes on grpc.aio) and HTTP (aiohttp) receivers, protobuf and JSON.

``status`` maps a `Rejection` to the gRPC status and HTTP answer the sender sees;
``decompress`` inflates bodies within the size limit and the decompression ratio;
``server_guard`` gives the aiohttp servers (this one's and the admin server) their header,
request and idle deadlines, a connection cap and quiet logs. May import the
foundations, ``pipeline`` and ``export``; never ``sli``, ``slo`` or ``api``.
"""

from otel_impact.processors.intake.grpc_receiver import GrpcReceiver
from otel_impact.processors.intake.http_receiver import HttpReceiver
from otel_impact.processors.intake.otlp_json import InvalidJson, json_to_protobuf

__all__ = ["GrpcReceiver", "HttpReceiver", "InvalidJson", "json_to_protobuf"]
