from __future__ import annotations

import base64
from pathlib import Path

import pytest

from otel_impact import HashKeyError, load_hash_key
from otel_impact._hash_key import decode_key_text

KEY = bytes(range(32))


@pytest.mark.parametrize(
    "text",
    [
        KEY.hex(),
        KEY.hex().upper(),
        base64.b64encode(KEY).decode(),
        base64.urlsafe_b64encode(KEY).decode().rstrip("="),
        f"  {KEY.hex()}\n",
    ],
)
def test_hex_and_base64_keys_decode_to_the_same_bytes(text: str) -> None:
    assert decode_key_text(text, setting="OTEL_IMPACT_HASH_KEY") == KEY


def test_short_key_is_refused_naming_the_variable_and_the_fix() -> None:
    with pytest.raises(HashKeyError) as caught:
        load_hash_key({"OTEL_IMPACT_HASH_KEY": "00" * 15})
    message = str(caught.value)
    assert "OTEL_IMPACT_HASH_KEY" in message
    assert "15 bytes" in message and "16" in message
    assert "token_hex" in message  # the fix: how to make a good key
    assert "00" * 15 not in message  # the key itself is never echoed


@pytest.mark.parametrize("text", ["", "   ", "not a key!", "@@@@"])
def test_garbage_keys_are_refused(text: str) -> None:
    with pytest.raises(HashKeyError, match="OTEL_IMPACT_HASH_KEY"):
        load_hash_key({"OTEL_IMPACT_HASH_KEY": text or " "})


def test_no_key_is_none() -> None:
    assert load_hash_key({}) is None


def test_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(KEY.hex() + "\n")
    key = load_hash_key({"OTEL_IMPACT_HASH_KEY_FILE": str(path)})
    assert key is not None and key.material == KEY and key.source == "OTEL_IMPACT_HASH_KEY_FILE"


def test_missing_key_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(HashKeyError, match=r"OTEL_IMPACT_HASH_KEY_FILE.*cannot read"):
        load_hash_key({"OTEL_IMPACT_HASH_KEY_FILE": str(tmp_path / "absent")})


def test_binary_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"\xff\xfe" * 20)
    with pytest.raises(HashKeyError, match="not hex or base64"):
        load_hash_key({"OTEL_IMPACT_HASH_KEY_FILE": str(path)})


def test_both_sources_set_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HashKeyError, match="set only one"):
        load_hash_key({"OTEL_IMPACT_HASH_KEY": KEY.hex(), "OTEL_IMPACT_HASH_KEY_FILE": str(tmp_path / "k")})


def test_key_id_is_stable_short_and_reveals_nothing() -> None:
    key = load_hash_key({"OTEL_IMPACT_HASH_KEY": KEY.hex()})
    other = load_hash_key({"OTEL_IMPACT_HASH_KEY": bytes(range(1, 33)).hex()})
    assert key is not None and other is not None
    assert key.key_id == load_hash_key({"OTEL_IMPACT_HASH_KEY": base64.b64encode(KEY).decode()}).key_id  # type: ignore[union-attr]
    assert len(key.key_id) == 16
    assert key.key_id != other.key_id  # a rotation is visible
    assert key.key_id not in KEY.hex()
    assert KEY.hex() not in repr(key)  # repr hides the material
