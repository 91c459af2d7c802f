"""`IncomingRequest`: one read-only view of a request, whatever the framework.

The extractors read headers and cookies through it, and a customer callable
(``OTEL_IMPACT_CUSTOMER_CALLABLE``) receives it. ``native`` is the framework's own object, for
application logic that needs more than headers:

============ ======================= ============================================================
framework    ``native``              notes
============ ======================= ============================================================
``flask``    the WSGI environ         ``flask.request`` is also available while the hook runs
``wsgi``     the WSGI environ
``asgi``     the ASGI scope           FastAPI, Starlette and other ASGI apps
``django``   ``HttpRequest``          ``request.user`` exists only in the response phase
``grpc``     the ``ServicerContext``  headers are the invocation metadata (lower-case keys)
============ ======================= ============================================================

Header values arrive as servers give them: WSGI and ASGI decode the bytes as latin-1. A value
that is valid UTF-8 is read as UTF-8, so a header carrying ``Zoë`` gives the same pseudonym as
``set_customer("Zoë")``.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, Final

MAX_COOKIE_HEADER_CHARS: Final = 8192
"""Longer ``Cookie`` headers are not parsed."""


class IncomingRequest(ABC):
    """A request as the extractors see it. Lookups never raise; a missing value is ``None``.

    ``phase`` is ``"request"`` while the request starts and ``"response"`` when Django's response
    hook tries again after the view ran (then ``request.user`` exists).
    """

    __slots__ = ("phase",)

    framework: str = ""

    def __init__(self, phase: str = "request") -> None:
        self.phase = phase

    @property
    @abstractmethod
    def native(self) -> Any:
        """The framework's own request object (see the module docstring)."""

    @abstractmethod
    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""

    def cookie(self, name: str) -> str | None:
        """The value of cookie ``name`` from the ``Cookie`` header, or ``None``."""
        return parse_cookie(self.header("cookie"), name)


def parse_cookie(header: str | None, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header (``a=1; b="2"``), unquoted, or ``None``."""
    if not header or len(header) > MAX_COOKIE_HEADER_CHARS:
        return None
    for pair in header.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value or None
    return None


def wire_text(value: str) -> str:
    """``value`` (latin-1 decoded from the wire) read as UTF-8 when it is valid UTF-8."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not latin-1 text, or not UTF-8 bytes: keep it as it came
        return value


@functools.lru_cache(maxsize=64)
def wsgi_key(name: str) -> str:
    """The WSGI environ key of header ``name``: ``X-Customer-Id`` -> ``HTTP_X_CUSTOMER_ID``."""
    return "HTTP_" + name.upper().replace("-", "_")


class WsgiRequest(IncomingRequest):
    """A request seen through its WSGI environ (plain WSGI and Flask)."""

    __slots__ = ("_environ", "framework")

    def __init__(self, environ: Mapping[str, Any], framework: str = "wsgi", phase: str = "request") -> None:
        self.phase = phase  # set here rather than by super().__init__: made on every request
        self._environ = environ
        self.framework = framework

    @property
    def native(self) -> Mapping[str, Any]:
        return self._environ

    def header(self, name: str) -> str | None:
        value = self._environ.get(wsgi_key(name))
        if isinstance(value, str):
            return value if value.isascii() else wire_text(value)
        return None


class AsgiRequest(IncomingRequest):
    """A request seen through its ASGI scope (FastAPI, Starlette, any ASGI app)."""

    __slots__ = ("_scope",)

    framework = "asgi"

    def __init__(self, scope: Mapping[str, Any], phase: str = "request") -> None:
        super().__init__(phase)
        self._scope = scope

    @property
    def native(self) -> Mapping[str, Any]:
        return self._scope

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode("latin-1", "replace")
        headers: Iterable[tuple[bytes, bytes]] = self._scope.get("headers") or ()
        for key, value in headers:
            if key.lower() == wanted:
                return wire_text(value.decode("latin-1")) if isinstance(value, bytes) else None
        return None


class DjangoRequest(IncomingRequest):
    """A Django ``HttpRequest`` (under WSGI or ASGI: both fill ``request.META``)."""

    __slots__ = ("_request",)

    framework = "django"

    def __init__(self, request: Any, phase: str = "request") -> None:
        super().__init__(phase)
        self._request = request

    @property
    def native(self) -> Any:
        return self._request

    def header(self, name: str) -> str | None:
        meta = getattr(self._request, "META", None)
        if not isinstance(meta, Mapping):
            return None
        value = meta.get(wsgi_key(name))
        return wire_text(value) if isinstance(value, str) else None


class GrpcRequest(IncomingRequest):
    """A gRPC call; headers are its invocation metadata (keys are lower-case in gRPC)."""

    __slots__ = ("_context", "_metadata")

    framework = "grpc"

    def __init__(self, context: Any, phase: str = "request") -> None:
        super().__init__(phase)
        self._context = context
        self._metadata: dict[str, str] | None = None

    @property
    def native(self) -> Any:
        return self._context

    def header(self, name: str) -> str | None:
        metadata = self._metadata
        if metadata is None:
            metadata = {}
            for key, value in self._context.invocation_metadata() or ():
                if isinstance(value, str):
                    metadata.setdefault(key, value)
            self._metadata = metadata
        return metadata.get(name.lower())
