"""Shared state: many processors (sidecars, replicas) give one answer through Redis.

Stage: between the analysis stages and the assembly. It may import the foundations
(``processors.config``, ``clock``, ``durations``, ``impact_queries``, ``periodic``) and the
SLI and SLO stages; only the assembly (``components``, ``service``, ``serve_config``, the CLI)
imports it.

* ``settings``: the ``shared_state:`` section and the Redis URL;
* ``connection``: the one redis-py client (standalone, TLS or Cluster);
* ``keys``: every key name, in one place;
* ``encode``: a task's deltas (``sli.deltas``, the SLI engine's folded groups since the last
  flush) as flushes: the keys they touch and the operations of the apply script;
* ``flush``: the writer that applies deltas exactly once per flush, and buffers them while
  Redis is unreachable;
* ``cover``: which time buckets answer a window;
* ``reader``: the queries over the shared state (the `ImpactQueries` contract), and
  ``figures``: what a report says of the sums and estimates Redis returns;
* ``answers``: routes ask Redis off the event loop, and this replica's own state, flagged, when
  Redis cannot answer;
* ``lease``, ``alert_store`` and ``leadership``: one replica evaluates SLOs and delivers alerts
  at a time, with the alert state in Redis;
* ``runtime``: the whole inside ``serve``: buffer, writer thread, queries, ``/readyz`` line and
  ``/metrics`` series.
"""
