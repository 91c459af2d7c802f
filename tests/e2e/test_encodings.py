"""Compressed OTLP against ``otel-impact serve``: gzip, deflate and zstd are accepted; bombs and unknown
encodings are refused with the reason, and counted."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator

import grpc
import pytest
import requests
import zstandard
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from support.otlp_requests import make_request
from support.processor import EXPORT_METHOD, Processor, serve

pytestmark = pytest.mark.slow

PROTOBUF = {"Content-Type": "application/x-protobuf"}
BOMB = b"\x0a\x00" * (1 << 20)
"""2 MiB of valid OTLP (a million empty ResourceSpans) that compresses about a thousand times."""


@pytest.fixture(scope="module")
def processor() -> Iterator[Processor]:
    with serve() as running:
        yield running


def accepted(processor: Processor, transport: str) -> float:
    return processor.metric_sum("otel_impact_receiver_spans_total", transport=transport, outcome="accepted")


def rejected(processor: Processor, reason: str) -> float:
    return processor.metric_sum("otel_impact_receiver_rejected_requests_total", reason=reason)


def test_the_python_exporter_with_deflate_delivers_its_spans(processor: Processor) -> None:
    before = accepted(processor, "http/protobuf")
    exporter = HttpSpanExporter(endpoint=processor.http_url, compression=Compression.Deflate)
    provider = TracerProvider(resource=Resource({"service.name": "deflated"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    for index in range(3):
        with tracer.start_as_current_span(f"span-{index}"):
            pass
    provider.shutdown()
    assert accepted(processor, "http/protobuf") == before + 3


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("zstd", lambda body: zstandard.ZstdCompressor().compress(body)),
        ("deflate", lambda body: zlib.compress(body)),
        ("deflate", lambda body: zlib.compress(body, wbits=-15)),  # a raw deflate stream, as some clients send
        ("gzip", gzip.compress),
    ],
)
def test_compressed_bodies_are_accepted(processor: Processor, encoding: str, compress: object) -> None:
    assert callable(compress)
    before = accepted(processor, "http/protobuf")
    body = compress(make_request(5))
    reply = requests.post(processor.http_url, data=body, headers={**PROTOBUF, "Content-Encoding": encoding}, timeout=10)
    assert reply.status_code == 200, reply.content
    assert accepted(processor, "http/protobuf") == before + 5


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_a_decompression_bomb_is_refused_with_the_setting_and_counted(processor: Processor, encoding: str) -> None:
    before = rejected(processor, "decompression_ratio")
    compress = {"gzip": gzip.compress, "deflate": zlib.compress, "zstd": zstandard.ZstdCompressor().compress}
    body = compress[encoding](BOMB)
    assert len(body) * 100 < len(BOMB) < 4 << 20  # under the size limit, past the ratio
    reply = requests.post(processor.http_url, data=body, headers={**PROTOBUF, "Content-Encoding": encoding}, timeout=10)
    assert reply.status_code == 413
    message = status_pb2.Status.FromString(reply.content).message
    assert "receivers.max_decompression_ratio" in message and "100 times" in message
    assert rejected(processor, "decompression_ratio") == before + 1


def test_a_grpc_decompression_bomb_is_refused_with_the_setting_and_counted(processor: Processor) -> None:
    before = rejected(processor, "decompression_ratio")
    address = f"127.0.0.1:{processor.ports['otlp_grpc']}"
    with grpc.insecure_channel(address, compression=grpc.Compression.Gzip) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            channel.unary_unary(EXPORT_METHOD)(BOMB, timeout=10)
    error = raised.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert "receivers.max_decompression_ratio" in error.details()  # type: ignore[attr-defined]
    assert rejected(processor, "decompression_ratio") == before + 1
    before_spans = accepted(processor, "grpc")
    with grpc.insecure_channel(address, compression=grpc.Compression.Gzip) as channel:
        channel.unary_unary(EXPORT_METHOD)(make_request(4), timeout=10)  # compressed as usual: accepted
    with grpc.insecure_channel(address, compression=grpc.Compression.Deflate) as channel:
        channel.unary_unary(EXPORT_METHOD)(make_request(2), timeout=10)
    assert accepted(processor, "grpc") == before_spans + 6


@pytest.mark.parametrize("encoding", ["br", "snappy", "lz4", "x-unknown"])
def test_unknown_encodings_still_get_415(processor: Processor, encoding: str) -> None:
    reply = requests.post(
        processor.http_url, data=make_request(1), headers={**PROTOBUF, "Content-Encoding": encoding}, timeout=10
    )
    assert reply.status_code == 415
    assert "use gzip, deflate, zstd or none" in status_pb2.Status.FromString(reply.content).message


def test_a_corrupt_body_gets_400(processor: Processor) -> None:
    for encoding, body in (("zstd", zstandard.ZstdCompressor().compress(make_request(50))[:-8]), ("deflate", b"xx")):
        reply = requests.post(
            processor.http_url, data=body, headers={**PROTOBUF, "Content-Encoding": encoding}, timeout=10
        )
        assert reply.status_code == 400
        assert f"the {encoding} body is corrupt" in status_pb2.Status.FromString(reply.content).message
