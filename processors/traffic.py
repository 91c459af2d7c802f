"""Which traffic an answer covers: real users (the default) or synthetic probes.

The one definition of the kinds and of how a request names one (``?traffic=``, ``--traffic``);
standard library only, so the admin commands can use it without the processor extra.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = ["TRAFFIC_KINDS", "Traffic", "parse_traffic"]

Traffic = Literal["real", "synthetic"]
"""Which events an answer covers: real users (the default) or synthetic probes."""
TRAFFIC_KINDS: Final[tuple[Traffic, ...]] = get_args(Traffic)


def parse_traffic(value: str | None, *, setting: str = "traffic") -> Traffic:
    """``value`` as a `Traffic` (``None`` or empty: ``real``). Raises ``ValueError`` naming
    ``setting`` and the allowed values."""
    if not value:
        return "real"
    for kind in TRAFFIC_KINDS:
        if value == kind:
            return kind
    raise ValueError(f"{setting} must be one of {', '.join(TRAFFIC_KINDS)}, not {value[:40]!r}")
