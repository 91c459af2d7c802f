"""The ``dashboard:`` config section.

    dashboard:
      refresh: 10s            # how often the page refreshes (2s to 10m)
      default_window: 1h      # the window the page opens with
      min_attribution: 95%    # warn when fewer task events carry the customer (0% to 100%)
      runbooks:               # links shown next to a task
        checkout: https://runbooks.example.com/checkout
        search:
          - {title: Search runbook, url: https://runbooks.example.com/search}

SLOs' own ``runbook`` links are shown too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from otel_impact.processors.config import Fields, Problems, join
from otel_impact.processors.durations import parse_window

MIN_REFRESH_S = 2.0
MAX_REFRESH_S = 600.0


@dataclass(frozen=True)
class Runbook:
    title: str
    url: str


@dataclass(frozen=True)
class DashboardConfig:
    """Validated ``dashboard:`` section."""

    refresh_seconds: float = 10.0
    default_window: str = "1h"
    min_attribution: float = 0.95
    """Below this share of task events carrying the customer, a task card warns that impacted
    users are undercounted."""
    runbooks: dict[str, tuple[Runbook, ...]] = field(default_factory=dict)


def parse_dashboard_section(raw: object, path: str, problems: Problems) -> DashboardConfig:
    """Read the section (``None`` gives the defaults), noting every problem in ``problems``."""
    fields = Fields(raw, path, problems)
    refresh = fields.take_duration("refresh", DashboardConfig.refresh_seconds)
    if not MIN_REFRESH_S <= refresh <= MAX_REFRESH_S:
        fields.report("refresh", f"{refresh:g}s is out of range", "use 2s to 10m, e.g. 10s")
    window = fields.take_str("default_window", DashboardConfig.default_window)
    try:
        parse_window(window)
    except ValueError as error:
        fields.report("default_window", str(error), "use e.g. 1h")
    min_attribution = fields.take_share(
        "min_attribution", DashboardConfig.min_attribution, fix="write a percentage such as 95% (or 0.95)"
    )
    runbooks_raw = fields.take("runbooks") or {}
    runbooks: dict[str, tuple[Runbook, ...]] = {}
    if not isinstance(runbooks_raw, dict):
        fields.report("runbooks", "expected a mapping of task to link", "write task: URL")
    else:
        for task, value in runbooks_raw.items():
            runbooks[str(task)] = _runbooks(fields, value, join(fields.at("runbooks"), str(task)))
    fields.done()
    return DashboardConfig(
        refresh_seconds=refresh, default_window=window, min_attribution=min_attribution, runbooks=runbooks
    )


def _runbooks(fields: Fields, value: Any, path: str) -> tuple[Runbook, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for index, item in enumerate(items):
        where = join(path, index) if isinstance(value, list) else path
        if isinstance(item, str):
            title, url = "runbook", item
        elif isinstance(item, dict) and isinstance(item.get("url"), str) and set(item) <= {"title", "url"}:
            title, url = str(item.get("title") or "runbook"), item["url"]
        else:
            fields.problems.add(where, f"expected a URL or {{title, url}}, got {item!r}", "write the link's URL")
            continue
        if urlsplit(url).scheme not in ("http", "https"):
            fields.problems.add(where, f"{url!r} is not an http(s) URL", "give the full URL, e.g. https://...")
            continue
        out.append(Runbook(title, url))
    return tuple(out)
