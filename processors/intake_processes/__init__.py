"""Several intake processes on the same ports (``serve --workers N``), one answer.

The main process (intake process 0) binds the receivers' ports first, with ``SO_REUSEPORT``,
then starts ``N - 1`` extra intake processes that bind the same ports; the kernel spreads the
senders' connections over them. Each runs receivers, pipeline, forwarders and its own analysis
workers; only the main one runs the admin server, the SLO engine and the shared-state writer.

* analysis: an extra process's results are relayed (``analysis.sink.RelaySink``) and folded by
  the main one into its `SliState` with the same `SliState.apply` as its own;
* metrics: each extra process sends snapshots of its registry; ``/metrics`` sums every series
  over the processes (`metrics.SummedRegistry`), names and labels unchanged;
* state: under ``--state DIR`` extra process ``i`` keeps its queues in ``DIR/intake-<i>``
  (`group.intake_state_dir`); the main one keeps ``DIR`` as a single process does;
* failure: an extra process that exits is restarted with a backoff, logged and counted.

Modules: ``messages`` (what crosses the pipes), ``metrics`` (snapshots and their sum),
``group`` (the main's side), ``child`` (the extra process). Part of the assembly.
"""
