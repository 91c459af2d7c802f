"""What ``otel-impact check-config`` prints for a config that passes: one line per section, in this order."""

from __future__ import annotations

SECTIONS = (
    "receivers",
    "admin",
    "forward",
    "queue",
    "pseudonymization",
    "sli",
    "analysis",
    "explain",
    "shared_state",
    "slos",
    "alerting",
    "dashboard",
)
