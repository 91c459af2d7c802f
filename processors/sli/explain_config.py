"""The ``sli.explain:`` config section: which attributes "what do the failing requests have in
common" compares, and the caps that bound its memory.

Example::

    sli:
      explain:
        attributes: [payment.provider]     # compared besides the built-in candidates
        max_auto_keys: 24
        max_values_per_key: 20
        min_share: 0.01
        passing_per_batch: 16
        pair_sample: 64
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from otel_impact._attributes import IDENTITY_ATTRIBUTES
from otel_impact.processors.config import Fields, Problems

__all__ = ["DISCOVERED_CANDIDATES", "ExplainConfig", "read_explain"]

DISCOVERED_CANDIDATES: Final = (
    "service.version",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.node.name",
    "host.name",
    "http.route",
    "rpc.method",
    "http.response.status_code",
    "error.type",
    "db.system",
    "server.address",
    "peer.service",
)
"""Attributes always compared when events carry them (besides the configured dimensions and flags)."""


@dataclass(frozen=True)
class ExplainConfig:
    """Explain tracking (``sli.explain``): candidates, caps and sampling. See the module docstring.

    ``attributes``: compared besides the dimensions, flags and `DISCOVERED_CANDIDATES`.
    ``auto_discover``: also compare other attributes found on events (at most ``max_auto_keys``);
    one with more than ``max_values_per_key`` distinct values is dropped for good (it is not
    low-cardinality), while a named one folds its further values into ``(other)``.
    ``max_values_per_task``: distinct (attribute, value) pairs per task, the width of each bucket.
    ``min_share``: a value on fewer than this share of a window's failing events is not reported.
    ``passing_per_batch`` and ``passing_sample_rate``: passing events are sampled so that about
    ``passing_per_batch`` of them are kept per analysed result, at a rate of at most
    ``passing_sample_rate``; failing events are all counted, and the intervals use the sampled
    counts. ``pair_sample``: events kept per outcome per time bucket for pairs (0: no pairs).
    ``confidence``: of the intervals shown (the decision is stricter, see `explain`).
    """

    enabled: bool = True
    attributes: tuple[str, ...] = ()
    auto_discover: bool = True
    max_auto_keys: int = 24
    max_values_per_key: int = 20
    max_values_per_task: int = 256
    min_share: float = 0.01
    passing_sample_rate: float = 1.0
    passing_per_batch: int = 16
    pair_sample: int = 64
    confidence: float = 0.95

    def validate(self, problems: Problems, path: str) -> None:
        """Note every problem in ``problems``, naming the field and the fix."""
        for label, value, low, high in (
            ("max_auto_keys", self.max_auto_keys, 0, 64),
            ("max_values_per_key", self.max_values_per_key, 2, 200),
            ("max_values_per_task", self.max_values_per_task, 16, 4096),
            ("pair_sample", self.pair_sample, 0, 256),
            ("passing_per_batch", self.passing_per_batch, 1, 100_000),
        ):
            if not low <= value <= high:
                problems.add(f"{path}.{label}", f"{value} is out of range", f"use {low} to {high}")
        if not 0 < self.passing_sample_rate <= 1:
            problems.add(
                f"{path}.passing_sample_rate",
                f"{self.passing_sample_rate} is out of range",
                "use e.g. 0.25, or 1 for all",
            )
        if not 0.5 <= self.confidence < 1:
            problems.add(f"{path}.confidence", f"{self.confidence} is out of range", "use e.g. 0.95")
        if len(self.attributes) > 64:
            problems.add(f"{path}.attributes", f"{len(self.attributes)} attributes", "name at most 64")
        if len(set(self.attributes)) != len(self.attributes):
            problems.add(f"{path}.attributes", "has duplicates", "list each attribute once")
        for identity in sorted(set(self.attributes) & set(IDENTITY_ATTRIBUTES)):
            problems.add(
                f"{path}.attributes",
                f"{identity} names a person, session or client, and explain never shows such values",
                f"remove {identity}; compare a coarser attribute (a tier, a region) instead",
            )


def read_explain(fields: Fields) -> ExplainConfig:
    """The ``explain`` section as written (defaults for what is left out); problems go to ``fields``."""
    defaults = ExplainConfig()
    config = ExplainConfig(
        enabled=fields.take_bool("enabled", defaults.enabled),
        attributes=fields.take_str_list("attributes", defaults.attributes),
        auto_discover=fields.take_bool("auto_discover", defaults.auto_discover),
        max_auto_keys=fields.take_int("max_auto_keys", defaults.max_auto_keys),
        max_values_per_key=fields.take_int("max_values_per_key", defaults.max_values_per_key),
        max_values_per_task=fields.take_int("max_values_per_task", defaults.max_values_per_task),
        min_share=fields.take_float("min_share", defaults.min_share, minimum=0.0, maximum=0.5),
        passing_sample_rate=fields.take_float(
            "passing_sample_rate", defaults.passing_sample_rate, minimum=0.0, maximum=1.0
        ),
        passing_per_batch=fields.take_int("passing_per_batch", defaults.passing_per_batch),
        pair_sample=fields.take_int("pair_sample", defaults.pair_sample),
        confidence=fields.take_float("confidence", defaults.confidence, minimum=0.5, maximum=1.0, exclusive=True),
    )
    fields.done()
    return config
