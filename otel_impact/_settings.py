"""SDK plugin settings, read from ``OTEL_IMPACT_*`` environment variables.

Policy for bad values inside an application process: **log and fall back, never crash the
application.** `SdkSettings.from_env` returns the settings together with every problem it
found; each problem names the variable and the fix. The fallback is always the private one:
a bad or missing key means customer identity is refused, not sent raw or hashed without a key.
(The impact processor, a service of its own, refuses to start on bad configuration instead.)

=================================== ============================================ ===============
variable                            meaning                                      default
=================================== ============================================ ===============
``OTEL_IMPACT_HASH_KEY``            pseudonymization key, hex or base64          none
``OTEL_IMPACT_HASH_KEY_FILE``       file holding the key, hex or base64 text     none
``OTEL_IMPACT_HASH_ALGORITHM``      ``hmac-sha256`` or ``blake2b``               ``hmac-sha256``
``OTEL_IMPACT_TRUST_INCOMING_BAGGAGE`` accept ``impact.*`` baggage from callers  ``false``
``OTEL_IMPACT_PII_ATTRIBUTES``      comma list of raw identity attributes        ``enduser.id,user.id,user.email``
``OTEL_IMPACT_HASH_MEMO_SIZE``      entries in the pseudonym memo                ``4096``
=================================== ============================================ ===============
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ._attributes import DEFAULT_PII_ATTRIBUTES
from ._exceptions import ConfigurationError
from ._hash_key import HashKey, load_hash_key
from ._pseudonymize import ALGORITHMS, DEFAULT_ALGORITHM, DEFAULT_MEMO_SIZE, Algorithm

ENV_HASH_ALGORITHM: Final = "OTEL_IMPACT_HASH_ALGORITHM"
ENV_TRUST_INCOMING_BAGGAGE: Final = "OTEL_IMPACT_TRUST_INCOMING_BAGGAGE"
ENV_PII_ATTRIBUTES: Final = "OTEL_IMPACT_PII_ATTRIBUTES"
ENV_HASH_MEMO_SIZE: Final = "OTEL_IMPACT_HASH_MEMO_SIZE"

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})
_ATTRIBUTE_NAME = re.compile(r"\A[A-Za-z0-9_.\-]{1,255}\Z")


@dataclass(frozen=True)
class SdkSettings:
    """Validated settings of the SDK plugin. Build with `from_env` or directly.

    ``hash_key`` ``None`` means identity is refused: no pseudonym, no raw ID, no unkeyed hash.
    """

    hash_key: HashKey | None = None
    algorithm: Algorithm = DEFAULT_ALGORITHM
    trust_incoming_baggage: bool = False
    pii_attributes: tuple[str, ...] = DEFAULT_PII_ATTRIBUTES
    memo_size: int = DEFAULT_MEMO_SIZE

    def __post_init__(self) -> None:
        problems = self.validate()
        if problems:
            raise problems[0]

    def validate(self) -> list[ConfigurationError]:
        """Every problem with these settings; empty when they are valid."""
        problems: list[ConfigurationError] = []
        if self.algorithm not in ALGORITHMS:
            problems.append(
                ConfigurationError(
                    ENV_HASH_ALGORITHM, f"unknown algorithm {self.algorithm!r}", f"use one of {ALGORITHMS}"
                )
            )
        if self.memo_size < 0:
            problems.append(ConfigurationError(ENV_HASH_MEMO_SIZE, "must not be negative", "use 0 to disable the memo"))
        for name in self.pii_attributes:
            if not _ATTRIBUTE_NAME.match(name):
                problems.append(
                    ConfigurationError(
                        ENV_PII_ATTRIBUTES,
                        f"{name!r} is not an attribute name",
                        "list attribute names separated by commas, e.g. enduser.id,user.email",
                    )
                )
        return problems

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> tuple[SdkSettings, list[ConfigurationError]]:
        """Read the settings, falling back per variable; return them and the problems found."""
        env = os.environ if environ is None else environ
        problems: list[ConfigurationError] = []

        hash_key: HashKey | None = None
        try:
            hash_key = load_hash_key(env)
        except ConfigurationError as error:
            problems.append(error)

        algorithm: Algorithm = DEFAULT_ALGORITHM
        raw_algorithm = env.get(ENV_HASH_ALGORITHM, "").strip().lower()
        if raw_algorithm:
            if raw_algorithm in ALGORITHMS:
                algorithm = raw_algorithm
            else:
                problems.append(
                    ConfigurationError(
                        ENV_HASH_ALGORITHM,
                        f"unknown algorithm {raw_algorithm!r}",
                        f"use one of {', '.join(ALGORITHMS)}; identity is refused until then",
                    )
                )
                hash_key = None  # never fall back to another algorithm: pseudonyms would silently change

        trust = _read_bool(env, ENV_TRUST_INCOMING_BAGGAGE, default=False, problems=problems)

        pii_attributes: tuple[str, ...] = DEFAULT_PII_ATTRIBUTES
        raw_pii = env.get(ENV_PII_ATTRIBUTES)
        if raw_pii is not None:
            names = tuple(dict.fromkeys(part.strip() for part in raw_pii.split(",") if part.strip()))
            bad = [name for name in names if not _ATTRIBUTE_NAME.match(name)]
            if bad:
                problems.append(
                    ConfigurationError(
                        ENV_PII_ATTRIBUTES,
                        f"{bad[0]!r} is not an attribute name",
                        "list attribute names separated by commas; the defaults stay in force until then",
                    )
                )
            else:
                pii_attributes = names

        memo_size = DEFAULT_MEMO_SIZE
        raw_memo = env.get(ENV_HASH_MEMO_SIZE, "").strip()
        if raw_memo:
            try:
                memo_size = int(raw_memo)
                if memo_size < 0:
                    raise ValueError
            except ValueError:
                memo_size = DEFAULT_MEMO_SIZE
                problems.append(
                    ConfigurationError(ENV_HASH_MEMO_SIZE, "is not a non-negative integer", f"e.g. {DEFAULT_MEMO_SIZE}")
                )

        settings = cls(
            hash_key=hash_key,
            algorithm=algorithm,
            trust_incoming_baggage=trust,
            pii_attributes=pii_attributes,
            memo_size=memo_size,
        )
        return settings, problems


def _read_bool(env: Mapping[str, str], name: str, *, default: bool, problems: list[ConfigurationError]) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    problems.append(ConfigurationError(name, f"{raw!r} is not a boolean", f"use true or false; {default} applies"))
    return default
