"""TLS, mTLS and bearer-token checks shared by the receivers and the admin server."""

from __future__ import annotations

import hmac
import ssl

import grpc

from otel_impact.processors.config import Listener, ServerTls


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def server_ssl_context(tls: ServerTls | None) -> ssl.SSLContext | None:
    """An SSL context for aiohttp; with ``client_ca_file`` clients must present a certificate (mTLS)."""
    if tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file:
        context.load_verify_locations(tls.client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def grpc_server_credentials(tls: ServerTls) -> grpc.ServerCredentials:
    client_ca = _read(tls.client_ca_file) if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(_read(tls.key_file), _read(tls.cert_file))],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


class BearerCheck:
    """Checks ``Authorization: Bearer <token>`` in constant time; allows everything when no token is set."""

    def __init__(self, listener: Listener) -> None:
        token = listener.auth.bearer_token
        self._expected = f"Bearer {token}".encode() if token else None

    @property
    def enabled(self) -> bool:
        return self._expected is not None

    def allows(self, header: str | None) -> bool:
        if self._expected is None:
            return True
        if not header:
            return False
        return hmac.compare_digest(header.strip().encode(), self._expected)
