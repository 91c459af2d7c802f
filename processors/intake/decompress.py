"""Request bodies decompressed with two bounds: the size limit and the decompression ratio.

Accepted encodings: ``gzip``, ``deflate`` (zlib-wrapped as HTTP defines it, the way the OTel
exporters send it; a raw deflate stream is accepted too) and ``zstd`` (over OTLP/HTTP; gRPC
clients compress with gzip or deflate). ``snappy`` and ``lz4``, which the Collector also
accepts, are refused as unsupported: no OTel SDK sends them by default.

The output is bounded *while* decompressing, never after: by ``max_request_bytes`` (a larger
body is ``too_large``) and by ``max_decompression_ratio`` times the compressed size (a larger one
is ``decompression_ratio``: a decompression bomb, e.g. 4 KB of gzip that holds 2 million empty
spans). Both answers name the setting that bounds them.
"""

from __future__ import annotations

import zlib
from typing import Final

import zstandard

from otel_impact.processors.pipeline import Rejection

__all__ = ["ENCODINGS", "Inflater", "sniff_encoding"]

ENCODINGS: Final = ("gzip", "deflate", "zstd")
"""The content encodings `Inflater` decompresses (besides ``identity``)."""
RATIO_REASON: Final = "decompression_ratio"
"""The rejection reason of a body that decompresses past the ratio."""

_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"


def sniff_encoding(body: bytes) -> str:
    """The encoding of a gRPC message as its first bytes show it: ``gzip``, ``deflate`` or ``identity``.

    gRPC does not tell the application which encoding a message used; the magic numbers do. An
    OTLP request never starts like a gzip stream (0x1f is an invalid protobuf tag) and starts
    like a zlib stream only if its first field were number 15, which OTLP does not have.
    """
    if body[:2] == b"\x1f\x8b":
        return "gzip"
    if _is_zlib_header(body):
        return "deflate"
    return "identity"


def _is_zlib_header(body: bytes) -> bool:
    return len(body) >= 2 and body[0] & 0x0F == 8 and body[0] >> 4 <= 7 and (body[0] << 8 | body[1]) % 31 == 0


class Inflater:
    """Decompresses bodies within ``max_bytes`` and ``max_ratio`` times their compressed size.

    ``ratio_setting`` names the setting of the ratio in answers (``receivers.max_decompression_ratio``).
    """

    def __init__(
        self, max_bytes: int, max_ratio: float, *, ratio_setting: str = "receivers.max_decompression_ratio"
    ) -> None:
        self.max_bytes = max_bytes
        self.max_ratio = max_ratio
        self._ratio_setting = ratio_setting

    def inflate(self, raw: bytes, encoding: str) -> bytes | Rejection:
        """``raw`` decompressed, or the rejection: too large, past the ratio, corrupt, or an unknown encoding."""
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            return raw
        if encoding not in ENCODINGS:
            message = f"unsupported Content-Encoding {encoding[:32]!r}; use gzip, deflate, zstd or none"
            return Rejection("unsupported_media_type", message)
        by_ratio = int(len(raw) * self.max_ratio)
        limit = min(self.max_bytes, by_ratio)
        try:
            body = _zstd(raw, limit) if encoding == "zstd" else _zlib(raw, limit, encoding)
        except (zlib.error, zstandard.ZstdError, ValueError):
            return Rejection("invalid", f"the {encoding} body is corrupt or truncated")
        if len(body) <= limit:
            return body
        if limit == self.max_bytes:
            return Rejection("too_large", f"the request exceeds the limit of {self.max_bytes} bytes")
        return Rejection(
            RATIO_REASON,
            f"the {encoding} body decompresses to more than {self.max_ratio:g} times its size "
            f"({self._ratio_setting}); compress less or raise the setting",
        )


def _zlib(raw: bytes, limit: int, encoding: str) -> bytes:
    """Up to ``limit + 1`` bytes of a gzip or deflate stream; ValueError when it is truncated."""
    wbits = 31 if encoding == "gzip" else (15 if _is_zlib_header(raw) else -15)
    inflater = zlib.decompressobj(wbits=wbits)
    body = inflater.decompress(raw, limit + 1)
    if len(body) > limit:  # stopped at limit + 1: past the bound
        return body
    if not inflater.eof:
        raise ValueError("truncated")
    return body


def _zstd(raw: bytes, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes of one zstd frame; ValueError when it is truncated."""
    if raw[:4] != _ZSTD_MAGIC:
        raise ValueError("not a zstd frame")
    out = bytearray()
    with zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        while len(out) <= limit:
            chunk = reader.read(limit + 1 - len(out))
            if not chunk:
                break
            out += chunk
    if len(out) > limit:
        return bytes(out)
    whole = zstandard.ZstdDecompressor().decompressobj()  # the output is known to fit: check the frame ends
    whole.decompress(raw)
    if not whole.eof:
        raise ValueError("truncated")
    return bytes(out)
