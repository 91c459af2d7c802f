"""Part of otel-impact; imported as otel_impact.processors."""
