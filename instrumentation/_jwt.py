"""Reading claims from an ``Authorization: Bearer`` JWT, **without verifying it**.

Only the payload is decoded, to attribute telemetry. Verifying the signature, the expiry and
the audience is the application's job (its authentication layer does it anyway); a forged
token can at worst attribute its own request to a customer it names, it gains no access.
Neither the token nor its claims are ever logged.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Final

MAX_TOKEN_CHARS: Final = 16384
"""Longer tokens are not decoded."""


def bearer_claims(authorization: str | None) -> Mapping[str, object] | None:
    """The claims of the JWT in an ``Authorization: Bearer <jwt>`` value, or ``None``.

    ``None`` when the value is missing, not a bearer token, not a three-part JWS compact token,
    too long, or its payload is not a base64url-encoded JSON object. Never raises.
    """
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    parts = token.split(".")
    if len(parts) != 3:  # JWE (five parts) payloads are encrypted: nothing to read
        return None
    payload = parts[1]
    try:
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(decoded)
    except (ValueError, binascii.Error, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    return claims if isinstance(claims, dict) else None
