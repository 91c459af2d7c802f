"""Canary customer IDs: if one of these shows up in exported bytes, a raw ID leaked."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

CANARY_EMAIL = "canary.alice+leak@example.com"
# A short, low-entropy customer number. Seven digits rather than four: every digit string is also
# hex, and a four-digit one turns up by chance in random trace ids (1 in 65,536 per position).
CANARY_NUMBER = "4711042"
CANARY_UNICODE = "Zoë Ωmega-Ünïcode 顧客"
CANARIES = (CANARY_EMAIL, CANARY_NUMBER, CANARY_UNICODE)

# A fixed 32-byte test key (hex). Never use a published key in production.
TEST_KEY_HEX = "5f1e0c7a9b3d2e4f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7"


def encodings(value: str) -> list[bytes]:
    """The byte forms a leaked ``value`` could take on the wire."""
    forms = {value, quote(value), quote_plus(value), quote(quote_plus(value))}
    out = [form.encode("utf-8") for form in forms]
    out.append(value.encode("utf-16-le"))
    return out


def assert_no_canary(data: bytes, *, where: str) -> None:
    for canary in CANARIES:
        for form in encodings(canary):
            assert form not in data, f"canary ID leaked into {where}"
