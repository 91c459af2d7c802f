"""The ``analysis:`` config section: where SLI analysis runs.

::

    analysis:
      workers: 1            # analysis worker processes; 0 analyses on the intake event loop
      buffer: 64MiB         # shared-memory ring per worker: batches waiting for analysis
      catch_up_timeout: 1s  # how long an admin request waits for analysis to catch up

``serve --analysis-workers N`` and ``OTEL_IMPACT_ANALYSIS_WORKERS`` set ``workers``.

With workers, the intake process only copies each batch's task spans into a ring and reads the
results back. A batch that finds its ring full is forwarded but not analysed (counted, and the
answers for that time say so), so ``buffer`` sets how large a burst analysis can fall behind by
without losing any of it. Each admin request first waits (at most ``catch_up_timeout``) for the
batches accepted before it to be analysed, so an answer includes every span accepted before it
was asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from otel_impact.processors.config import Fields, Problems

__all__ = ["DEFAULT_WORKERS", "MAX_WORKERS", "AnalysisConfig", "parse_analysis_section"]

DEFAULT_WORKERS: Final = 1
MAX_WORKERS: Final = 64
DEFAULT_BUFFER_BYTES: Final = 64 << 20
MIN_BUFFER_BYTES: Final = 1 << 20
MAX_BUFFER_BYTES: Final = 16 << 30
DEFAULT_CATCH_UP_TIMEOUT_S: Final = 1.0


@dataclass(frozen=True)
class AnalysisConfig:
    """Where SLI analysis runs (see the module docstring)."""

    workers: int = DEFAULT_WORKERS
    buffer_bytes: int = DEFAULT_BUFFER_BYTES
    catch_up_timeout_s: float = DEFAULT_CATCH_UP_TIMEOUT_S

    def validate(self, problems: Problems, path: str) -> None:
        if not 0 <= self.workers <= MAX_WORKERS:
            problems.add(
                f"{path}.workers",
                str(self.workers),
                f"use 0 (analyse on the intake loop) to {MAX_WORKERS}; one per spare core is plenty",
            )
        if not MIN_BUFFER_BYTES <= self.buffer_bytes <= MAX_BUFFER_BYTES:
            problems.add(f"{path}.buffer", f"{self.buffer_bytes} bytes", "use 1MiB to 16GiB (default 64MiB)")
        if not 0 <= self.catch_up_timeout_s <= 60:
            problems.add(f"{path}.catch_up_timeout", f"{self.catch_up_timeout_s:g}s", "use 0s to 60s (default 1s)")


def parse_analysis_section(raw: object, path: str, problems: Problems) -> AnalysisConfig:
    """Read ``analysis:`` (a mapping; absent means the defaults)."""
    fields = Fields(raw, path, problems)
    config = AnalysisConfig(
        workers=fields.take_int("workers", DEFAULT_WORKERS),
        buffer_bytes=fields.take_size("buffer", DEFAULT_BUFFER_BYTES),
        catch_up_timeout_s=fields.take_duration("catch_up_timeout", DEFAULT_CATCH_UP_TIMEOUT_S),
    )
    fields.done()
    config.validate(problems, path)
    return config
