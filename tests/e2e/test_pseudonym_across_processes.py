"""Pseudonyms are a function of the key and the ID alone: another process gives the same one."""

from __future__ import annotations

import subprocess
import sys

from support.canaries import TEST_KEY_HEX

from otel_impact import HashKey, Pseudonymizer

KEY = HashKey(bytes.fromhex(TEST_KEY_HEX), source="test")


def test_same_id_same_key_same_pseudonym_in_another_process() -> None:
    code = (
        "import otel_impact as o;"
        f"print(o.Pseudonymizer(o.HashKey(bytes.fromhex('{TEST_KEY_HEX}'), source='x')).pseudonymize('Zoë 42'))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == Pseudonymizer(KEY).pseudonymize("Zoë 42")
