"""Where the repository's files are, for tests that read them (README, docs, examples, benchmarks)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository root."""
