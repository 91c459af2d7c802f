"""Canary gate: is the canary worse than the baseline? A verdict with a stated statistical test.

Reads `ImpactQueries` only; its route lives in ``api.gate_routes``.
"""
