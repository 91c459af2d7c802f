"""Span creation with and without `ImpactSpanProcessor`, in the same run.

Each case starts and ends a span with 10 attributes through ``start_as_current_span``, the way
instrumented code does, inside a request whose customer, tier, one flag and task are set. The
baseline is the bare SDK (no span processor at all); the candidate adds only the
`ImpactSpanProcessor`, which stamps five attributes on each span. Also shown: the same
processor in a context with no impact state (it must cost nearly nothing) and with its fast
path switched off (the public ``Span.set_attributes`` route), and the per-request cost of
``set_customer`` itself (memo hit).

    python benchmarks/bench_span_processor.py [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from _harness import Case, measure, report, write_json
from opentelemetry import context
from opentelemetry.sdk.trace import TracerProvider

import otel_impact
from otel_impact import ImpactSpanProcessor, _span_write
from otel_impact._baggage import context_with_state
from otel_impact._state import ImpactState

ATTRIBUTES = {f"app.attribute.{i}": f"value-{i}" for i in range(8)} | {"http.route": "/checkout", "http.status": 200}


def span_loop(name: str, provider: TracerProvider, ctx: context.Context | None) -> Case:
    tracer = provider.get_tracer("bench")

    def run(n: int) -> None:
        token = context.attach(ctx) if ctx is not None else None
        try:
            for _ in range(n):
                with tracer.start_as_current_span("op", attributes=ATTRIBUTES):
                    pass
        finally:
            if token is not None:
                context.detach(token)

    return Case(name, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few short rounds, to check that it runs")
    parser.add_argument("--json", help="write the summary here")
    args = parser.parse_args()
    operations, rounds = (200, 3) if args.quick else (10_000, 31)

    os.environ.setdefault("OTEL_IMPACT_HASH_KEY", "00" * 32)
    state = ImpactState(customer_hash="0" * 32, tier="pro", flags=(("new_checkout", "on"),), task="checkout")
    enriched = context_with_state(state, context.Context())

    bare = TracerProvider()
    with_processor = TracerProvider()
    with_processor.add_span_processor(ImpactSpanProcessor(trust_incoming_baggage=False))
    public = span_loop("+ processor, public API path", with_processor, enriched)

    def public_path(n: int, run: Callable[[int], None] = public.run) -> None:
        _span_write.FAST_PATH = False  # the processor writes through Span.set_attributes
        try:
            run(n)
        finally:
            _span_write.FAST_PATH = True

    public.run = public_path
    cases = [
        span_loop("bare SDK span", bare, enriched),
        span_loop("+ ImpactSpanProcessor", with_processor, enriched),
        span_loop("+ ImpactSpanProcessor, no impact context", with_processor, context.Context()),
        public,
    ]

    def set_customer_loop(n: int) -> None:
        for _ in range(n):
            otel_impact.set_customer("customer-42", tier="pro").restore()

    cases.append(Case("set_customer() per request (memo hit)", set_customer_loop))
    measure(cases, operations=operations, rounds=rounds)
    summary = report("Span creation cost (10 attributes, start_as_current_span)", cases, "bare SDK span")
    overhead = cases[1].median_us - cases[0].median_us
    ratio = summary["rows"][1]["ratio_to_baseline"]
    print(f"\nImpactSpanProcessor overhead: {overhead:.2f} µs per span ({ratio:.3f}×)")
    summary["overhead_us"] = round(overhead, 3)
    write_json(summary, args.json)


if __name__ == "__main__":
    main()
