"""Shared state: many processors (sidecars, replicas) give one answer through Redis.

Stage: between the analysis stages and the assembly. It may import the foundations
(``processors.config``, ``clock``, ``durations``, ``impact_queries``, ``periodic``) and the
SLI and SLO stages; only the assembly (``components``, ``service``, ``serve_config``, the CLI)
imports it.

* ``settings``: the ``shared_state:`` section and the Redis URL;
* ``connection``: the one redis-py client (standalone, TLS or Cluster);
* ``keys``: every key name, in one place;
* ``deltas``: what the SLI engine folded since the last flush, per task, series and minute;
* ``flush``: the writer that applies deltas exactly once per flush, and buffers them while
  Redis is unreachable;
* ``cover``: which time buckets answer a window;
* ``reader``: the queries over the shared state (the `ImpactQueries` contract);
* ``lease`` and ``alert_store``: one replica evaluates SLOs and delivers alerts at a time, with
  the alert state in Redis.
"""
