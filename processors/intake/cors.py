"""CORS for the OTLP/HTTP receiver, so web pages can export spans straight from a browser.

A browser sends a JSON or protobuf export from another origin only after a preflight
(``OPTIONS`` with ``Access-Control-Request-Method``): those content types are not CORS-safelisted.
`Cors.preflight` answers it: for an allowed origin asking for ``POST`` with allowed headers,
``204`` with ``Access-Control-Allow-Origin`` (the origin itself), ``-Allow-Methods``,
``-Allow-Headers`` and ``-Max-Age``; for anything else ``204`` with no CORS header, so the browser
does not send the export (counted in ``otel_impact_receiver_cors_refused_preflights_total`` by
reason: ``origin``, ``method`` or ``headers``). `Cors.decorate` adds the allow-origin header to
the answers of an allowed origin's exports, errors included, and exposes ``Retry-After``.

No ``Access-Control-Allow-Credentials`` is sent (the Collector always sends ``true``): OTLP
exports need no cookies, and without it a page cannot make the browser send its user's
credentials here. A request without ``Origin``, from a non-browser sender, is handled as before.

Hostile input: an ``Origin`` longer than `MAX_ORIGIN_LENGTH` matches nothing; at most
`MAX_REQUESTED_HEADERS` requested headers are read; origin patterns are matched piece by piece
(no regular expression, so no backtracking on a crafted origin).
"""

from __future__ import annotations

from typing import Final, Literal

from aiohttp import hdrs, web
from prometheus_client import Counter

from otel_impact.processors.config.cors import ALWAYS_ALLOWED_HEADERS, MAX_ORIGIN_LENGTH, CorsConfig

__all__ = ["MAX_REQUESTED_HEADERS", "REFUSALS", "Cors", "OriginPattern"]

MAX_REQUESTED_HEADERS: Final = 32
"""Headers one preflight may ask for; a preflight asking for more is refused."""
REFUSALS: Final = ("origin", "method", "headers")
"""Why a preflight was refused (the ``reason`` label of the refused-preflights counter)."""
Refusal = Literal["origin", "method", "headers"]
_METHOD: Final = "POST"
_EXPOSED: Final = "Retry-After"


class OriginPattern:
    """An allowed origin, where each ``*`` matches any run of characters (none included)."""

    __slots__ = ("_middle", "_prefix", "_suffix", "exact")

    def __init__(self, pattern: str) -> None:
        pieces = pattern.lower().split("*")
        self.exact = pieces[0] if len(pieces) == 1 else None
        self._prefix = pieces[0]
        self._suffix = pieces[-1] if len(pieces) > 1 else ""
        self._middle = tuple(piece for piece in pieces[1:-1] if piece)

    def matches(self, origin: str) -> bool:
        """Whether ``origin`` (lowercase) fits: the first and last pieces anchor its ends, and the
        others are found in order in between (leftmost first, which finds a fit when there is one)."""
        if self.exact is not None:
            return origin == self.exact
        prefix, suffix = self._prefix, self._suffix
        if len(origin) < len(prefix) + len(suffix) or not origin.startswith(prefix) or not origin.endswith(suffix):
            return False
        position, end = len(prefix), len(origin) - len(suffix)
        for piece in self._middle:
            found = origin.find(piece, position, end)
            if found < 0:
                return False
            position = found + len(piece)
        return True


class Cors:
    """Applies a `CorsConfig` to the receiver's requests and answers (see the module docstring)."""

    def __init__(self, config: CorsConfig, refused: Counter) -> None:
        """``refused``: a counter labelled by ``reason`` (one of `REFUSALS`), counting refused preflights."""
        self._exact = frozenset(origin.lower() for origin in config.allowed_origins if "*" not in origin)
        self._patterns = tuple(OriginPattern(origin) for origin in config.allowed_origins if "*" in origin)
        self._any_header = "*" in config.allowed_headers
        self._headers = ALWAYS_ALLOWED_HEADERS | {header.lower() for header in config.allowed_headers}
        self._max_age = None if config.max_age is None else str(max(1, round(config.max_age)))
        self._refused = {reason: refused.labels(reason) for reason in REFUSALS}

    def allows(self, origin: str | None) -> bool:
        """Whether a page of ``origin`` (the ``Origin`` header's value) may export."""
        if not origin or len(origin) > MAX_ORIGIN_LENGTH:
            return False
        origin = origin.lower()
        return origin in self._exact or any(pattern.matches(origin) for pattern in self._patterns)

    def _refusal(self, request: web.BaseRequest) -> Refusal | None:
        headers = request.headers
        if not self.allows(headers.get(hdrs.ORIGIN)):
            return "origin"
        if headers.get(hdrs.ACCESS_CONTROL_REQUEST_METHOD, "").strip() != _METHOD:
            return "method"
        requested = headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS, "")
        names = [name.strip().lower() for name in requested.split(",", MAX_REQUESTED_HEADERS)]
        if len(names) > MAX_REQUESTED_HEADERS:
            return "headers"
        if not self._any_header and any(name and name not in self._headers for name in names):
            return "headers"
        return None

    async def preflight(self, request: web.Request) -> web.Response:
        """The answer to ``OPTIONS`` on the traces path: see the module docstring."""
        headers = {hdrs.VARY: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"}
        refusal = self._refusal(request)
        if refusal is not None:
            self._refused[refusal].inc()
            return web.Response(status=204, headers=headers)
        headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = request.headers[hdrs.ORIGIN]
        headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = _METHOD
        requested = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS, "")
        names = [name.strip().lower() for name in requested.split(",")]
        if any(names):
            headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = ", ".join(name for name in names if name)
        if self._max_age is not None:
            headers[hdrs.ACCESS_CONTROL_MAX_AGE] = self._max_age
        return web.Response(status=204, headers=headers)

    async def decorate(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        """An ``on_response_prepare`` hook: CORS headers on the answers to an allowed origin's exports."""
        if request.method == "OPTIONS":
            return
        origin = request.headers.get(hdrs.ORIGIN)
        response.headers.add(hdrs.VARY, "Origin")
        if origin is not None and self.allows(origin):
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = _EXPOSED
