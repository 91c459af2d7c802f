"""SLOs, error budgets, multiwindow burn-rate alerts, impact scoring and Prometheus rules.

Modules, one concern each:

- ``processors.impact_queries``: the SLI engine's query contract this package consumes
  (`ImpactQueries`, `EventCounts`, `ImpactReport`);
- `config`, `alerting_config`, `settings`: the ``slos:`` and ``alerting:`` config sections;
- `windows`: SLO periods (rolling, calendar month) and the scaled SRE Workbook table;
- `burn`: budgets, burn rates and the multiwindow decision with the low-traffic guard;
- `scoring`: impact score and severity from impacted users by tier and revenue at risk;
- `alerts`, `delivery`: notifications, Alertmanager v2 and webhook delivery off the intake path;
- `evaluate`: one SLO at one instant as a typed `SloEvaluation` (and the budget history);
- `alert_state`: the alert state machine and the alert timeline (`AlertTransition`);
- `render`: evaluations as the ``GET /api/v1/slos`` document and as notifications;
- `engine`: the evaluation loop; `rules`: Prometheus rules;
- `leadership`: the contract by which replicas let one leader evaluate and deliver (implemented
  by the shared-state stage).
"""

from otel_impact import ConfigurationErrors
from otel_impact.processors.impact_queries import EventCounts, ImpactQueries

from .alerting_config import AlertingConfig, parse_alerting_section
from .config import SloConfig, parse_slos_section
from .delivery import AlertDispatcher, receivers_from_config
from .engine import SloEngine
from .rules import generate_rules, render_rules
from .settings import SloSettings, load_slo_settings

__all__ = [
    "AlertDispatcher",
    "AlertingConfig",
    "ConfigurationErrors",
    "EventCounts",
    "ImpactQueries",
    "SloConfig",
    "SloEngine",
    "SloSettings",
    "generate_rules",
    "load_slo_settings",
    "parse_alerting_section",
    "parse_slos_section",
    "receivers_from_config",
    "render_rules",
]
