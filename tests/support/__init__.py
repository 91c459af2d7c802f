"""Shared test helpers (imported as ``support``)."""
