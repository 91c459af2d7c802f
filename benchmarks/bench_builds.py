"""The full path of this checkout against another build of otel-impact, interleaved in one run.

Some costs cannot be switched off by config (what every task event now records: pipeline lag,
attribution, the synthetic split), so their price is measured against the build before them:
two ``otel-impact serve`` processes, one per build, identical config (the SLI workload's 3 tasks
and 3 dimensions, one analysis worker, forwarding to a raw gRPC server of their own), fed the
realistic mix by ``bench_forward.py``'s load generator in interleaved rounds. With
``--also-off KEY`` a third case runs this build with ``sli.KEY: {enabled: false}`` (a feature
that config can switch off, e.g. ``propagation``).

Reported per case: accepted spans/s, intake and analysis-worker CPU per span, each as the median
of per-round ratios to the baseline build.

The baseline build is any install of otel-impact with the processor extra, e.g. of the commit
before a change::

    git worktree add ../otel-impact-base <commit>
    python3 -m venv ../otel-impact-base/.venv
    ../otel-impact-base/.venv/bin/pip install -c constraints.txt -e '../otel-impact-base[processor]'
    .venv/bin/python benchmarks/bench_builds.py --baseline-cli ../otel-impact-base/.venv/bin/otel-impact

    python benchmarks/bench_builds.py --baseline-cli PATH [--also-off propagation] [--quick]
        [--rounds N] [--duration S] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Any

import bench_forward as forward
from _harness import write_json
from _workload import SLI_CONFIG


def config(downstream_port: int, off: str | None) -> str:
    sli: dict[str, Any] = dict(SLI_CONFIG)
    if off is not None:
        sli[off] = {"enabled": False}
    return f"sli: {json.dumps(sli)}\nanalysis: {{workers: 1}}\nexporters:\n  - endpoint: grpc://127.0.0.1:{downstream_port}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-cli", required=True, help="the otel-impact command of the baseline build")
    parser.add_argument("--also-off", metavar="KEY", help="a third case: this build with sli.KEY switched off")
    parser.add_argument("--quick", action="store_true", help="short rounds, to check that it runs")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--json", help="write the summary here")
    args = parser.parse_args()
    baseline_cli = shutil.which(args.baseline_cli) or args.baseline_cli
    if not os.access(baseline_cli, os.X_OK):
        raise SystemExit(f"--baseline-cli {args.baseline_cli}: not an executable otel-impact command")
    rounds = args.rounds or (1 if args.quick else 7)
    duration = args.duration or (0.6 if args.quick else 5.0)
    warmup = 0.4 if args.quick else 1.5
    requests = 4 if args.quick else 24

    plans: list[tuple[str, str, str | None]] = [
        ("baseline build", baseline_cli, None),
        ("this build", forward.CLI, None),
    ]
    if args.also_off:
        plans.append((f"this build, sli.{args.also_off} off", forward.CLI, args.also_off))
    load_before = os.getloadavg()
    processes: list[subprocess.Popen[str]] = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            targets = []
            for name, cli, off in plans:
                downstream_port, downstream_pid = forward.start_raw_server(processes)
                port, pid, admin = forward.start_serve(config(downstream_port, off), scratch, processes, cli=cli)
                targets.append(forward.Target(name, port, pid, downstream_pid, admin_port=admin))
            intake = forward.measure_rounds(targets, rounds, warmup, duration, requests)
    finally:
        forward.stop_processes(processes)

    base = targets[0]

    def ratio(values: list[float], baseline: list[float]) -> float:
        return statistics.median(v / b for v, b in zip(values, baseline, strict=True) if b)

    print("\n| case | spans/s (median) | throughput vs baseline (min / median / max of rounds) "
          "| intake CPU µs/span (ratio) | analysis CPU µs/span (ratio) | unanalysed |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    rows = []
    for target in targets:
        per_round = [t / b for t, b in zip(target.spans_per_s, base.spans_per_s, strict=True)]
        intake_us = statistics.median(intake[target.name])
        analysis_us = statistics.median(target.analysis_us)
        row = {
            "case": target.name,
            "median_us": round(intake_us, 3),
            "ratio_to_baseline": round(statistics.median(per_round), 3),
            "spans_per_s": round(statistics.median(target.spans_per_s)),
            "throughput_ratio": round(statistics.median(per_round), 3),
            "throughput_ratio_min": round(min(per_round), 3),
            "throughput_ratio_max": round(max(per_round), 3),
            "intake_cpu_us_per_span": round(intake_us, 3),
            "intake_cpu_ratio": round(ratio(intake[target.name], intake[base.name]), 3),
            "analysis_cpu_us_per_span": round(analysis_us, 3),
            "analysis_cpu_ratio": round(ratio(target.analysis_us, base.analysis_us), 3),
            "unanalysed_share": round(statistics.median(target.unanalysed_share), 4),
        }
        rows.append(row)
        print(
            f"| {row['case']} | {row['spans_per_s']:,} | {row['throughput_ratio_min']:.2f} / "
            f"{row['throughput_ratio']:.2f} / {row['throughput_ratio_max']:.2f}× | {intake_us:.2f} "
            f"({row['intake_cpu_ratio']:.2f}×) | {analysis_us:.2f} ({row['analysis_cpu_ratio']:.2f}×) "
            f"| {row['unanalysed_share']:.1%} |"
        )
    feature: dict[str, float] = {}
    if args.also_off:
        on, off = targets[1], targets[2]
        per_round = [a / b for a, b in zip(on.spans_per_s, off.spans_per_s, strict=True)]
        total_on = [i + a for i, a in zip(intake[on.name], on.analysis_us, strict=True)]
        total_off = [i + a for i, a in zip(intake[off.name], off.analysis_us, strict=True)]
        feature = {
            "throughput_ratio": round(statistics.median(per_round), 3),
            "throughput_ratio_min": round(min(per_round), 3),
            "throughput_ratio_max": round(max(per_round), 3),
            "cpu_per_span_ratio": round(ratio(total_on, total_off), 3),
        }
        print(
            f"\nsli.{args.also_off} on vs off (this build): throughput {feature['throughput_ratio_min']:.2f} / "
            f"{feature['throughput_ratio']:.2f} / {feature['throughput_ratio_max']:.2f}× (min / median / max of "
            f"rounds); CPU per span, intake plus analysis worker, {feature['cpu_per_span_ratio']:.2f}×"
        )
    load_after = os.getloadavg()
    print(
        f"\nload average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}; "
        f"{rounds} rounds of {duration} s"
    )
    if args.json:
        write_json(
            {
                "title": "full path, this build against a baseline build",
                "python": sys.version.split()[0],
                "rounds": rounds,
                "duration_s": duration,
                "load_average_before": [round(v, 2) for v in load_before],
                "load_average_after": [round(v, 2) for v in load_after],
                "rows": rows,
                "feature_on_vs_off": feature,
            },
            args.json,
        )


if __name__ == "__main__":
    main()
