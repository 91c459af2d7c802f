"""Reading a running processor's admin API, for the commands that do (report, gate, postmortem).

The admin listener may require a bearer token (``admin.auth.bearer_token``) and may use TLS or
mTLS (``admin.tls``: ``cert_file``, ``key_file``, ``client_ca_file``); `add_admin_arguments`
gives every client command the matching options:

- ``--admin ADDRESS``: ``host:port`` or a URL; an ``https://`` URL uses TLS (as does a bare
  ``host:port`` when a TLS option is given);
- ``--token TOKEN``, default ``$OTEL_IMPACT_ADMIN_TOKEN``: sent as ``Authorization: Bearer``;
  never printed (prefer the variable: a command line is visible to other local users);
- ``--ca-cert FILE``: verify the processor's certificate against this CA (default: the
  system's CAs);
- ``--client-cert FILE`` and ``--client-key FILE``: a client certificate, when the listener
  requires one (mTLS);
- ``--timeout SECONDS``.

Every failure is an `AdminError` whose message names the fix. Standard library only, so these
commands work without the processor extra.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_ADMIN",
    "TOKEN_ENV",
    "AdminConnection",
    "AdminError",
    "add_admin_arguments",
    "base_url",
]

DEFAULT_ADMIN = "http://localhost:9464"
TOKEN_ENV = "OTEL_IMPACT_ADMIN_TOKEN"
_TOKEN_FIX = f"pass --token or set {TOKEN_ENV}"


def add_admin_arguments(parser: argparse.ArgumentParser, *, timeout: float = 10.0) -> None:
    """The options that reach a processor's admin API, shared by the client commands.

    `AdminConnection.from_args` reads them back.
    """
    group = parser.add_argument_group("reaching the processor")
    group.add_argument(
        "--admin",
        default=DEFAULT_ADMIN,
        help=f"the processor's admin address, host:port or URL; https:// uses TLS (default {DEFAULT_ADMIN})",
    )
    group.add_argument(
        "--token", default=None, help=f"the admin bearer token (default: ${TOKEN_ENV}, which keeps it out of ps)"
    )
    group.add_argument("--ca-cert", metavar="FILE", help="verify the processor's TLS certificate against this CA")
    group.add_argument("--client-cert", metavar="FILE", help="client certificate, when the processor requires mTLS")
    group.add_argument("--client-key", metavar="FILE", help="the client certificate's private key")
    group.add_argument(
        "--timeout", type=float, default=timeout, help=f"seconds to wait for the processor (default {timeout:g})"
    )


class AdminError(Exception):
    """The processor could not be read (``refused`` False) or refused the request (``refused`` True).

    The message says which and why, with the processor's own reason for a refusal and the fix
    for a missing token or certificate.
    """

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


def base_url(admin: str, *, tls: bool = False) -> str:
    """``localhost:9464`` or ``http://host:port/`` → ``http://host:port`` (``https://`` with ``tls``)."""
    return (admin if "://" in admin else f"{'https' if tls else 'http'}://{admin}").rstrip("/")


@dataclass(frozen=True)
class AdminConnection:
    """Where a processor's admin API is and how to reach it; `get_json` reads from it.

    ``token`` is never shown (not in ``repr``, not in any message).
    """

    admin: str = DEFAULT_ADMIN
    timeout: float = 10.0
    token: str | None = field(default=None, repr=False)
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AdminConnection:
        """The connection the `add_admin_arguments` options describe (the token falls back to the env)."""
        token = args.token if args.token is not None else os.environ.get(TOKEN_ENV)
        return cls(
            admin=args.admin,
            timeout=args.timeout,
            token=(token.strip() or None) if token else None,
            ca_cert=args.ca_cert,
            client_cert=args.client_cert,
            client_key=args.client_key,
        )

    @property
    def url(self) -> str:
        """The base URL; a bare address with a TLS option is ``https://``."""
        return base_url(self.admin, tls=bool(self.ca_cert or self.client_cert))

    def get_json(self, path: str, query: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        """GET ``path`` with ``query`` from the admin API and return its JSON object; raises `AdminError`."""
        where = f"{self.url}{path}"
        request = urllib.request.Request(f"{where}?{urllib.parse.urlencode(query)}" if query else where)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with self._opener().open(request, timeout=self.timeout) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise self._refusal(error) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
            raise self._unreachable(where, _cause(error)) from None
        if not isinstance(document, dict):
            raise AdminError(f"{path} did not answer a JSON object", refused=False)
        return document

    def _opener(self) -> urllib.request.OpenerDirector:
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]  # a redirect must not carry the token away
        if self.url.startswith("https://"):
            handlers.append(urllib.request.HTTPSHandler(context=self._ssl_context()))
        elif self.ca_cert or self.client_cert:
            raise AdminError(
                f"--ca-cert and --client-cert apply to TLS: use an https:// address instead of {self.url}",
                refused=False,
            )
        return urllib.request.build_opener(*handlers)

    def _ssl_context(self) -> ssl.SSLContext:
        if self.client_key and not self.client_cert:
            raise AdminError("--client-key needs --client-cert: pass both", refused=False)
        try:
            context = ssl.create_default_context(cafile=self.ca_cert)
        except (OSError, ssl.SSLError) as error:
            raise AdminError(
                f"cannot load --ca-cert {self.ca_cert}: {error}; "
                "give the PEM file of the CA that signed the processor's certificate",
                refused=False,
            ) from None
        if self.client_cert:
            try:
                context.load_cert_chain(self.client_cert, self.client_key)
            except (OSError, ssl.SSLError) as error:
                raise AdminError(
                    f"cannot load --client-cert {self.client_cert} / --client-key {self.client_key}: {error}; "
                    "give PEM files: the certificate, and its key unless the certificate file holds it",
                    refused=False,
                ) from None
        return context

    def _refusal(self, error: urllib.error.HTTPError) -> AdminError:
        if error.code == 401:
            if self.token:
                return AdminError(f"the processor refused the admin token: check --token or {TOKEN_ENV}", refused=True)
            return AdminError(f"the processor requires an admin token: {_TOKEN_FIX}", refused=True)
        try:
            reason = json.loads(error.read()).get("error", error.reason)
        except (ValueError, AttributeError, OSError):
            reason = error.reason
        return AdminError(f"the processor refused the request: {reason}", refused=True)

    def _unreachable(self, where: str, cause: BaseException) -> AdminError:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return AdminError(
                f"cannot verify the certificate of {self.url} ({cause.verify_message}): "
                "pass --ca-cert FILE with the CA that signed the processor's certificate",
                refused=False,
            )
        return AdminError(f"cannot read {where}: {_describe(cause)}{self._hint(cause)}", refused=False)

    def _hint(self, cause: BaseException) -> str:
        """The likely fix for a connection failure, from its cause."""
        text = str(cause).lower()
        if isinstance(cause, ssl.SSLError):
            if "wrong version number" in text or "record layer failure" in text:
                return f" (is the admin listener plain HTTP? then use http:// instead of {self.url})"
            if "certificate required" in text or "handshake failure" in text or "unknown ca" in text:
                return " (the processor requires a client certificate: pass --client-cert and --client-key)"
        elif self.url.startswith("http://") and isinstance(
            cause, (ConnectionResetError, http.client.BadStatusLine, http.client.RemoteDisconnected)
        ):
            return " (does the admin listener use TLS? then use an https:// address, with --ca-cert FILE)"
        if isinstance(cause, ConnectionRefusedError):
            return f" (is the processor running, and is {self.admin} its admin address? see --admin)"
        if self.url.startswith("https://") and self.client_cert is None and isinstance(cause, ConnectionResetError):
            return " (if the processor requires a client certificate, pass --client-cert and --client-key)"
        return ""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _cause(error: BaseException) -> BaseException:
    """What went wrong under urllib's wrapping."""
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        return error.reason
    return error


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError):
        return str(error.reason)
    return str(error) or type(error).__name__
