"""Handing a web page who it is for, without the raw customer ID: `browser_identity`.

Spans a browser sends (the OpenTelemetry JS web SDK) count for a customer only when they carry
the same pseudonym and tier as the server's spans. The server knows them for the current request
(`otel_impact.set_customer`); `browser_identity` returns them, and `BrowserIdentity.meta_tags`
renders them as HTML ``<meta>`` tags for the page's script to copy onto its spans::

    identity = otel_impact.browser_identity()
    html = TEMPLATE.format(head=identity.meta_tags())   # in the page's <head>

Only the keyed pseudonym leaves the server (the state holds nothing else), and every value is
HTML-escaped. The meta tag names are the span attribute names (``impact.customer.hash``,
``impact.customer.tier``), plus ``traceparent`` (W3C) when a span is current, which the JS
document-load instrumentation reads to make the page load a child of the server's span.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from opentelemetry import trace

from . import _attributes as attrs
from ._state import current_state

__all__ = ["BrowserIdentity", "browser_identity"]

TRACEPARENT_META = "traceparent"
"""The ``<meta>`` name the JS document-load instrumentation reads the server's trace context from."""


@dataclass(frozen=True)
class BrowserIdentity:
    """Who the current request is for, as a web page may know it.

    ``customer_hash`` is the keyed pseudonym (never the raw ID) and ``tier`` the tier, each
    ``None`` when the request has none; ``traceparent`` is the W3C trace context of the span
    current when it was made (``None`` without a valid one).
    """

    customer_hash: str | None = None
    tier: str | None = None
    traceparent: str | None = None

    def attributes(self) -> dict[str, str]:
        """The span attributes a browser span should carry (only the ones known)."""
        out: dict[str, str] = {}
        if self.customer_hash is not None:
            out[attrs.CUSTOMER_HASH] = self.customer_hash
        if self.tier is not None:
            out[attrs.CUSTOMER_TIER] = self.tier
        return out

    def meta_tags(self, *, traceparent: bool = True) -> str:
        """``<meta name=... content=...>`` lines for the known values, HTML-escaped; with
        ``traceparent`` (the default), the ``traceparent`` tag too when there is one."""
        entries = list(self.attributes().items())
        if traceparent and self.traceparent is not None:
            entries.append((TRACEPARENT_META, self.traceparent))
        return "\n".join(
            f'<meta name="{escape(name, quote=True)}" content="{escape(value, quote=True)}">' for name, value in entries
        )


def browser_identity() -> BrowserIdentity:
    """The pseudonym and tier of the current request (set by `otel_impact.set_customer`) and the
    current span's trace context, for the page this request renders. Never raises: outside a
    request, or without a customer, the fields are ``None``."""
    state = current_state()
    span_context = trace.get_current_span().get_span_context()
    parent = None
    if span_context.is_valid:
        parent = f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags):02x}"
    if state is None:
        return BrowserIdentity(traceparent=parent)
    return BrowserIdentity(state.customer_hash, state.tier, parent)
