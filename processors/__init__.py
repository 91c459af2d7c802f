"""The impact processor (``otel-impact serve``), imported as ``otel_impact.processors``.

Data flows one way through the stages, each a package with one job::

    intake  →  pipeline  →  export                 OTLP in, accounted, forwarded downstream
                  │
                  └─→  sli  →  slo                  derived answers: SLIs, then SLOs and alerts
                        analysis                    SLI analysis in worker processes, off intake
                               gate, postmortem     on-call answers built on the two
                               shared               one answer across replicas, through Redis
    api                                             the admin HTTP server: JSON, /metrics, dashboard
    serve_config, service, components, cli          assembly: build the stages and run them
    intake_processes                                ... in several intake processes (serve --workers)

- ``intake``: OTLP/gRPC and OTLP/HTTP receivers, OTLP/JSON decoding, rejection → status mapping.
- ``pipeline``: per request, accounting, identity rewriting, then hand-off to analysis and export.
- ``export``: the bounded queue, downstream clients, which answers to retry, OTLP metrics export.
- ``sli``: per task, segment and time bucket state, its analyzer, its store and its queries.
- ``analysis``: the shared-memory hand-off to analysis worker processes and their results.
- ``slo``: SLO evaluation, the alert state machine, alert delivery and Prometheus rules.
- ``gate``, ``postmortem``: the canary verdict and incident summaries over `ImpactQueries`.
- ``shared``: deltas flushed to Redis, queries over the shared state, the leader lease.
- ``api``: the admin server and every route; the only place answers become JSON.
- ``intake_processes`` (assembly): extra intake processes sharing the receivers' ports, their
  analysis results relayed to the main process and their metrics summed into its ``/metrics``.

Shared foundations sit at this level: ``clock``, ``durations``, ``batch`` (what an analyzer
receives), ``impact_queries`` (the typed contract between the SLI state and its readers),
``accounting``, ``security``, ``periodic`` (work every few seconds on the event loop),
``child_processes`` (how analysis workers and extra intake processes are started),
``proportions`` (Wilson and Newcombe intervals: the canary gate's verdict and explain's findings),
``retry`` (the one backoff and ``Retry-After`` policy, used by span
forwarding and alert delivery), ``traffic`` (real users or synthetic probes: which traffic an
answer covers) and ``config`` (the reading and checking of config values).

Import rule: a stage imports the foundations and the stages to its left or above it in the
picture, never one to its right or below it; nothing imports ``api`` but the assembly, and the
SDK (``otel_impact`` itself, ``otel_impact.instrumentation``) never imports the processor.
``tests/unit/test_import_graph.py`` enforces the rule and the absence of import circles.
"""
