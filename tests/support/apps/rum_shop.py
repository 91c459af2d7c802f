"""A tiny shop whose pages carry real-user monitoring, for the browser test.

Usage: ``rum_shop.py BUNDLE CUSTOMER_PREFIX BROKEN_TIER``; prints its port on the first line of
stdout. ``GET /page/<tier>/<n>?otlp=URL`` renders a page for customer ``CUSTOMER_PREFIX/<tier>/<n>``
(known to the server only, as from a session): ``otel_impact.set_customer`` then
``browser_identity().meta_tags()`` put the pseudonym and tier in its ``<head>``, with the OTLP
URL the page's script exports to. The page loads ``/rum.js`` (``BUNDLE``), then ``POST``s
``/api/checkout`` with ``fetch``; pages of ``BROKEN_TIER`` also run a widget that throws.
The hash key comes from ``OTEL_IMPACT_HASH_KEY``.
"""

from __future__ import annotations

import sys
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from opentelemetry.sdk.trace import TracerProvider

import otel_impact

BUNDLE = Path(sys.argv[1]).read_bytes()
CUSTOMER_PREFIX = sys.argv[2]
BROKEN_TIER = sys.argv[3]

provider = TracerProvider()
otel_impact.configure(provider)
tracer = provider.get_tracer("rum-shop")

PAGE = """<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>Shop</title>
{identity}
<meta name="otlp-traces-url" content="{otlp}">
<script src="/rum.js"></script>
</head>
<body>
<h1>Shop</h1>
<script>
fetch("/api/checkout", {{method: "POST"}});
</script>
{widget}
</body>
</html>
"""
BROKEN_WIDGET = '<script>throw new Error("checkout widget crashed");</script>'


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if url.path == "/rum.js":
            self._send(200, "application/javascript", BUNDLE)
        elif len(parts) == 3 and parts[0] == "page":
            tier, number = parts[1], parts[2]
            otlp = parse_qs(url.query).get("otlp", [""])[0]
            with tracer.start_as_current_span("GET /page"):
                otel_impact.set_customer(f"{CUSTOMER_PREFIX}/{tier}/{number}", tier=tier)
                identity = otel_impact.browser_identity().meta_tags()
            widget = BROKEN_WIDGET if tier == BROKEN_TIER else ""
            page = PAGE.format(identity=identity, otlp=escape(otlp, quote=True), widget=widget)
            self._send(200, "text/html; charset=utf-8", page.encode())
        else:
            self._send(404, "text/plain", b"not found")

    def do_POST(self) -> None:
        if self.path == "/api/checkout":
            self._send(200, "application/json", b'{"ok": true}')
        else:
            self._send(404, "text/plain", b"not found")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
