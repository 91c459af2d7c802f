"""A tiny benchmark harness: interleaved rounds, medians, and ratios against a same-run baseline.

The machine is noisy, so absolute times move between runs; the ratio of a candidate to a
baseline measured in the same process, in alternating rounds, is what each benchmark reports.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Case:
    """A named thing to time: ``run(n)`` performs ``n`` operations."""

    name: str
    run: Callable[[int], None]
    samples_us: list[float] = field(default_factory=list)

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples_us)


def measure(
    cases: list[Case],
    *,
    operations: int,
    rounds: int,
    warmup: int = 1,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> None:
    """Time each case ``rounds`` times, interleaved, recording µs per operation. ``clock`` (ns) is
    the wall clock by default; `time.process_time_ns` times this process's CPU instead, which
    does not count the time other processes held the core on a shared machine."""
    for case in cases:
        for _ in range(warmup):
            case.run(operations)
    for _ in range(rounds):
        for case in cases:
            start = clock()
            case.run(operations)
            case.samples_us.append((clock() - start) / operations / 1000)


def paired_ratio(case: Case, base: Case) -> float:
    """Median over rounds of case/baseline, each pair timed back to back: drift cancels out."""
    return statistics.median(c / b for c, b in zip(case.samples_us, base.samples_us, strict=True))


def report(title: str, cases: list[Case], baseline: str, *, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Print a table and return a JSON-ready summary with each case's ratio to ``baseline``."""
    base = next(case for case in cases if case.name == baseline)
    rows = [
        {
            "case": case.name,
            "median_us": round(case.median_us, 3),
            "min_us": round(min(case.samples_us), 3),
            "ratio_to_baseline": round(paired_ratio(case, base), 3),
        }
        for case in cases
    ]
    print(f"\n{title}\n")
    print(f"| case | median µs/op | min µs/op | ratio to `{baseline}` (median of paired rounds) |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row['median_us']:.2f} | {row['min_us']:.2f} | {row['ratio_to_baseline']:.3f}× |")
    load = [round(value, 2) for value in os.getloadavg()]
    print(f"\nload average (1, 5, 15 min) at the end: {load}")
    summary = {
        "title": title,
        "baseline": baseline,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "load_average": load,
        "rows": rows,
        **(extra or {}),
    }
    return summary


def write_json(summary: dict[str, Any], path: str | None) -> None:
    if path:
        with open(path, "w") as handle:
            json.dump(summary, handle, indent=2)
