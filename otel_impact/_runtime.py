"""The process-wide runtime: validated settings and the pseudonymizer built from them.

It is made once, lazily from the environment on first use, or explicitly by `configure`. Every
problem in the settings is logged once, as one line naming the variable and the fix, and the
application keeps running with the private fallback.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from ._exceptions import ConfigurationError
from ._hash_key import ENV_HASH_KEY, ENV_HASH_KEY_FILE
from ._log import logger
from ._pseudonymize import Pseudonymizer
from ._settings import SdkSettings


@dataclass(frozen=True)
class Runtime:
    """Settings plus the pseudonymizer; ``pseudonymizer`` is ``None`` when identity is refused."""

    settings: SdkSettings
    pseudonymizer: Pseudonymizer | None

    @property
    def key_id(self) -> str | None:
        return None if self.pseudonymizer is None else self.pseudonymizer.key_id


_lock = threading.Lock()
_runtime: Runtime | None = None


def build_runtime(settings: SdkSettings, problems: list[ConfigurationError] | None = None) -> Runtime:
    """Make a runtime and log, once each, the problems found while reading the settings."""
    for problem in problems or ():
        logger.error("otel-impact configuration: %s", problem)
    pseudonymizer: Pseudonymizer | None = None
    if settings.hash_key is not None:
        try:
            pseudonymizer = Pseudonymizer(settings.hash_key, algorithm=settings.algorithm, memo_size=settings.memo_size)
        except ConfigurationError as error:
            logger.error("otel-impact configuration: %s", error)
    if pseudonymizer is None and not any(p.setting in (ENV_HASH_KEY, ENV_HASH_KEY_FILE) for p in problems or ()):
        logger.log(
            logging.WARNING,
            "otel-impact: no pseudonymization key is set, so customer identity is not recorded "
            "(tier, flags and tasks still are). Fix: set %s or %s to 32 random bytes in hex.",
            ENV_HASH_KEY,
            ENV_HASH_KEY_FILE,
        )
    return Runtime(settings=settings, pseudonymizer=pseudonymizer)


def get_runtime() -> Runtime:
    """The runtime, built from the environment on first use."""
    global _runtime
    runtime = _runtime
    if runtime is not None:
        return runtime
    with _lock:
        if _runtime is None:
            settings, problems = SdkSettings.from_env()
            _runtime = build_runtime(settings, problems)
        return _runtime


def install_runtime(settings: SdkSettings | None = None) -> Runtime:
    """Replace the runtime: from ``settings``, or re-read from the environment when ``None``."""
    global _runtime
    with _lock:
        if settings is None:
            settings, problems = SdkSettings.from_env()
        else:
            problems = settings.validate()
        _runtime = build_runtime(settings, problems)
        return _runtime


def reset_runtime() -> None:
    """Forget the runtime, so the next use re-reads the environment (for tests)."""
    global _runtime
    with _lock:
        _runtime = None
