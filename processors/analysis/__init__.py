"""Analysis off the intake loop: SLI analysis in worker processes, fed through shared memory.

The intake process receives, accounts, rewrites identities, queues for forwarding and hands each
accepted batch to `AnalysisPool.analyze`. That copies the bytes worth analysing (only the spans
that can be task events, when the compiled pre-filter is available) once into a worker's
shared-memory ring and writes a 32-byte notice on a pipe; it never waits. The worker parses and
analyses the batches it finds (several at a time), and sends back an `AnalysisResult` (the
delta shape of ``sli.results``) that the intake process folds into the one `SliState` the API
answers from, with `SliState.apply`: the same merge path as in-process analysis.

When a ring is full the batch is not analysed: its spans are counted
(``impact_sli_unanalysed_spans_total{reason}``) and the answers for that time say
``telemetry.complete: false`` with the reason; the batch is forwarded all the same. A worker
that dies is restarted; what it held is counted as unanalysed (``worker_restart``).

Results go to a ``sink``: in the process that serves the answers, the engine itself; in an
extra intake process (``serve --workers N``), a relay to that process, which folds what it
receives with the same `SliState.apply`.

Modules: ``settings`` (the ``analysis:`` config section), ``ring`` (the shared-memory ring and
its notices), ``messages`` (what crosses the pipes), ``worker`` (the worker process's loop),
``pool`` (the intake side: hand-off, results, restarts, metrics), ``sink`` (where results go).

Stage rule: imports ``sli`` and the foundations.
"""
