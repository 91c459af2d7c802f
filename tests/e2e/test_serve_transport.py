"""Transport options end to end: TLS and mTLS on receivers and exporters, static headers, gzip."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests
from support.certs import Certificates, make_certificates
from support.otlp_requests import ids_of, make_request
from support.otlp_sink import OtlpSink
from support.processor import assert_books_balance, grpc_export, serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def certs() -> Iterator[Certificates]:
    with tempfile.TemporaryDirectory() as directory:
        yield make_certificates(Path(directory))


def test_forwarding_over_mtls_to_an_mtls_receiver(sink: OtlpSink, certs: Certificates) -> None:
    tls = f"{{cert_file: {certs.server_cert}, key_file: {certs.server_key}, client_ca_file: {certs.ca}}}"
    gateway_config = (
        f"receivers:\n  grpc: {{endpoint: '127.0.0.1:0', tls: {tls}}}\n"
        f"  http: {{endpoint: '127.0.0.1:0', tls: {tls}}}\n"
        f"exporters: ['grpc://127.0.0.1:{sink.grpc_port}']\n"
    )
    with serve(config=gateway_config) as gateway:
        client_tls = f"{{ca_file: {certs.ca}, cert_file: {certs.client_cert}, key_file: {certs.client_key}}}"
        edge_config = (
            f"exporters:\n  - {{endpoint: 'grpcs://127.0.0.1:{gateway.ports['otlp_grpc']}', tls: {client_tls}}}\n"
            f"  - {{endpoint: 'https://127.0.0.1:{gateway.ports['otlp_http']}', tls: {client_tls}}}\n"
        )
        with serve(config=edge_config) as edge:
            body = make_request(7)
            grpc_export(edge.ports["otlp_grpc"], body)
            edge.wait_for(lambda: len(sink.span_ids()) == 14, what="both TLS routes delivered")
            assert sorted(sink.span_ids()) == sorted(ids_of(body) * 2)
            assert assert_books_balance(edge, f"grpcs://127.0.0.1:{gateway.ports['otlp_grpc']}")["sent"] == 7
        https = f"https://127.0.0.1:{gateway.ports['otlp_http']}/v1/traces"
        headers = {"Content-Type": "application/x-protobuf"}
        with pytest.raises(requests.exceptions.ConnectionError):  # no client certificate: refused (TLS alert or reset)
            requests.post(https, data=make_request(1), headers=headers, verify=certs.ca, timeout=10)
        reply = requests.post(
            https, data=make_request(1), headers=headers, verify=certs.ca, cert=(certs.client_cert, certs.client_key)
        )
        assert reply.status_code == 200
        with grpc.insecure_channel(f"127.0.0.1:{gateway.ports['otlp_grpc']}") as plain:
            with pytest.raises(grpc.RpcError):  # plaintext to a TLS port: refused
                plain.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")(b"", timeout=5)


def test_static_headers_and_gzip_towards_the_downstream(sink: OtlpSink) -> None:
    config = (
        "exporters:\n"
        f"  - {{endpoint: 'http://127.0.0.1:{sink.http_port}', compression: gzip, headers: {{x-api-key: k3y}}}}\n"
        f"  - {{endpoint: 'grpc://127.0.0.1:{sink.grpc_port}', compression: gzip, headers: {{x-api-key: k3y}}}}\n"
    )
    with serve(config=config) as processor:
        body = make_request(5)
        grpc_export(processor.ports["otlp_grpc"], body)
        processor.wait_for(lambda: len(sink.requests()) == 2, what="both copies")
    for received in sink.requests():
        assert received.headers["x-api-key"] == "k3y"
        assert received.body == body  # gzip on the wire, the original bytes after it
    http_copy = next(r for r in sink.requests() if r.transport == "http")
    assert http_copy.headers["content-encoding"] == "gzip"
