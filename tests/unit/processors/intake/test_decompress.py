"""Decompression within the size limit and the ratio: every accepted encoding, bombs, corrupt bodies."""

from __future__ import annotations

import gzip
import zlib

import pytest
import zstandard

from otel_impact.processors.intake.decompress import Inflater, sniff_encoding
from otel_impact.processors.pipeline import Rejection

BODY = b"\x0a\x10" + bytes(range(16)) * 64  # some bytes that compress a little
BOMB = b"\x0a\x00" * (1 << 20)

COMPRESSORS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd", "GZIP", " zstd "])
def test_every_accepted_encoding_round_trips(encoding: str) -> None:
    raw = COMPRESSORS[encoding.strip().lower()](BODY)
    assert Inflater(4 << 20, 100).inflate(raw, encoding) == BODY


def test_identity_and_raw_deflate() -> None:
    inflater = Inflater(4 << 20, 100)
    assert inflater.inflate(BODY, "identity") == BODY == inflater.inflate(BODY, "")
    raw_deflate = zlib.compressobj(wbits=-15)
    stream = raw_deflate.compress(BODY) + raw_deflate.flush()
    assert inflater.inflate(stream, "deflate") == BODY


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_a_bomb_under_the_size_limit_is_refused_by_the_ratio(encoding: str) -> None:
    refused = Inflater(4 << 20, 100).inflate(COMPRESSORS[encoding](BOMB), encoding)
    assert isinstance(refused, Rejection) and refused.reason == "decompression_ratio"
    assert "receivers.max_decompression_ratio" in refused.message and "100 times" in refused.message


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_past_the_size_limit_is_too_large_whatever_the_ratio(encoding: str) -> None:
    refused = Inflater(64 << 10, 100_000).inflate(COMPRESSORS[encoding](BOMB), encoding)
    assert isinstance(refused, Rejection) and refused.reason == "too_large"
    assert "exceeds the limit of 65536 bytes" in refused.message


def test_a_higher_ratio_lets_a_highly_compressible_body_through() -> None:
    assert Inflater(4 << 20, 5000).inflate(gzip.compress(BOMB), "gzip") == BOMB


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "zstd"])
def test_corrupt_or_truncated_bodies_are_invalid(encoding: str) -> None:
    whole = COMPRESSORS[encoding](BODY * 4)
    for broken in (whole[: len(whole) // 2], b"not compressed at all"):
        refused = Inflater(4 << 20, 100).inflate(broken, encoding)
        assert isinstance(refused, Rejection) and refused.reason == "invalid", (encoding, broken[:8])
        assert f"the {encoding} body is corrupt" in refused.message


@pytest.mark.parametrize("encoding", ["br", "snappy", "lz4", "x" * 200])
def test_other_encodings_are_unsupported(encoding: str) -> None:
    refused = Inflater(4 << 20, 100).inflate(BODY, encoding)
    assert isinstance(refused, Rejection) and refused.reason == "unsupported_media_type"
    assert "use gzip, deflate, zstd or none" in refused.message and len(refused.message) < 120


def test_grpc_messages_are_recognized_by_their_headers() -> None:
    assert sniff_encoding(gzip.compress(BODY)) == "gzip"
    assert sniff_encoding(zlib.compress(BODY)) == "deflate"
    assert sniff_encoding(BODY) == "identity"
    assert sniff_encoding(b"") == "identity"
