"""SLO periods and the scaled SRE Workbook thresholds, with hand-computed expectations."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from otel_impact.processors.slo.config import WindowSpec
from otel_impact.processors.slo.windows import WORKBOOK_RULES, period_bounds

DAY = 86400.0


def _ns(text: str, zone: str = "UTC") -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()) * 1_000_000_000


@pytest.mark.parametrize(
    ("period_days", "expected"),
    [
        # 30d is the Workbook table itself: 2% of 720h in 1h = 14.4, 5% in 6h = 6, 10% in 24h = 3, 10% in 72h = 1.
        (30, {"page_fast": 14.4, "page_slow": 6.0, "ticket_fast": 3.0, "ticket_slow": 1.0}),
        # 28d: 0.02*672 = 13.44, 0.05*672/6 = 5.6, 0.1*672/24 = 2.8, 0.1*672/72 = 0.933 -> floored to 1.
        (28, {"page_fast": 13.44, "page_slow": 5.6, "ticket_fast": 2.8, "ticket_slow": 1.0}),
        # 7d: 0.02*168 = 3.36, 0.05*168/6 = 1.4, 0.1*168/24 = 0.7 -> 1, 0.1*168/72 = 0.233 -> 1.
        (7, {"page_fast": 3.36, "page_slow": 1.4, "ticket_fast": 1.0, "ticket_slow": 1.0}),
        # a 31-day month: 0.02*744 = 14.88, 0.05*744/6 = 6.2, 0.1*744/24 = 3.1, 0.1*744/72 = 1.0333.
        (31, {"page_fast": 14.88, "page_slow": 6.2, "ticket_fast": 3.1, "ticket_slow": 1.0333333}),
    ],
)
def test_thresholds_keep_the_budget_fraction_per_long_window(period_days: int, expected: dict[str, float]) -> None:
    got = {rule.name: rule.threshold(period_days * DAY) for rule in WORKBOOK_RULES}
    assert got == pytest.approx(expected)


def test_workbook_windows() -> None:
    table = [(r.name, r.severity, r.long / 3600, r.short / 60) for r in WORKBOOK_RULES]
    assert table == [
        ("page_fast", "page", 1, 5),
        ("page_slow", "page", 6, 30),
        ("ticket_fast", "ticket", 24, 120),
        ("ticket_slow", "ticket", 72, 360),
    ]


def test_rolling_period_ends_now() -> None:
    now = _ns("2024-03-15T12:00:00")
    start, end, length = period_bounds(WindowSpec("rolling", 28 * DAY), now)
    assert (end - start, end, length) == (28 * 86400 * 10**9, now, 28 * DAY)


@pytest.mark.parametrize(
    ("now", "zone", "start", "hours"),
    [
        # February of a leap year: 29 days.
        ("2024-02-10T08:00:00", "UTC", "2024-02-01T00:00:00", 29 * 24),
        ("2023-02-10T08:00:00", "UTC", "2023-02-01T00:00:00", 28 * 24),
        # Paris springs forward on 31 March 2024: the month has 743 hours; it starts at 23:00 UTC on 29 Feb.
        ("2024-03-31T12:00:00", "Europe/Paris", "2024-03-01T00:00:00", 31 * 24 - 1),
        # ... and falls back on 27 October 2024: 745 hours.
        ("2024-10-27T12:00:00", "Europe/Paris", "2024-10-01T00:00:00", 31 * 24 + 1),
        # New York in November 2024 (DST ends on the 3rd): 30 days + 1 hour.
        ("2024-11-30T23:30:00", "America/New_York", "2024-11-01T00:00:00", 30 * 24 + 1),
        # December rolls over into the next year.
        ("2024-12-31T23:59:00", "Asia/Tokyo", "2024-12-01T00:00:00", 31 * 24),
    ],
)
def test_calendar_month_in_its_time_zone(now: str, zone: str, start: str, hours: int) -> None:
    window = WindowSpec("calendar_month", time_zone=zone)
    got_start, got_end, length = period_bounds(window, _ns(now, zone))
    assert got_start == _ns(start, zone)
    assert length == hours * 3600
    assert got_end - got_start == hours * 3600 * 10**9


def test_calendar_month_boundary_is_local_midnight() -> None:
    window = WindowSpec("calendar_month", time_zone="Europe/Paris")
    # 23:30 UTC on 31 March is already 1 April in Paris: a new month (April: 30 days, no DST change).
    start, _, length = period_bounds(window, _ns("2024-03-31T23:30:00"))
    assert start == _ns("2024-04-01T00:00:00", "Europe/Paris") == _ns("2024-03-31T22:00:00")
    assert length == 30 * 24 * 3600
