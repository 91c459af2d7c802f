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

from otel_impact.processors.config import Fields, Problems

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
    """The low-budget page: page when the burn rate (1h, confirmed over 5m) is above
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

    def validate(self, problems: Problems, path: str = "alerting") -> None:
        """Note every problem in ``problems``."""
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


def parse_alerting_section(raw: object, path: str, problems: Problems) -> AlertingConfig:
    """The ``alerting:`` section (absent means all defaults) -> validated `AlertingConfig`.

    Notes every problem in ``problems``.
    """
    fields = Fields(raw, path, problems)
    config = AlertingConfig(
        evaluation_interval=fields.take_duration("evaluation_interval", 30.0),
        alertmanager_urls=_read_alertmanager(fields.take_section("alertmanager")),
        webhooks=_read_webhooks(fields),
        delivery=_read_delivery(fields.take_section("delivery")),
        low_traffic_guard=_read_guard(fields.take_section("low_traffic_guard")),
        low_budget_page=_read_low_budget(fields.take_section("low_budget_page")),
        scoring=_read_scoring(fields.take_section("scoring")),
        severity=_read_severity(fields.take_section("severity")),
        page_at_severity=_read_page_at(fields),
    )
    config.validate(problems, path)
    fields.done()
    return config


_URL_FIX = "give the full URL, e.g. http://alertmanager:9093"
_SEV_FIX = "use SEV1, SEV2, SEV3, SEV4, or null to never promote tickets to pages"


def _read_alertmanager(fields: Fields) -> tuple[str, ...]:
    urls = fields.take_str_list("urls", allow_single=True)
    fields.done()
    return tuple(url.rstrip("/") for url in urls)


def _read_webhooks(alerting: Fields) -> tuple[WebhookConfig, ...]:
    hooks = []
    for fields in alerting.take_entries("webhooks", "write `webhooks: [{url: https://...}]`"):
        url = fields.take_str("url", None, if_missing="set `url`")
        headers = fields.take_str_map("headers")
        fields.done()
        if url is not None:
            hooks.append(WebhookConfig(url=url, headers=tuple(headers.items())))
    return tuple(hooks)


def _read_delivery(fields: Fields) -> DeliveryConfig:
    default = DeliveryConfig()
    delivery = DeliveryConfig(
        timeout=fields.take_duration("timeout", default.timeout, minimum=0.001),
        initial_backoff=fields.take_duration("initial_backoff", default.initial_backoff, minimum=0.001),
        max_backoff=fields.take_duration("max_backoff", default.max_backoff, minimum=0.001),
        max_elapsed=fields.take_duration("max_elapsed", default.max_elapsed),
        queue_size=fields.take_int("queue_size", default.queue_size, minimum=1),
        resend_interval=fields.take_duration("resend_interval", default.resend_interval),
        max_batch=fields.take_int("max_batch", default.max_batch, minimum=1),
    )
    fields.done()
    return delivery


def _read_guard(fields: Fields) -> LowTrafficGuard:
    default = LowTrafficGuard()
    guard = LowTrafficGuard(
        min_events=fields.take_int("min_events", default.min_events),
        min_bad_events=fields.take_int("min_bad_events", default.min_bad_events),
    )
    fields.done()
    return guard


def _read_low_budget(fields: Fields) -> LowBudgetPage:
    default = LowBudgetPage()
    page = LowBudgetPage(
        enabled=fields.take_bool("enabled", default.enabled),
        burn_rate=fields.take_float("burn_rate", default.burn_rate, minimum=0, exclusive=True),
        budget_remaining_below=fields.take_float("budget_remaining_below", default.budget_remaining_below),
    )
    fields.done()
    return page


def _read_scoring(fields: Fields) -> ScoringConfig:
    default = ScoringConfig()
    scoring = ScoringConfig(
        tier_dimension=fields.take_str("tier_dimension", default.tier_dimension),
        tier_weights=_read_tier_weights(fields, default.tier_weights),
        default_tier_weight=fields.take_float("default_tier_weight", default.default_tier_weight, minimum=0),
        revenue_weight=fields.take_float("revenue_weight", default.revenue_weight, minimum=0),
        window=fields.take_duration("window", default.window, minimum=300.0),
        top_segments=fields.take_int("top_segments", default.top_segments),
    )
    fields.done()
    return scoring


def _read_tier_weights(fields: Fields, default: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
    raw = fields.take("tier_weights")
    if raw is None:
        return default
    valid = isinstance(raw, Mapping) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in raw.values()
    )
    if not valid:
        fields.report("tier_weights", "expected tier: weight (>= 0) pairs", "write `{enterprise: 10}`")
        return default
    return tuple((str(k), float(v)) for k, v in raw.items())


def _read_severity(fields: Fields) -> SeverityThresholds:
    if fields.has("SEV4"):
        fields.report("SEV4", "SEV4 is every score below SEV3", "remove SEV4; set SEV3's minimum instead")
    default = SeverityThresholds()
    severity = SeverityThresholds(
        sev1=fields.take_float("SEV1", default.sev1, minimum=0),
        sev2=fields.take_float("SEV2", default.sev2, minimum=0),
        sev3=fields.take_float("SEV3", default.sev3, minimum=0),
    )
    fields.done()
    return severity


def _read_page_at(fields: Fields) -> str | None:
    value = fields.take("page_at_severity", "SEV2")  # null: never promote tickets to pages
    if value is not None and not isinstance(value, str):
        fields.report("page_at_severity", f"expected a severity, got {value!r}", _SEV_FIX)
        return None
    return None if value is None else value.upper()
