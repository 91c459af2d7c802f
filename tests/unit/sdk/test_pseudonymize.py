from __future__ import annotations

import hashlib
import hmac

import pytest
from support.canaries import CANARIES, TEST_KEY_HEX

from otel_impact import HashKey, HashKeyError, Pseudonymizer, is_pseudonym
from otel_impact._pseudonymize import MEMO_MAX_ID_BYTES, canonical_id_bytes

KEY = HashKey(bytes.fromhex(TEST_KEY_HEX), source="test")


def test_default_is_truncated_hmac_sha256() -> None:
    expected = hmac.new(KEY.material, b"customer-1", hashlib.sha256).digest()[:16].hex()
    assert Pseudonymizer(KEY).pseudonymize("customer-1") == expected


def test_blake2b_is_keyed_blake2b_128() -> None:
    expected = hashlib.blake2b(b"customer-1", key=KEY.material, digest_size=16).hexdigest()
    assert Pseudonymizer(KEY, algorithm="blake2b").pseudonymize("customer-1") == expected


@pytest.mark.parametrize("algorithm", ["hmac-sha256", "blake2b"])
@pytest.mark.parametrize("customer_id", [*CANARIES, "x", "a" * 10_000])
def test_pseudonyms_are_32_lowercase_hex_and_never_contain_the_id(algorithm: str, customer_id: str) -> None:
    pseudonym = Pseudonymizer(KEY, algorithm=algorithm).pseudonymize(customer_id)  # type: ignore[arg-type]
    assert pseudonym is not None and is_pseudonym(pseudonym)
    assert customer_id not in pseudonym


def test_different_keys_give_different_pseudonyms() -> None:
    other = HashKey(bytes(32), source="test")
    assert Pseudonymizer(KEY).pseudonymize("42") != Pseudonymizer(other).pseudonymize("42")


def test_int_and_decimal_string_agree() -> None:
    p = Pseudonymizer(KEY)
    assert p.pseudonymize(12345) == p.pseudonymize("12345") == p.pseudonymize(b"12345")


@pytest.mark.parametrize("bad", [None, "", b"", True, False, 1.5, object(), ["a"], {"id": 1}])
def test_unusable_ids_give_none_and_do_not_raise(bad: object) -> None:
    assert Pseudonymizer(KEY).pseudonymize(bad) is None


def test_lone_surrogates_do_not_raise() -> None:
    assert is_pseudonym(Pseudonymizer(KEY).pseudonymize("\ud800broken"))


def test_memo_is_bounded_and_skips_huge_ids() -> None:
    p = Pseudonymizer(KEY, memo_size=8)
    for i in range(100):
        p.pseudonymize(f"id-{i}")
    assert p.memo_info().currsize == 8
    p.pseudonymize("id-99")
    assert p.memo_info().hits == 1
    before = p.memo_info().misses
    huge = "x" * (MEMO_MAX_ID_BYTES + 1)
    assert p.pseudonymize(huge) == p.pseudonymize(huge)
    assert p.memo_info().misses == before  # not memoized


def test_canonical_bytes() -> None:
    assert canonical_id_bytes("Zoë") == "Zoë".encode()
    assert canonical_id_bytes(7) == b"7"
    assert canonical_id_bytes(True) is None


def test_blake2b_refuses_keys_over_64_bytes_naming_the_fix() -> None:
    with pytest.raises(HashKeyError, match="at most 64 bytes"):
        Pseudonymizer(HashKey(bytes(65), source="OTEL_IMPACT_HASH_KEY"), algorithm="blake2b")


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(HashKeyError, match="OTEL_IMPACT_HASH_ALGORITHM"):
        Pseudonymizer(KEY, algorithm="md5")  # type: ignore[arg-type]
