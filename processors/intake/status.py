"""How a `Rejection` is told to the sender, over gRPC and over HTTP (as the collector maps them).

======================== ======================================== ==============================
reason                   gRPC                                     HTTP
======================== ======================================== ==============================
invalid                  INVALID_ARGUMENT                         400
too_large                RESOURCE_EXHAUSTED (no RetryInfo: final) 413
decompression_ratio      RESOURCE_EXHAUSTED (no RetryInfo: final) 413
too_many_spans           RESOURCE_EXHAUSTED (no RetryInfo: final) 413
unsupported_media_type   (HTTP only)                               415
unauthenticated          UNAUTHENTICATED                          401
queue_full               UNAVAILABLE + RetryInfo                  503 + Retry-After
shutting_down            UNAVAILABLE + RetryInfo                  503 + Retry-After
storage_error            UNAVAILABLE + RetryInfo                  503 + Retry-After
busy                     (HTTP only: OTLP/JSON decoding is full)  503 + Retry-After
internal                 INTERNAL                                 500
======================== ======================================== ==============================

``invalid`` covers every kind of bad data: an unparseable body, values nested too deeply or an
identity value that is not UTF-8 (when pseudonymization is on). ``internal`` is a fault of the
processor on this request: counted like every rejection, and logged at most once a minute.

The error body of an HTTP answer is a ``google.rpc.Status`` in the request's encoding.
"""

from __future__ import annotations

import json
import math
from typing import Final

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from otel_impact.processors.export.retry import RETRY_INFO_KEY, STATUS_DETAILS_KEY
from otel_impact.processors.pipeline import Rejection

GRPC_CODES: Final = {
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "too_large": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "decompression_ratio": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "too_many_spans": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "internal": grpc.StatusCode.INTERNAL,
    "unsupported_media_type": grpc.StatusCode.INVALID_ARGUMENT,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
}
HTTP_STATUS: Final = {
    "invalid": 400,
    "too_large": 413,
    "decompression_ratio": 413,
    "too_many_spans": 413,
    "internal": 500,
    "unsupported_media_type": 415,
    "unauthenticated": 401,
}


def grpc_code(rejection: Rejection) -> grpc.StatusCode:
    if rejection.retry_after is not None:
        return grpc.StatusCode.UNAVAILABLE
    return GRPC_CODES.get(rejection.reason, grpc.StatusCode.INTERNAL)


def http_status(rejection: Rejection) -> int:
    if rejection.retry_after is not None:
        return 503
    return HTTP_STATUS.get(rejection.reason, 500)


def _retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    whole = math.floor(seconds)
    return error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=whole, nanos=int((seconds - whole) * 1e9))
    )


def status_message(rejection: Rejection, code: int) -> status_pb2.Status:
    status = status_pb2.Status(code=code, message=rejection.message)
    if rejection.retry_after is not None:
        detail = any_pb2.Any()
        detail.Pack(_retry_info(rejection.retry_after))
        status.details.append(detail)
    return status


def grpc_trailers(rejection: Rejection) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata: the rich status and, for retries, RetryInfo where the OTel Python exporter looks."""
    code = grpc_code(rejection)
    trailers = [(STATUS_DETAILS_KEY, status_message(rejection, code.value[0]).SerializeToString())]
    if rejection.retry_after is not None:
        trailers.append((RETRY_INFO_KEY, _retry_info(rejection.retry_after).SerializeToString()))
    return tuple(trailers)


def http_body(rejection: Rejection, json_encoding: bool) -> bytes:
    """The ``google.rpc.Status`` error body, as protobuf or as OTLP/JSON."""
    status = status_message(rejection, grpc_code(rejection).value[0])
    if not json_encoding:
        serialized: bytes = status.SerializeToString()
        return serialized
    return json.dumps({"code": status.code, "message": status.message}).encode()
