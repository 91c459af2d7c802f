"""The instrumentation package's public names, and the entry points it does (and does not) take."""

from __future__ import annotations

import dataclasses
from importlib.metadata import distribution

import otel_impact.instrumentation as instrumentation
from otel_impact._state import ImpactState
from otel_impact.instrumentation.auto import INSTRUMENTATION_NAME, ImpactInstrumentor, pre_instrument


def test_exported_members() -> None:
    assert set(instrumentation.__all__) == {
        "Attribution",
        "AutoInstrumentationStatus",
        "ExtractionSettings",
        "ImpactInstrumentor",
        "IncomingRequest",
        "RequestExtractor",
        "status",
    }


def test_entry_points_leave_the_distro_and_configurator_slots_to_the_user() -> None:
    groups = {(ep.group, ep.name): ep for ep in distribution("otel-impact").entry_points}
    assert groups[("opentelemetry_pre_instrument", "otel_impact")].load() is pre_instrument
    assert groups[("opentelemetry_instrumentor", INSTRUMENTATION_NAME)].load() is ImpactInstrumentor
    taken = {group for group, _ in groups}
    assert "opentelemetry_distro" not in taken and "opentelemetry_configurator" not in taken


def test_with_customer_carries_every_other_field_of_the_state() -> None:
    state = ImpactState(customer_hash="a" * 32, tier="pro", flags=(("f", "on"),), task="checkout", synthetic=True)
    changed = state.with_customer("b" * 32, "free")
    carried = {f.name for f in dataclasses.fields(ImpactState) if f.init} - {"customer_hash", "tier"}
    assert carried == {"flags", "task", "task_handle", "synthetic"}  # a new field must be added to with_customer
    assert all(getattr(changed, name) == getattr(state, name) for name in carried)
    assert (changed.customer_hash, changed.tier) == ("b" * 32, "free")
