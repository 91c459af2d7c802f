"""The SLI engine: a `BatchAnalyzer` that turns task spans into per-segment SLI state.

`SliEngine` composes three parts and drives their housekeeping:

* `SliState` (``state.py``): tasks, series, buckets and counters, and the methods that change
  their shape;
* `SliAnalyzer` (``analyzer.py``): the hot loop, ``analyze(batch)``, and its bounded caches;
* `StateStore` (``store.py``): the SQLite checkpoint, which reads and writes `StateSnapshot`
  records and never calls back into the state or the engine.

``analyze(batch)`` runs on the processor's event loop for every accepted trace request; nothing
in it raises on bad span data. The caller drives housekeeping: ``tick()`` every second or so
(checkpoints every ``checkpoint_interval``, prunes old state) and ``close()`` at shutdown (final
checkpoint). There is no hidden thread.

The engine's attributes that the queries and exports read (``tasks``, ``reader``, ``config``,
``clock``, ``sketch_params``, ``all_series`` ...) delegate to the state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from otel_impact.processors.batch import TraceBatch
from otel_impact.processors.clock import Clock, SystemClock

from .aggregates import Series
from .analyzer import NOT_A_PSEUDONYM, SliAnalyzer
from .buckets import Layout
from .config import SliConfig
from .segments import SegmentReader
from .sketches import SketchParams
from .state import SliState
from .store import RESTORE_ERRORS, StateStore
from .tasks import TaskState

__all__ = ["NOT_A_PSEUDONYM", "SliEngine"]

logger = logging.getLogger("otel_impact.sli")

SYNTHETIC_DIR = "synthetic"
"""The synthetic state's checkpoint directory, inside the engine's ``state_dir``."""
PRUNE_INTERVAL_S = 60
"""Seconds between two prunes of old volumes and idle series (driven by `SliEngine.tick`)."""


class SliEngine:
    """Derives user-task SLIs from trace batches. See the module docstring for the contract.

    With ``state_dir``, the last checkpoint there is restored now, and `tick`/`close` write new
    ones; without it, the state lives in memory only.

    ``synthetic`` is the engine of the synthetic traffic's state (`SliState.synthetic`): its own
    checkpoint in ``state_dir/synthetic``, its own housekeeping (driven from this engine's), its
    own queries; this engine's analyzer feeds it. ``state`` is for that engine: the state to use.
    """

    name = "sli"
    analyzer: SliAnalyzer

    def __init__(
        self,
        config: SliConfig,
        *,
        clock: Clock | None = None,
        state_dir: str | Path | None = None,
        state: SliState | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.state = state or SliState(config, now_ns=self.clock.now_ns())
        self.synthetic: SliEngine | None = None
        if self.state.synthetic is not None:
            synthetic_dir = None if state_dir is None else Path(state_dir) / SYNTHETIC_DIR
            self.synthetic = SliEngine(config, clock=self.clock, state_dir=synthetic_dir, state=self.state.synthetic)
        feeds: SliAnalyzer | None = None if self.synthetic is None else self.synthetic.analyzer
        self.analyzer = SliAnalyzer(self.state, synthetic=feeds)
        self._last_checkpoint = self.clock.monotonic()
        self._last_prune = self._last_checkpoint
        self.store: StateStore | None = None
        if state_dir is not None:
            self.store = StateStore.open(Path(state_dir), fingerprint=self.state.fingerprint())
            self._restore(self.store)

    @property
    def needs_view(self) -> bool:
        """Whether the pipeline should parse batches for this engine: not when the analyzer
        narrows each request down to its task spans first and parses only those."""
        return not self.analyzer.filters

    def analyze(self, batch: TraceBatch) -> None:
        """Fold one batch's task events in. Never raises: errors are counted and logged once."""
        self.analyzer.analyze(batch)

    # -- housekeeping ---------------------------------------------------------------------------

    def tick(self) -> None:
        """Periodic work, driven by the caller (e.g. every second): pruning and due checkpoints (of
        the synthetic state too)."""
        monotonic = self.clock.monotonic()
        if monotonic - self._last_prune >= PRUNE_INTERVAL_S:
            self._last_prune = monotonic
            self.prune(self.clock.now_ns())
        if self.store is not None and monotonic - self._last_checkpoint >= self.config.checkpoint_interval_s:
            self.checkpoint()

    def prune(self, now_ns: int) -> None:
        """Forget per-minute volumes older than loss detection needs, and series idle past retention."""
        if self.synthetic is not None:
            self.synthetic.prune(now_ns)
        for series_id in self.state.prune(now_ns):
            if self.store is not None:
                self.store.forget_series(series_id)

    def checkpoint(self) -> None:
        """Write what changed since the last checkpoint (no-op without a state dir)."""
        self._last_checkpoint = self.clock.monotonic()
        if self.synthetic is not None:
            self.synthetic.checkpoint()
        if self.store is None:
            return
        self.store.save(self.state.take_changes())

    def close(self) -> None:
        """Final checkpoint and close the state file. Safe to call twice."""
        if self.synthetic is not None:
            self.synthetic.close()
        if self.store is not None:
            self.checkpoint()
            self.store.close()
            self.store = None

    def _restore(self, store: StateStore) -> None:
        """Load the store's last checkpoint; when it does not restore, move it aside and start fresh."""
        try:
            snapshot = store.load()
            if snapshot is None:
                return
            self.state.restore(snapshot)
        except RESTORE_ERRORS as error:
            self.reset_state()
            store.discard(error)
            return
        logger.info(
            "restored SLI state: %d series of %d tasks from %s", len(snapshot.series), len(self.tasks), store.path
        )

    def reset_state(self) -> None:
        """Drop all derived state (a checkpoint that did not restore) and start afresh."""
        self.state.reset(self.clock.now_ns())
        self.analyzer.forget_tasks()

    # -- the state, as the queries and exports read it --------------------------------------------

    @property
    def reader(self) -> SegmentReader:
        return self.state.reader

    @property
    def sketch_params(self) -> SketchParams:
        return self.state.sketch_params

    @property
    def count_layout(self) -> Layout:
        return self.state.count_layout

    @property
    def sketch_layout(self) -> Layout:
        return self.state.sketch_layout

    @property
    def tasks(self) -> dict[str, TaskState]:
        return self.state.tasks

    @property
    def series_count(self) -> int:
        return self.state.series_count

    @property
    def untracked_task_events(self) -> int:
        return self.state.untracked_task_events

    @property
    def task_events(self) -> int:
        return self.state.task_events

    @property
    def coverage_start_ns(self) -> int:
        return self.state.coverage_start_ns

    @property
    def batches(self) -> int:
        return self.analyzer.batches

    @property
    def errors(self) -> int:
        return self.analyzer.errors

    def value_tally(self) -> dict[str, int]:
        """Span values not usable as they were, by kind (see `SliAnalyzer.value_tally`)."""
        return self.analyzer.value_tally()

    @property
    def overflow_values(self) -> tuple[str, ...]:
        return self.state.overflow_values

    def all_series(self, task: TaskState) -> Iterator[Series]:
        """``task``'s series, then its overflow series if any."""
        return self.state.all_series(task)

    def ensure_task(self, name: str) -> TaskState:
        """The task named ``name``, created if new."""
        return self.state.ensure_task(name)

    def new_series(
        self, task: TaskState, values: tuple[str, ...], created_ns: int, series_id: int | None = None
    ) -> Series:
        """A new series of ``task`` (see `SliState.new_series`)."""
        return self.state.new_series(task, values, created_ns, series_id)

    def overflow_series(self, task: TaskState, now: int) -> Series:
        return self.state.overflow_series(task, now)

    def rebuild_volumes(self) -> None:
        self.state.rebuild_volumes()

    def state_fingerprint(self) -> str:
        """What shapes the saved state; a checkpoint with another fingerprint is not loaded."""
        return self.state.fingerprint()

    def approx_bytes(self) -> int:
        """Approximate memory held by all series."""
        return self.state.approx_bytes()
