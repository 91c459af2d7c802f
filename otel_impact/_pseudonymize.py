"""Keyed pseudonyms of customer IDs.

A pseudonym is a keyed PRF of the ID's UTF-8 bytes, truncated to 128 bits and written as 32
lowercase hex characters. The same ID with the same key gives the same pseudonym in every
process, service and language, which is what lets the impact processor count distinct users
and rewrite raw IDs from other services into the very same value.

Algorithms:

``hmac-sha256`` (default)
    HMAC-SHA256, truncated to the first 16 bytes. A standard keyed PRF.
``blake2b``
    BLAKE2b in keyed mode with a 16-byte digest. About 2.5x faster; keys up to 64 bytes.

An unkeyed hash is never produced: a low-entropy ID (a short number, an email) is reversed by
a dictionary attack on an unkeyed hash. Without a key there is no pseudonymizer at all.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from typing import Final, Literal

from ._exceptions import HashKeyError
from ._hash_key import HashKey

Algorithm = Literal["hmac-sha256", "blake2b"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = ("hmac-sha256", "blake2b")
DEFAULT_ALGORITHM: Final[Algorithm] = "hmac-sha256"
DEFAULT_MEMO_SIZE: Final = 4096
MEMO_MAX_ID_BYTES: Final = 256
"""IDs longer than this many bytes are hashed but not memoized, so the memo's memory stays bounded."""


def canonical_id_bytes(customer_id: object) -> bytes | None:
    """The bytes that are hashed for ``customer_id``, or ``None`` for an unusable ID.

    ``str`` is encoded as UTF-8 (lone surrogates pass through rather than fail); ``int`` is
    written in decimal, so ``12345`` and ``"12345"`` give the same pseudonym; ``bytes`` are
    used as they are. ``None``, ``bool``, empty values and other types are unusable.
    """
    if isinstance(customer_id, str):
        return customer_id.encode("utf-8", "surrogatepass") if customer_id else None
    if isinstance(customer_id, bool):
        return None
    if isinstance(customer_id, int):
        return str(customer_id).encode("ascii")
    if isinstance(customer_id, (bytes, bytearray)):
        return bytes(customer_id) if customer_id else None
    return None


class Pseudonymizer:
    """Turns customer IDs into keyed pseudonyms.

    Thread-safe. Results for IDs of up to `MEMO_MAX_ID_BYTES` bytes are kept in a bounded
    LRU memo of ``memo_size`` entries, so a request path that sees the same customer again
    pays a dictionary lookup, not a hash.
    """

    def __init__(
        self, key: HashKey, *, algorithm: Algorithm = DEFAULT_ALGORITHM, memo_size: int = DEFAULT_MEMO_SIZE
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise HashKeyError(
                "OTEL_IMPACT_HASH_ALGORITHM", f"unknown algorithm {algorithm!r}", f"use one of {', '.join(ALGORITHMS)}"
            )
        if algorithm == "blake2b" and len(key.material) > hashlib.blake2b.MAX_KEY_SIZE:
            raise HashKeyError(
                key.source,
                f"BLAKE2b takes keys of at most {hashlib.blake2b.MAX_KEY_SIZE} bytes, this one has {len(key.material)}",
                "use a 32-byte key, or the hmac-sha256 algorithm",
            )
        if memo_size < 0:
            raise ValueError("memo_size must be zero or positive.")
        self._key = key
        self._algorithm: Algorithm = algorithm
        self._digest = self._make_digest(key.material, algorithm)
        self._memoized: Callable[[bytes], str] = functools.lru_cache(maxsize=memo_size)(self._digest)

    @staticmethod
    def _make_digest(material: bytes, algorithm: Algorithm) -> Callable[[bytes], str]:
        if algorithm == "blake2b":

            def blake(data: bytes) -> str:
                return hashlib.blake2b(data, key=material, digest_size=16).hexdigest()

            return blake
        prototype = hmac.new(material, digestmod=hashlib.sha256)

        def hmac_sha256(data: bytes) -> str:
            mac = prototype.copy()
            mac.update(data)
            return mac.digest()[:16].hex()

        return hmac_sha256

    @property
    def key_id(self) -> str:
        """The key's public fingerprint (see `HashKey.key_id`)."""
        return self._key.key_id

    @property
    def algorithm(self) -> Algorithm:
        return self._algorithm

    def pseudonymize(self, customer_id: object) -> str | None:
        """Return the pseudonym of ``customer_id``, or ``None`` when the ID is unusable.

        Never raises. See `canonical_id_bytes` for which values are usable.
        """
        if type(customer_id) is str and customer_id:  # the common case, inline
            data: bytes | None = customer_id.encode("utf-8", "surrogatepass")
        else:
            data = canonical_id_bytes(customer_id)
        if data is None:
            return None
        if len(data) <= MEMO_MAX_ID_BYTES:
            return self._memoized(data)
        return self._digest(data)

    def memo_info(self) -> functools._CacheInfo:
        """Hits, misses and size of the memo."""
        return self._memoized.cache_info()  # type: ignore[attr-defined, no-any-return]
