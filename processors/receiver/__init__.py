"""OTLP receivers: gRPC (raw bytes on grpc.aio) and HTTP (aiohttp), protobuf and JSON."""

from .grpc_receiver import GrpcReceiver
from .http_receiver import HttpReceiver
from .otlp_json import InvalidJson, json_to_protobuf

__all__ = ["GrpcReceiver", "HttpReceiver", "InvalidJson", "json_to_protobuf"]
