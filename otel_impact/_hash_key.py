"""Loading the pseudonymization key.

The key comes from ``OTEL_IMPACT_HASH_KEY`` (hex or base64 text) or from the file named by
``OTEL_IMPACT_HASH_KEY_FILE`` (the same text encodings). Hex is tried first: a value made only
of an even number of hex digits is hex; anything else is read as base64 (standard or URL-safe,
padding optional). A key shorter than 16 bytes is refused.

The key id is a non-reversible fingerprint, safe to publish on the resource as
``impact.hash.key_id``: it changes when the key rotates and reveals nothing about the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from ._exceptions import HashKeyError

ENV_HASH_KEY: Final = "OTEL_IMPACT_HASH_KEY"
ENV_HASH_KEY_FILE: Final = "OTEL_IMPACT_HASH_KEY_FILE"
MIN_KEY_BYTES: Final = 16
MAX_KEY_FILE_BYTES: Final = 4096

_HEX = re.compile(r"\A(?:[0-9a-fA-F]{2})+\Z")
_GENERATE_HINT: Final = "generate one with: python -c 'import secrets; print(secrets.token_hex(32))'"
_KEY_ID_CONTEXT: Final = b"otel-impact/key-id/v1\x00"


@dataclass(frozen=True)
class HashKey:
    """Key material for pseudonymization, with where it came from.

    ``material`` is never logged, printed or exported; ``repr`` hides it.
    """

    material: bytes = field(repr=False)
    source: str

    @property
    def key_id(self) -> str:
        """A 16-hex-character fingerprint of the key, safe to publish."""
        return hashlib.sha256(_KEY_ID_CONTEXT + self.material).hexdigest()[:16]


def decode_key_text(text: str, *, setting: str) -> bytes:
    """Decode hex or base64 key text; raise `HashKeyError` naming ``setting`` when it is unusable."""
    value = text.strip()
    if not value:
        raise HashKeyError(setting, "the key is empty", _GENERATE_HINT)
    if _HEX.match(value):
        material = bytes.fromhex(value)
    else:
        try:
            padded = value + "=" * (-len(value) % 4)
            material = base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise HashKeyError(setting, "the key is neither hex nor base64", _GENERATE_HINT) from None
    if len(material) < MIN_KEY_BYTES:
        raise HashKeyError(
            setting,
            f"the key decodes to {len(material)} bytes; at least {MIN_KEY_BYTES} are required",
            _GENERATE_HINT,
        )
    return material


def load_hash_key(environ: Mapping[str, str] | None = None) -> HashKey | None:
    """Read the key from the environment.

    Returns ``None`` when neither variable is set. Raises `HashKeyError` when a variable is set
    but unusable, or when both are set (which one wins would be a guess).
    """
    env = os.environ if environ is None else environ
    inline = env.get(ENV_HASH_KEY)
    path = env.get(ENV_HASH_KEY_FILE)
    if inline and path:
        raise HashKeyError(ENV_HASH_KEY, f"both {ENV_HASH_KEY} and {ENV_HASH_KEY_FILE} are set", "set only one of them")
    if inline:
        return HashKey(decode_key_text(inline, setting=ENV_HASH_KEY), source=ENV_HASH_KEY)
    if path:
        return HashKey(read_key_file(path), source=ENV_HASH_KEY_FILE)
    return None


def read_key_file(path: str, *, setting: str = ENV_HASH_KEY_FILE) -> bytes:
    """Read and decode a key file (hex or base64 text)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as error:
        raise HashKeyError(
            setting,
            f"cannot read the key file ({error.strerror or type(error).__name__})",
            "point it to a readable file",
        ) from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise HashKeyError(
            setting, f"the key file is larger than {MAX_KEY_FILE_BYTES} bytes", "store the key as hex text"
        )
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise HashKeyError(setting, "the key file is not hex or base64 text", _GENERATE_HINT) from None
    return decode_key_text(text, setting=setting)
