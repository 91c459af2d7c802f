"""The on-call dashboard: one page at ``/`` on the admin port, served entirely by the processor.

`config` reads the ``dashboard:`` section (refresh interval, default window, runbook links);
`routes` serves the page, its static files and ``GET /api/v1/dashboard``, the overview the page
starts from (tasks, runbooks, error-budget history). Everything else the page shows comes from
the public JSON API (``/api/v1/impact``, ``/api/v1/slos``, ``/api/v1/customers/top``).
"""

from .config import DashboardConfig, parse_dashboard_section
from .routes import DashboardRoutes, add_routes

__all__ = ["DashboardConfig", "DashboardRoutes", "add_routes", "parse_dashboard_section"]
