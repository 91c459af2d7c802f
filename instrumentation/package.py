"""Package data of the ``otel_impact`` instrumentor, as contrib instrumentations keep it."""

from __future__ import annotations

_instruments: tuple[str, ...] = ()
"""Libraries the instrumentor needs: none; each framework hook is armed only when present."""

_supports_metrics = False
