"""The package's shape: public names, layout, and what is importable."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import otel_impact

PUBLIC = {
    "BrowserIdentity",
    "ConfigurationError",
    "ConfigurationErrors",
    "ContextScope",
    "HashKey",
    "HashKeyError",
    "ImpactResourceDetector",
    "ImpactSpanProcessor",
    "OtelImpactError",
    "PiiGuardSpanExporter",
    "Pseudonymizer",
    "SdkSettings",
    "TaskHandle",
    "__version__",
    "browser_identity",
    "configure",
    "current_task",
    "impact_resource",
    "is_pseudonym",
    "load_hash_key",
    "set_customer",
    "set_feature_flag",
    "user_task",
}


def test_exported_members() -> None:
    assert set(otel_impact.__all__) == PUBLIC
    public_attributes = {name for name in dir(otel_impact) if not name.startswith("_")}
    public_attributes -= {"version", "cli", "instrumentation", "processors", "proto"}  # subpackages and modules
    assert public_attributes <= PUBLIC


def test_typed_marker_is_installed() -> None:
    spec = importlib.util.find_spec("otel_impact")
    assert spec is not None and spec.origin is not None
    assert (Path(spec.origin).parent / "py.typed").exists()
