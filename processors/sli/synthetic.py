"""Synthetic traffic apart: which task events are probes, and handing them to their own state.

A span is synthetic when it, or its resource, carries ``impact.synthetic=true`` (bool, or the
string ``"true"``) or the semantic convention ``user_agent.synthetic.type`` (any value: ``bot``,
``test``). Synthetic task events never reach the real-user `SliState`: the analyzer hands them
to a `SyntheticSplit`, which gathers them into small batches of their own for the analyzer of
the *synthetic* state (same config, tiers and caps). Real-user SLIs, budgets, SLOs, alerts,
impacted users and revenue read only the real state, so they cannot see a probe by construction;
the synthetic SLI is answered from the synthetic state (``GET /api/v1/impact?traffic=synthetic``).

Cost on the hot path: a real task event pays two map membership tests; a synthetic resource is
decided once (the analyzer memoises it with the resource's other values) and handed over whole.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple, cast

from otel_impact._attributes import SYNTHETIC, USER_AGENT_SYNTHETIC_TYPE
from otel_impact.processors.batch import TraceBatch

__all__ = [
    "SYNTHETIC",
    "SYNTHETIC_TRUE_ENCODINGS",
    "USER_AGENT_SYNTHETIC_TYPE",
    "SyntheticSplit",
    "is_synthetic",
]

SYNTHETIC_TRUE_ENCODINGS: Final = (b"\x10\x01", b"\x0a\x04true")
"""How ``impact.synthetic=true`` looks on the wire (undecoded AnyValue: bool, or string)."""


def is_synthetic(attributes: Any) -> bool:
    """Whether a view attribute map (a span's or a resource's) marks synthetic traffic."""
    if USER_AGENT_SYNTHETIC_TYPE in attributes:
        return True
    return SYNTHETIC in attributes and attributes[SYNTHETIC] in SYNTHETIC_TRUE_ENCODINGS


class _Scope(NamedTuple):
    scope: Any
    """The original scope's undecoded bytes (task matches by ``scope_name`` read them)."""
    spans: list[Any]


class _ResourceSpans(NamedTuple):
    resource: Any
    scope_spans: list[_Scope]


class _View(NamedTuple):
    resource_spans: list[_ResourceSpans]


class SyntheticSplit:
    """Gathers one analysis call's synthetic spans into batches of their own.

    The analyzer calls `hold_resource` (a whole synthetic resource) or `hold_span` while it walks
    a batch, `close_batch` at the end of that batch, and `take` once all batches are walked.
    The held spans are the original view objects (nothing is copied), under their original
    resource and scope, so `take`'s batches must be analysed before the parsed requests are
    dropped: within the same analysis call.
    """

    __slots__ = ("_batches", "_resources", "_spans")

    def __init__(self) -> None:
        self._batches: list[TraceBatch] = []
        self._resources: dict[int, tuple[Any, _ResourceSpans, dict[int, tuple[Any, _Scope]]]] = {}
        """By ``id`` of the view's resource, held with it and its held scopes (by ``id`` of the
        view's scope, held with it), so that no id is reused meanwhile."""
        self._spans = 0

    def hold_resource(self, resource_spans: Any) -> None:
        """Hold every span of ``resource_spans`` (a resource marked synthetic)."""
        for scope_spans in resource_spans.scope_spans:
            if scope_spans.spans:
                self._scope(resource_spans, scope_spans).spans.extend(scope_spans.spans)
                self._spans += len(scope_spans.spans)

    def hold_span(self, resource_spans: Any, scope_spans: Any, span: Any) -> bool:
        """Hold ``span`` (of ``scope_spans`` in ``resource_spans``) when its attributes mark it
        synthetic; False (nothing held) otherwise."""
        if not is_synthetic(span.attributes):
            return False
        self._scope(resource_spans, scope_spans).spans.append(span)
        self._spans += 1
        return True

    def _scope(self, resource_spans: Any, scope_spans: Any) -> _Scope:
        entry = self._resources.get(id(resource_spans))
        if entry is None:
            entry = self._resources[id(resource_spans)] = (
                resource_spans,
                _ResourceSpans(resource_spans.resource, []),
                {},
            )
        _, held_resource, scopes = entry
        held = scopes.get(id(scope_spans))
        if held is None:
            held = scopes[id(scope_spans)] = (scope_spans, _Scope(scope_spans.scope, []))
            held_resource.scope_spans.append(held[1])
        return held[1]

    def close_batch(self, batch: TraceBatch) -> None:
        """End of ``batch``: what was held from it becomes one synthetic batch (same arrival time)."""
        if not self._resources:
            return
        view = _View([held for _, held, _ in self._resources.values()])
        self._batches.append(
            TraceBatch(
                data=b"",
                view=cast(Any, view),
                span_count=self._spans,
                received_ns=batch.received_ns,
                transport=batch.transport,
            )
        )
        self._resources = {}
        self._spans = 0

    def take(self) -> list[TraceBatch]:
        """The synthetic batches gathered since the last call (and forget them)."""
        batches, self._batches = self._batches, []
        self._resources = {}
        self._spans = 0
        return batches
