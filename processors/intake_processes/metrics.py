"""One ``/metrics`` for several intake processes: snapshots of their samples, summed into the main's.

An extra intake process sends `take_snapshot` of its registry to the main one every second (and
a last one when it stops). `SummedRegistry` is what the main's admin server exposes: its own
registry's families, each sample plus the same sample (name and labels) of every extra process's
latest snapshot, so every series keeps its name and labels and reads as the sum over the intake
processes. A family only an extra process has is added as it is.

An extra process that dies takes its counters' values with it; `SummedRegistry.retire` keeps
them (counters, histograms and summaries only: their samples only grow), so a sum never goes
down when a process is restarted and counts from zero. Its gauges (queue sizes, backlog) go
with it: a restarted process reports its own, restored queue included.

Series that describe the main process alone (`LOCAL_ONLY`) are never summed. A restarted
process's `CARRIED_OVER` series are left out (`carried_over`): the spans its persistent queue
restores were counted as accepted by its earlier life, whose counters stay in the sum, so
adding them again would break the accounting invariant of the sums.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

__all__ = ["CARRIED_OVER", "LOCAL_ONLY", "FamilySnapshot", "SummedRegistry", "carried_over", "take_snapshot"]

LOCAL_ONLY: Final = frozenset({"otel_impact_ready"})
"""Families the main process answers for alone (readiness is decided over all processes there)."""
CARRIED_OVER: Final = frozenset({"otel_impact_queue_restored_spans"})
"""Families that, for a restarted process, count what its earlier life already counted."""
CUMULATIVE_TYPES: Final = frozenset({"counter", "histogram", "summary", "gaugehistogram"})
"""Types whose samples only grow: a dead process's last values stay in the sum."""

SampleKey = tuple[str, tuple[tuple[str, str], ...]]
"""A sample's name and its labels, sorted."""


@dataclass(frozen=True, slots=True)
class FamilySnapshot:
    """One metric family of an extra intake process, as plain data (pickled to the main process)."""

    name: str
    type: str
    documentation: str
    samples: tuple[tuple[str, tuple[tuple[str, str], ...], float], ...]


def take_snapshot(registry: CollectorRegistry) -> tuple[FamilySnapshot, ...]:
    """Every family of ``registry`` with its samples' current values."""
    return tuple(
        FamilySnapshot(
            metric.name,
            metric.type,
            metric.documentation,
            tuple((s.name, tuple(sorted(s.labels.items())), float(s.value)) for s in metric.samples),
        )
        for metric in registry.collect()
        if metric.name not in LOCAL_ONLY
    )


def carried_over(snapshot: tuple[FamilySnapshot, ...]) -> tuple[FamilySnapshot, ...]:
    """``snapshot`` of a restarted process, without its `CARRIED_OVER` families."""
    return tuple(family for family in snapshot if family.name not in CARRIED_OVER)


@dataclass
class _Sums:
    type: str
    documentation: str
    values: dict[SampleKey, float]


class SummedRegistry(CollectorRegistry):
    """``local``'s families with the extra intake processes' samples added (see the module docstring).

    Only `collect` is this registry's own; register collectors with ``local``.
    """

    def __init__(self, local: CollectorRegistry) -> None:
        super().__init__(auto_describe=False)
        self.local = local
        self._peers: dict[int, tuple[FamilySnapshot, ...]] = {}
        self._retired: dict[str, _Sums] = {}

    def update(self, peer: int, snapshot: tuple[FamilySnapshot, ...]) -> None:
        """``peer``'s latest samples (replacing its previous snapshot)."""
        self._peers[peer] = snapshot

    def retire(self, peer: int) -> None:
        """``peer`` stopped: keep its cumulative samples in the sum, forget its gauges."""
        snapshot = self._peers.pop(peer, ())
        _add(self._retired, (family for family in snapshot if family.type in CUMULATIVE_TYPES))

    def peer_total(self, peer: int, name: str) -> float:
        """The sum of ``peer``'s latest samples named ``name`` (e.g. one counter's ``_total``)."""
        snapshot = self._peers.get(peer, ())
        return sum(value for family in snapshot for sample, _, value in family.samples if sample == name)

    def collect(self) -> Iterable[Metric]:
        extra: dict[str, _Sums] = {
            name: _Sums(s.type, s.documentation, dict(s.values)) for name, s in self._retired.items()
        }
        for snapshot in self._peers.values():
            _add(extra, snapshot)
        for metric in self.local.collect():
            sums = None if metric.name in LOCAL_ONLY else extra.pop(metric.name, None)
            yield metric if sums is None else _merged(metric, sums.values)
        for name, sums in extra.items():
            family = Metric(name, sums.documentation, sums.type)
            family.samples = [Sample(sample, dict(labels), value) for (sample, labels), value in sums.values.items()]
            yield family


def _add(into: dict[str, _Sums], families: Iterable[FamilySnapshot]) -> None:
    for family in families:
        sums = into.get(family.name)
        if sums is None:
            sums = into[family.name] = _Sums(family.type, family.documentation, {})
        values = sums.values
        for sample, labels, value in family.samples:
            key = (sample, labels)
            values[key] = values.get(key, 0.0) + value


def _merged(metric: Metric, add: dict[SampleKey, float]) -> Metric:
    merged = Metric(metric.name, metric.documentation, metric.type, metric.unit)
    seen: set[SampleKey] = set()
    for sample in metric.samples:
        key = (sample.name, tuple(sorted(sample.labels.items())))
        seen.add(key)
        merged.samples.append(sample._replace(value=sample.value + add.get(key, 0.0)))
    for key, value in add.items():
        if key not in seen:
            merged.samples.append(Sample(key[0], dict(key[1]), value))
    return merged
