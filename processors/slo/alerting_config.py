"""The ``alerting:`` config section: evaluation, guards, impact scoring and alert delivery.

Every field has a default, so ``alerting:`` may be left out (alerts are then evaluated and
served on ``/api/v1/slos`` but sent nowhere). Example (YAML)::

    alerting:
      evaluation_interval: 30s
      alertmanager: {urls: [http://alertmanager:9093]}
      webhooks: [{url: https://hooks.example.com/impact}]
      delivery: {timeout: 5s, initial_backoff: 1s, max_backoff: 30s, max_elapsed: 5m,
                 queue_size: 1000, resend_interval: 1m}
      low_traffic_guard: {min_events: 100, min_bad_events: 3}
      low_budget_page: {enabled: true, burn_rate: 4, budget_remaining_below: 0.25}
      scoring:
        tier_dimension: tier
        tier_weights: {enterprise: 10, pro: 3, free: 1}
        default_tier_weight: 1
        revenue_weight: 0.1
        window: 1h
        top_segments: 3
      severity: {SEV1: 1000, SEV2: 100, SEV3: 10}
      page_at_severity: SEV2
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from otel_impact._exceptions import ConfigurationError

from ._fields import Problems

__all__ = [
    "SEVERITIES",
    "AlertingConfig",
    "DeliveryConfig",
    "LowBudgetPage",
    "LowTrafficGuard",
    "ScoringConfig",
    "SeverityThresholds",
    "WebhookConfig",
    "parse_alerting_section",
]

SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")
"""Impact severities, most severe first."""

_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_FIELDS = (
    "evaluation_interval",
    "alertmanager",
    "webhooks",
    "delivery",
    "low_traffic_guard",
    "low_budget_page",
    "scoring",
    "severity",
    "page_at_severity",
)


@dataclass(frozen=True)
class WebhookConfig:
    """A generic JSON webhook: ``url`` and static ``headers`` (e.g. an auth token; never logged)."""

    url: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DeliveryConfig:
    """How notifications reach receivers.

    Each receiver has its own queue of at most ``queue_size`` distinct alerts (a newer state of
    the same alert replaces the queued one). A failed send is retried with exponential backoff
    from ``initial_backoff`` to ``max_backoff`` (with ±20% jitter) until ``max_elapsed`` has
    passed. Firing alerts are re-sent every ``resend_interval`` so a receiver that lost them, or
    an Alertmanager that restarted, gets them back. All times are in seconds.
    """

    timeout: float = 5.0
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    max_elapsed: float = 300.0
    queue_size: int = 1000
    resend_interval: float = 60.0
    max_batch: int = 64


@dataclass(frozen=True)
class LowTrafficGuard:
    """A burn-rate alert fires only when its long window holds at least ``min_events`` events
    and at least ``min_bad_events`` bad ones, so one failure in ten requests does not page."""

    min_events: int = 100
    min_bad_events: int = 3


@dataclass(frozen=True)
class LowBudgetPage:
    """The source article's rule: page when the burn rate (1h, confirmed over 5m) is above
    ``burn_rate`` while less than ``budget_remaining_below`` of the error budget is left."""

    enabled: bool = True
    burn_rate: float = 4.0
    budget_remaining_below: float = 0.25


@dataclass(frozen=True)
class ScoringConfig:
    """Impact score = sum over tiers of weight(tier) x impacted users of that tier
    + ``revenue_weight`` x revenue at risk.

    The tier is read from the dimension ``tier_dimension``; a tier missing from
    ``tier_weights`` (or a task without that dimension) weighs ``default_tier_weight``. The
    score covers the firing alert's long window, or ``window`` when nothing fires.
    ``top_segments`` segments are listed on alerts.
    """

    tier_dimension: str = "tier"
    tier_weights: tuple[tuple[str, float], ...] = (("enterprise", 10.0), ("pro", 3.0), ("free", 1.0))
    default_tier_weight: float = 1.0
    revenue_weight: float = 0.1
    window: float = 3600.0
    top_segments: int = 3

    def weight(self, tier: str | None) -> float:
        return dict(self.tier_weights).get(tier or "", self.default_tier_weight)


@dataclass(frozen=True)
class SeverityThresholds:
    """Minimum impact score of SEV1, SEV2 and SEV3; anything lower is SEV4."""

    sev1: float = 1000.0
    sev2: float = 100.0
    sev3: float = 10.0

    def classify(self, score: float) -> str:
        if score >= self.sev1:
            return "SEV1"
        if score >= self.sev2:
            return "SEV2"
        if score >= self.sev3:
            return "SEV3"
        return "SEV4"


@dataclass(frozen=True)
class AlertingConfig:
    """The whole ``alerting:`` section; see the module docstring for the YAML shape."""

    evaluation_interval: float = 30.0
    alertmanager_urls: tuple[str, ...] = ()
    webhooks: tuple[WebhookConfig, ...] = ()
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    low_traffic_guard: LowTrafficGuard = field(default_factory=LowTrafficGuard)
    low_budget_page: LowBudgetPage = field(default_factory=LowBudgetPage)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    severity: SeverityThresholds = field(default_factory=SeverityThresholds)
    page_at_severity: str | None = "SEV2"

    def validate(self, path: str = "alerting") -> None:
        problems = Problems()
        if not 1.0 <= self.evaluation_interval <= 3600.0:
            problems.add(f"{path}.evaluation_interval", "must be between 1s and 1h", "use e.g. 30s")
        for index, url in enumerate(self.alertmanager_urls):
            if not _URL.match(url):
                problems.add(f"{path}.alertmanager.urls[{index}]", f"{url!r} is not an http(s) URL", _URL_FIX)
        for index, hook in enumerate(self.webhooks):
            if not _URL.match(hook.url):
                problems.add(f"{path}.webhooks[{index}].url", f"{hook.url!r} is not an http(s) URL", _URL_FIX)
            for name, _ in hook.headers:
                if not _HEADER.match(name):
                    problems.add(f"{path}.webhooks[{index}].headers", f"{name!r} is not a header name", "fix it")
        delivery = self.delivery
        if delivery.initial_backoff > delivery.max_backoff:
            problems.add(f"{path}.delivery.initial_backoff", "is above max_backoff", "lower it or raise max_backoff")
        if delivery.resend_interval < self.evaluation_interval:
            problems.add(
                f"{path}.delivery.resend_interval",
                "is shorter than evaluation_interval",
                "use at least the evaluation interval",
            )
        if not 0 < self.low_budget_page.budget_remaining_below <= 1:
            problems.add(f"{path}.low_budget_page.budget_remaining_below", "must be in (0, 1]", "use e.g. 0.25")
        severity = self.severity
        if not severity.sev1 > severity.sev2 > severity.sev3 >= 0:
            problems.add(
                f"{path}.severity",
                f"thresholds must decrease (SEV1 {severity.sev1:g}, SEV2 {severity.sev2:g}, SEV3 {severity.sev3:g})",
                "give SEV1 the highest score",
            )
        if self.page_at_severity is not None and self.page_at_severity not in SEVERITIES:
            problems.add(f"{path}.page_at_severity", f"unknown severity {self.page_at_severity!r}", _SEV_FIX)
        if not re.match(r"^[a-z_][a-z0-9_]*$", self.scoring.tier_dimension):
            problems.add(f"{path}.scoring.tier_dimension", "not a dimension name", "use e.g. tier")
        problems.raise_if_any()

    @classmethod
    def from_mapping(cls, raw: object, path: str = "alerting") -> AlertingConfig:
        """Build and validate the section from its YAML mapping; raises `ConfigurationErrors`."""
        if raw is None:
            return cls()
        problems = Problems()
        entry = problems.mapping(raw, path, _FIELDS)
        if entry is None:
            problems.raise_if_any()
            raise AssertionError("unreachable")
        config = cls(
            evaluation_interval=problems.duration(entry, "evaluation_interval", path, default=30.0),
            alertmanager_urls=_read_alertmanager(problems, entry.get("alertmanager"), f"{path}.alertmanager"),
            webhooks=_read_webhooks(problems, entry.get("webhooks"), f"{path}.webhooks"),
            delivery=_read_delivery(problems, entry.get("delivery"), f"{path}.delivery"),
            low_traffic_guard=_read_guard(problems, entry.get("low_traffic_guard"), f"{path}.low_traffic_guard"),
            low_budget_page=_read_low_budget(problems, entry.get("low_budget_page"), f"{path}.low_budget_page"),
            scoring=_read_scoring(problems, entry.get("scoring"), f"{path}.scoring"),
            severity=_read_severity(problems, entry.get("severity"), f"{path}.severity"),
            page_at_severity=_read_page_at(problems, entry, path),
        )
        try:
            config.validate(path)
        except ConfigurationError as error:
            problems.extend(error)
        problems.raise_if_any()
        return config


def parse_alerting_section(raw: object, path: str = "alerting") -> AlertingConfig:
    """The ``alerting:`` section (absent means all defaults) -> validated `AlertingConfig`."""
    return AlertingConfig.from_mapping(raw, path)


_URL_FIX = "give the full URL, e.g. http://alertmanager:9093"
_SEV_FIX = "use SEV1, SEV2, SEV3, SEV4, or null to never promote tickets to pages"


def _section(problems: Problems, raw: object, path: str, known: tuple[str, ...]) -> Mapping[str, Any]:
    if raw is None:
        return {}
    return problems.mapping(raw, path, known) or {}


def _read_alertmanager(problems: Problems, raw: object, path: str) -> tuple[str, ...]:
    entry = _section(problems, raw, path, ("urls",))
    return tuple(url.rstrip("/") for url in problems.string_list(entry, "urls", path))


def _read_webhooks(problems: Problems, raw: object, path: str) -> tuple[WebhookConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add(path, "expected a list", "write `webhooks: [{url: https://...}]`")
        return ()
    hooks = []
    for index, item in enumerate(raw):
        where = f"{path}[{index}]"
        entry = problems.mapping(item, where, ("url", "headers"))
        if entry is None:
            continue
        url = problems.string(entry, "url", where, required=True)
        headers = entry.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
            problems.add(f"{where}.headers", "expected a mapping of header name to text", "quote the values")
            headers = {}
        if url:
            hooks.append(WebhookConfig(url=url, headers=tuple((str(k), v) for k, v in headers.items())))
    return tuple(hooks)


def _read_delivery(problems: Problems, raw: object, path: str) -> DeliveryConfig:
    known = ("timeout", "initial_backoff", "max_backoff", "max_elapsed", "queue_size", "resend_interval", "max_batch")
    entry = _section(problems, raw, path, known)
    default = DeliveryConfig()
    return DeliveryConfig(
        timeout=problems.duration(entry, "timeout", path, default=default.timeout, minimum=0.001),
        initial_backoff=problems.duration(
            entry, "initial_backoff", path, default=default.initial_backoff, minimum=0.001
        ),
        max_backoff=problems.duration(entry, "max_backoff", path, default=default.max_backoff, minimum=0.001),
        max_elapsed=problems.duration(entry, "max_elapsed", path, default=default.max_elapsed),
        queue_size=problems.integer(entry, "queue_size", path, default=default.queue_size, minimum=1),
        resend_interval=problems.duration(entry, "resend_interval", path, default=default.resend_interval),
        max_batch=problems.integer(entry, "max_batch", path, default=default.max_batch, minimum=1),
    )


def _read_guard(problems: Problems, raw: object, path: str) -> LowTrafficGuard:
    entry = _section(problems, raw, path, ("min_events", "min_bad_events"))
    default = LowTrafficGuard()
    return LowTrafficGuard(
        min_events=problems.integer(entry, "min_events", path, default=default.min_events),
        min_bad_events=problems.integer(entry, "min_bad_events", path, default=default.min_bad_events),
    )


def _read_low_budget(problems: Problems, raw: object, path: str) -> LowBudgetPage:
    entry = _section(problems, raw, path, ("enabled", "burn_rate", "budget_remaining_below"))
    default = LowBudgetPage()
    burn = problems.number(entry, "burn_rate", path, default=default.burn_rate, minimum=0, exclusive=True)
    below = problems.number(entry, "budget_remaining_below", path, default=default.budget_remaining_below)
    return LowBudgetPage(
        enabled=problems.boolean(entry, "enabled", path, default=default.enabled),
        burn_rate=burn if burn is not None else default.burn_rate,
        budget_remaining_below=below if below is not None else default.budget_remaining_below,
    )


def _read_scoring(problems: Problems, raw: object, path: str) -> ScoringConfig:
    known = ("tier_dimension", "tier_weights", "default_tier_weight", "revenue_weight", "window", "top_segments")
    entry = _section(problems, raw, path, known)
    default = ScoringConfig()
    weights = default.tier_weights
    raw_weights = entry.get("tier_weights")
    if raw_weights is not None:
        valid = isinstance(raw_weights, Mapping) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in raw_weights.values()
        )
        if not valid:
            problems.add(f"{path}.tier_weights", "expected tier: weight (>= 0) pairs", "write `{enterprise: 10}`")
        else:
            weights = tuple((str(k), float(v)) for k, v in raw_weights.items())
    default_weight = problems.number(entry, "default_tier_weight", path, default=default.default_tier_weight, minimum=0)
    revenue = problems.number(entry, "revenue_weight", path, default=default.revenue_weight, minimum=0)
    return ScoringConfig(
        tier_dimension=problems.string(entry, "tier_dimension", path) or default.tier_dimension,
        tier_weights=weights,
        default_tier_weight=default_weight if default_weight is not None else default.default_tier_weight,
        revenue_weight=revenue if revenue is not None else default.revenue_weight,
        window=problems.duration(entry, "window", path, default=default.window, minimum=300.0),
        top_segments=problems.integer(entry, "top_segments", path, default=default.top_segments),
    )


def _read_severity(problems: Problems, raw: object, path: str) -> SeverityThresholds:
    entry = _section(problems, raw, path, ("SEV1", "SEV2", "SEV3", "SEV4"))
    if "SEV4" in entry:
        problems.add(f"{path}.SEV4", "SEV4 is every score below SEV3", "remove SEV4; set SEV3's minimum instead")
    default = SeverityThresholds()
    values = [
        problems.number(entry, key, path, default=getattr(default, key.lower()), minimum=0)
        for key in ("SEV1", "SEV2", "SEV3")
    ]
    sev1, sev2, sev3 = (value if value is not None else 0.0 for value in values)
    return SeverityThresholds(sev1=sev1, sev2=sev2, sev3=sev3)


def _read_page_at(problems: Problems, entry: Mapping[str, Any], path: str) -> str | None:
    if "page_at_severity" not in entry:
        return "SEV2"
    value = entry["page_at_severity"]
    if value is None:
        return None
    if not isinstance(value, str):
        problems.add(f"{path}.page_at_severity", f"expected a severity, got {value!r}", _SEV_FIX)
        return None
    return value.upper()
