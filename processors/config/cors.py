"""``receivers.http.cors``: which web pages may send spans to the OTLP/HTTP receiver from a browser.

Configured like the OpenTelemetry Collector's ``confighttp`` ``cors`` block::

    receivers:
      http:
        cors:
          allowed_origins: ["https://shop.example.com", "https://*.example.com"]
          allowed_headers: [X-Shop-Version]   # beyond the ones always allowed
          max_age: 2h                         # how long a browser may reuse a preflight answer

A ``*`` inside an origin matches any characters (``https://*.example.com``); ``*`` alone is
refused: any web site could then have its visitors' browsers send spans, and forged page loads
would count in the SLIs. (A deliberate "any HTTPS site" is ``https://*``.) The receiver answers
the preflight of an allowed origin and adds no CORS header for any other, so the browser itself
blocks the request. `otel_impact.processors.intake.cors` applies it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from otel_impact.processors.durations import format_duration

from .fields import Fields, Problems

__all__ = [
    "ALWAYS_ALLOWED_HEADERS",
    "MAX_AGE_LIMIT_S",
    "MAX_ORIGIN_LENGTH",
    "CorsConfig",
    "parse_cors",
]

ALWAYS_ALLOWED_HEADERS: Final = frozenset(
    {"accept", "accept-language", "content-language", "content-type", "x-requested-with"}
)
"""Request headers every allowed origin may send (lowercase), as in the Collector: the CORS
safelisted ones, ``Content-Type`` with any value (OTLP sends ``application/json`` or
``application/x-protobuf``, which are not safelisted) and ``X-Requested-With``."""
MAX_ORIGIN_LENGTH: Final = 256
"""The longest origin (or origin pattern) accepted; a longer ``Origin`` header is refused."""
MAX_AGE_LIMIT_S: Final = 86_400.0
"""Firefox keeps a preflight answer at most 24h and Chromium 2h; a longer ``max_age`` does nothing."""
_ORIGIN: Final = re.compile(r"\Ahttps?://[A-Za-z0-9*\-.\[\]:]+\Z")
_HEADER: Final = re.compile(r"\A[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,128}\Z")
_ORIGINS_FIX: Final = 'list the pages\' origins, e.g. ["https://shop.example.com", "https://*.example.com"]'


@dataclass(frozen=True)
class CorsConfig:
    """The origins (web pages) allowed to export spans from a browser, and what they may send.

    ``allowed_origins`` are ``scheme://host[:port]`` patterns, compared without regard to case,
    where ``*`` matches any characters; empty means CORS is off (as in the Collector).
    ``allowed_headers`` are request header names allowed on top of `ALWAYS_ALLOWED_HEADERS`
    (``*``: any). ``max_age`` is how long, in seconds, a browser may reuse a preflight answer
    (``None``: the header is not sent and browsers ask again after 5 seconds).
    """

    allowed_origins: tuple[str, ...] = ()
    allowed_headers: tuple[str, ...] = ()
    max_age: float | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.allowed_origins)

    def validate(self, problems: Problems, path: str) -> None:
        """Note every problem in ``problems`` (``path`` is this section's)."""
        for index, origin in enumerate(self.allowed_origins):
            where = f"{path}.allowed_origins[{index}]"
            if origin.strip() == "*":
                problems.add(
                    where,
                    "'*' alone lets every web site's visitors send spans, so forged page loads would count",
                    f'{_ORIGINS_FIX}; to allow any site on purpose write ["https://*", "http://*"]',
                )
            elif len(origin) > MAX_ORIGIN_LENGTH or not _ORIGIN.fullmatch(origin):
                problems.add(
                    where,
                    f"expected an origin such as https://shop.example.com (scheme, host, optional port; "
                    f"no path), got {origin[:80]!r}",
                    _ORIGINS_FIX,
                )
        for index, header in enumerate(self.allowed_headers):
            if not _HEADER.fullmatch(header):
                problems.add(
                    f"{path}.allowed_headers[{index}]",
                    f"{header[:80]!r} is not an HTTP header name",
                    "write header names such as X-Shop-Version, or '*' for any",
                )
        if self.max_age is not None and not 0 < self.max_age <= MAX_AGE_LIMIT_S:
            problems.add(f"{path}.max_age", "must be from 1s to 24h", "use e.g. 2h (Chromium's own limit)")
        if not self.allowed_origins and (self.allowed_headers or self.max_age is not None):
            problems.add(
                f"{path}.allowed_origins",
                "is empty, so CORS is off and the other cors settings do nothing",
                _ORIGINS_FIX,
            )

    def describe(self) -> str:
        """One phrase for ``check-config``: ``cors from https://*.example.com, max_age 2h``."""
        age = f", max_age {format_duration(self.max_age)}" if self.max_age is not None else ""
        return f"cors from {' '.join(self.allowed_origins)}{age}"


def parse_cors(fields: Fields) -> CorsConfig | None:
    """``cors`` of an OTLP/HTTP listener's ``fields``: ``None`` when it is not set."""
    if not fields.has("cors"):
        return None
    section = fields.take_section("cors")
    config = CorsConfig(
        allowed_origins=section.take_str_list("allowed_origins"),
        allowed_headers=section.take_str_list("allowed_headers"),
        max_age=section.take_duration("max_age", None),
    )
    section.done()
    return config
