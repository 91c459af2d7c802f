"""A throw-away certificate authority for TLS and mTLS tests: a server and a client certificate."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Certificates:
    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _issue(
    subject: str, issuer_key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None, *, ca: bool, usage: object = None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([usage]), critical=False)  # type: ignore[list-item]
    signer = key if issuer is None else issuer_key
    return builder.sign(signer, hashes.SHA256()), key


def make_certificates(directory: Path) -> Certificates:
    """Write a CA, a server certificate for 127.0.0.1/localhost and a client certificate into ``directory``."""
    ca_cert, ca_key = _issue("otel-impact test CA", ec.generate_private_key(ec.SECP256R1()), None, ca=True)
    server_cert, server_key = _issue("server", ca_key, ca_cert.subject, ca=False, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    client_cert, client_key = _issue("client", ca_key, ca_cert.subject, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    files = {
        "ca.pem": ca_cert.public_bytes(serialization.Encoding.PEM),
        "server.pem": server_cert.public_bytes(serialization.Encoding.PEM),
        "server.key": _key_pem(server_key),
        "client.pem": client_cert.public_bytes(serialization.Encoding.PEM),
        "client.key": _key_pem(client_key),
    }
    for name, content in files.items():
        (directory / name).write_bytes(content)
    path = {name: str(directory / name) for name in files}
    return Certificates(path["ca.pem"], path["server.pem"], path["server.key"], path["client.pem"], path["client.key"])
