"""Prometheus recording and alerting rules for the configured SLOs.

The rules read the SLI engine's ``/metrics`` series (``impact_task_events_total`` and
``impact_task_latency_met_total``), summed across replicas and grouped by ``task`` and the
SLO's ``by`` dimensions, so each segment gets its own budget and alerts. Per SLO, one group:

- ``impact_slo:events:increase<w>`` and ``impact_slo:bad_events:increase<w>`` for every
  burn-rate window (5m, 30m, 1h, 2h, 6h, 1d, 3d) and the period;
- ``impact_slo:burn_rate:<w>`` = bad / events / error budget, per window;
- ``impact_slo:error_budget_remaining:ratio`` over the period and ``impact_slo:objective:ratio``;
- alert ``ImpactSLOBurnRate`` with ``severity: page`` (1h/5m and 6h/30m, and the
  low-budget page) and with ``severity: ticket`` (1d/2h and 3d/6h, unless the page fires), each
  condition gated by the low-traffic guard (minimum events and bad events in its long window).

Thresholds are those of `windows.BurnRule.threshold`. PromQL has no time zones or calendar
ranges, so for a calendar-month SLO the rules scale thresholds by the UTC month's length
(``days_in_month()``) and compute the remaining budget over the last 30 days; the processor's
``/api/v1/slos`` has the exact calendar figures.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from .alerting_config import AlertingConfig
from .alerts import ALERT_NAME
from .config import SloConfig
from .windows import BURN_WINDOWS, DAY, WORKBOOK_RULES, BurnRule, window_name

__all__ = ["generate_rules", "render_rules"]

EVENTS = "impact_task_events_total"
LATENCY_MET = "impact_task_latency_met_total"


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def threshold_regex(seconds: float) -> str:
    """A regex matching the ``threshold`` label however the number is written (0.3, 1, 1.0)."""
    forms = {repr(float(seconds)), format(seconds, "g")}
    if float(seconds).is_integer():
        forms.add(str(int(seconds)))
    return "|".join(re.escape(form) for form in sorted(forms))


def _period_name(slo: SloConfig) -> str:
    return slo.window.label if slo.window.kind == "rolling" else "30d"


def _threshold(rule: BurnRule, slo: SloConfig) -> str:
    if slo.window.kind == "rolling":
        return f"{rule.threshold(slo.window.rolling_seconds):g}"
    per_day = rule.budget_percent * DAY / (100.0 * rule.long)
    return f"scalar(clamp_min(days_in_month() * {per_day:g}, 1))"


class _SloRules:
    def __init__(self, slo: SloConfig, alerting: AlertingConfig) -> None:
        self.slo = slo
        self.alerting = alerting
        self.grouping = ", ".join(("task", *slo.by))
        self.selector = f"{{slo={_quote(slo.name)}}}"
        self.budget = f"{slo.error_budget:g}"

    def _sum(self, metric: str, matchers: str, window: str) -> str:
        return f"sum by ({self.grouping}) (increase({metric}{{{matchers}}}[{window}]))"

    def counts(self, window: str) -> list[dict[str, Any]]:
        task = f"task={_quote(self.slo.task)}"
        events = self._sum(EVENTS, task, window)
        if self.slo.sli.kind == "success_ratio":
            bad = self._sum(EVENTS, f'{task}, outcome="bad"', window)
            bad_expr = f"{bad}\nor\n0 * {events}"
        else:
            assert self.slo.sli.threshold_seconds is not None
            regex = threshold_regex(self.slo.sli.threshold_seconds)
            met = self._sum(LATENCY_MET, f"{task}, threshold=~{_quote(regex)}", window)
            bad_expr = f"{events}\n-\n(\n  {met}\n  or\n  0 * {events}\n)"
        labels = {"slo": self.slo.name}
        return [
            {"record": f"impact_slo:events:increase{window}", "expr": events, "labels": labels},
            {"record": f"impact_slo:bad_events:increase{window}", "expr": bad_expr, "labels": labels},
        ]

    def burn_rate(self, window: str) -> dict[str, Any]:
        s = self.selector
        return {
            "record": f"impact_slo:burn_rate:{window}",
            "expr": (
                f"impact_slo:bad_events:increase{window}{s}\n/\nimpact_slo:events:increase{window}{s}\n/ {self.budget}"
            ),
            "labels": {"slo": self.slo.name},
        }

    def guard(self, long: str) -> str:
        guard = self.alerting.low_traffic_guard
        s = self.selector
        return (
            f"impact_slo:events:increase{long}{s} >= {guard.min_events}\n"
            f"  and impact_slo:bad_events:increase{long}{s} >= {guard.min_bad_events}"
        )

    def condition(self, long: str, short: str, threshold: str) -> str:
        s = self.selector
        return (
            f"(\n  impact_slo:burn_rate:{long}{s} > {threshold}\n"
            f"  and impact_slo:burn_rate:{short}{s} > {threshold}\n"
            f"  and {self.guard(long)}\n)"
        )

    def page_expr(self) -> str:
        rules = [r for r in WORKBOOK_RULES if r.severity == "page"]
        parts = [self.condition(window_name(r.long), window_name(r.short), _threshold(r, self.slo)) for r in rules]
        low = self.alerting.low_budget_page
        if low.enabled:
            s = self.selector
            parts.append(
                f"(\n  impact_slo:burn_rate:1h{s} > {low.burn_rate:g}\n"
                f"  and impact_slo:burn_rate:5m{s} > {low.burn_rate:g}\n"
                f"  and impact_slo:error_budget_remaining:ratio{s} < {low.budget_remaining_below:g}\n"
                f"  and {self.guard('1h')}\n)"
            )
        return "\nor\n".join(parts)

    def ticket_expr(self) -> str:
        rules = [r for r in WORKBOOK_RULES if r.severity == "ticket"]
        parts = [self.condition(window_name(r.long), window_name(r.short), _threshold(r, self.slo)) for r in rules]
        return "(\n" + "\nor\n".join(parts) + "\n)\nunless\n(\n" + self.page_expr() + "\n)"

    def alert(self, severity: str, expr: str) -> dict[str, Any]:
        slo = self.slo
        labels = {"severity": severity, "slo": slo.name, **slo.routing_labels()}
        segment = "".join(f" {name}={{{{ $labels.{name} }}}}" for name in slo.by)
        annotations = {
            "summary": f'{slo.name}{segment}: error budget burning {{{{ $value | printf "%.1f" }}}}x',
            "description": (
                f"SLO {slo.objective:g}% {slo.sli.describe()} for task {slo.task} over {slo.window.label}: "
                f"the error budget is burning fast enough to {'page' if severity == 'page' else 'open a ticket'}."
            ),
        }
        if slo.runbook:
            annotations["runbook_url"] = slo.runbook
        return {"alert": ALERT_NAME, "expr": expr, "labels": labels, "annotations": annotations}

    def group(self) -> dict[str, Any]:
        slo = self.slo
        period = _period_name(slo)
        rules: list[dict[str, Any]] = []
        for window in (*(window_name(w) for w in BURN_WINDOWS), period):
            if window == period and period in (window_name(w) for w in BURN_WINDOWS):
                continue
            rules.extend(self.counts(window))
        rules.extend(self.burn_rate(window_name(w)) for w in BURN_WINDOWS)
        s = self.selector
        rules.append(
            {
                "record": "impact_slo:error_budget_remaining:ratio",
                "expr": (
                    f"1 - (\n  impact_slo:bad_events:increase{period}{s}\n"
                    f"  / impact_slo:events:increase{period}{s}\n) / {self.budget}"
                ),
                "labels": {"slo": slo.name},
            }
        )
        rules.append(
            {
                "record": "impact_slo:objective:ratio",
                "expr": f"vector({slo.objective / 100:g})",
                "labels": {"slo": slo.name, "task": slo.task},
            }
        )
        rules.append(self.alert("page", self.page_expr()))
        rules.append(self.alert("ticket", self.ticket_expr()))
        return {"name": f"otel-impact-slo-{slo.name}", "rules": rules}


def generate_rules(slos: tuple[SloConfig, ...], alerting: AlertingConfig) -> dict[str, Any]:
    """The rule file as a mapping: ``{"groups": [...]}``, one group per SLO."""
    return {"groups": [_SloRules(slo, alerting).group() for slo in slos]}


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_rules(slos: tuple[SloConfig, ...], alerting: AlertingConfig, *, source: str = "") -> str:
    """The rule file as YAML text, with a header naming its source."""
    header = "# Prometheus rules generated by `otel-impact rules`"
    header += f" from {source}" if source else ""
    header += ". Do not edit: regenerate.\n"
    body = yaml.dump(generate_rules(slos, alerting), Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
    return header + body
