"""Time windows: the SLO period, the burn-rate windows and the multiwindow burn-rate table.

Scaling the SRE Workbook table to other periods
-----------------------------------------------
The Workbook's table for a 30-day SLO is defined by the *fraction of the period's error budget*
an alert lets burn in its long window before it fires: 2% in 1h (page), 5% in 6h (page), 10% in
1d and 10% in 3d (tickets). The burn-rate threshold follows as
``fraction x period / long window``: 0.02 x 720h / 1h = 14.4, 0.05 x 720h / 6h = 6,
0.10 x 720h / 24h = 3, 0.10 x 720h / 72h = 1.

For another period the windows stay (5m to 3d are what the counts and the recording rules
answer) and the fractions stay, so each alert still means "this much of *this* SLO's budget is
gone". Only the threshold moves with the period, with one floor: a burn rate below 1 cannot
exhaust the budget within the period, so no alert fires below 1x. Results:

=========  ======  ======  ======  ======
period     1h/5m   6h/30m  1d/2h   3d/6h
=========  ======  ======  ======  ======
30d        14.4    6       3       1
28d        13.44   5.6     2.8     1 (0.93 floored)
7d         3.36    1.4     1 (0.7) 1 (0.23)
month 31d  14.88   6.2     3.1     1.03
=========  ======  ======  ======  ======

A calendar month's period is its true length in its time zone (28 to 31 days, give or take the
daylight-saving hour), so thresholds follow the month being evaluated.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Literal

from otel_impact.processors.durations import format_duration

from .config import WindowSpec

__all__ = ["BURN_WINDOWS", "WORKBOOK_RULES", "BurnRule", "period_bounds", "window_name"]

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

BURN_WINDOWS: tuple[float, ...] = (5 * MINUTE, 30 * MINUTE, HOUR, 2 * HOUR, 6 * HOUR, DAY, 3 * DAY)
"""The windows burn rates are reported over, in seconds: 5m, 30m, 1h, 2h, 6h, 1d, 3d."""


def window_name(seconds: float) -> str:
    """``300.0`` -> ``"5m"`` for the burn-rate windows (the Prometheus range of their rules)."""
    return format_duration(seconds)


@dataclass(frozen=True)
class BurnRule:
    """One multiwindow burn-rate condition.

    It holds when the burn rate over ``long`` *and* over ``short`` (seconds) are both above
    `threshold` for the period: the long window proves the burn is significant, the short one
    that it is still going on (so the alert resolves soon after the burn stops).
    """

    name: str
    severity: Literal["page", "ticket"]
    long: float
    short: float
    budget_percent: float
    """Percent of the period's error budget burned in ``long`` at the threshold."""

    def threshold(self, period_seconds: float) -> float:
        """Burn-rate threshold for a period: ``percent/100 x period / long``, at least 1."""
        return max(1.0, self.budget_percent * period_seconds / (100.0 * self.long))


WORKBOOK_RULES: tuple[BurnRule, ...] = (
    BurnRule("page_fast", "page", HOUR, 5 * MINUTE, 2.0),
    BurnRule("page_slow", "page", 6 * HOUR, 30 * MINUTE, 5.0),
    BurnRule("ticket_fast", "ticket", DAY, 2 * HOUR, 10.0),
    BurnRule("ticket_slow", "ticket", 3 * DAY, 6 * HOUR, 10.0),
)
"""SRE Workbook table 5-8 plus its 1d/2h ticket, as budget fractions of a 30-day period."""


def period_bounds(window: WindowSpec, now_ns: int) -> tuple[int, int, float]:
    """The SLO period containing ``now_ns``: ``(start_ns, end_ns, length_seconds)``.

    A rolling period ends now. A calendar month starts at local midnight on the 1st in the
    window's time zone and ends at the next 1st; ``length_seconds`` is its true length, so a
    month with a daylight-saving change is an hour shorter or longer.
    """
    if window.kind == "rolling":
        length_ns = int(window.rolling_seconds * 1e9)
        return now_ns - length_ns, now_ns, window.rolling_seconds
    zone = zoneinfo.ZoneInfo(window.time_zone)
    local = dt.datetime.fromtimestamp(now_ns // 1_000_000_000, tz=zone)
    start = dt.datetime(local.year, local.month, 1, tzinfo=zone)
    next_year, next_month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    end = dt.datetime(next_year, next_month, 1, tzinfo=zone)
    start_ns = int(start.timestamp()) * 1_000_000_000
    end_ns = int(end.timestamp()) * 1_000_000_000
    return start_ns, end_ns, (end_ns - start_ns) / 1e9
