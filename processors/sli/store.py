"""SQLite checkpoints of the SLI engine's state under the state directory.

One file, ``<state dir>/sli-state.sqlite``. A checkpoint writes only what changed since the
previous one (touched series, changed buckets and sketch cells) in one transaction, so a crash
loses at most one checkpoint interval of derived data (the telemetry itself is forwarded, not
kept here).

A file that SQLite cannot read, or whose content does not restore, is moved aside as
``sli-state.sqlite.corrupt-<unix time>`` with an ERROR log, and the engine starts fresh: a
crash loop on bad state would cost more than the lost history. A file written with a different
state layout (dimensions, thresholds, tiers or sketch sizes changed) is moved aside as
``.incompatible-<unix time>`` with a WARNING.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

if TYPE_CHECKING:
    from .aggregates import Series
    from .engine import SliEngine

__all__ = ["STATE_FILE", "StateStore"]

logger = logging.getLogger("otel_impact.sli")

STATE_FILE: Final = "sli-state.sqlite"
SCHEMA_VERSION: Final = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    name TEXT PRIMARY KEY, overflow_events INTEGER, late_clamped INTEGER, future_clamped INTEGER);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, task TEXT NOT NULL, segment TEXT NOT NULL, created_ns INTEGER, last_ns INTEGER,
    cumulative BLOB, hist_counts BLOB, hist_sum REAL, expo_offset INTEGER, expo_counts BLOB, expo_zero INTEGER);
CREATE TABLE IF NOT EXISTS counts (
    series INTEGER, tier INTEGER, slot INTEGER, stamp INTEGER, row BLOB,
    PRIMARY KEY (series, tier, slot)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sketches (
    series INTEGER, tier INTEGER, slot INTEGER, stamp INTEGER, cell BLOB,
    PRIMARY KEY (series, tier, slot)) WITHOUT ROWID;
"""


class StateError(Exception):
    """The state file's content does not restore."""


class StateStore:
    """The engine's checkpoint file. Use `open`; every method runs on the caller's thread."""

    def __init__(self, path: Path, connection: sqlite3.Connection, fingerprint: str) -> None:
        self.path = path
        self.fingerprint = fingerprint
        self._db = connection
        self.checkpoints = 0
        self.last_checkpoint_s = 0.0

    @classmethod
    def open(cls, directory: Path, *, fingerprint: str) -> StateStore:
        """Open (or create) the state file, moving a corrupt or incompatible one aside."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / STATE_FILE
        try:
            connection = cls._connect(path)
            stored = dict(connection.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as error:
            _move_aside(path, "corrupt", f"SQLite cannot read it ({error})")
            return cls(path, cls._connect(path), fingerprint)
        if stored and (stored.get("schema") != SCHEMA_VERSION or stored.get("fingerprint") != fingerprint):
            connection.close()
            _move_aside(path, "incompatible", "it was written with other dimensions, thresholds, tiers or sketch sizes")
            connection = cls._connect(path)
        return cls(path, connection, fingerprint)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        connection = sqlite3.connect(path, isolation_level=None)
        try:
            check = connection.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check}")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            connection.close()
            raise
        return connection

    # -- restore ----------------------------------------------------------------------------------

    def restore_into(self, engine: SliEngine) -> None:
        """Load the last checkpoint into a freshly built engine; on bad content, start fresh."""
        try:
            self._restore(engine)
        except (StateError, sqlite3.DatabaseError, ValueError, KeyError, TypeError) as error:
            engine.reset_state()
            self._db.close()
            _move_aside(self.path, "corrupt", f"its content does not restore ({error})")
            self._db = self._connect(self.path)

    def _restore(self, engine: SliEngine) -> None:
        db = self._db
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            return
        counters = json.loads(meta["counters"])
        engine.coverage_start_ns = int(meta["coverage_start_ns"])
        engine.untracked_task_events = int(counters["untracked_task_events"])
        engine.task_events = int(counters["task_events"])
        for name, overflow, late, future in db.execute(
            "SELECT name, overflow_events, late_clamped, future_clamped FROM tasks"
        ):
            task = engine.ensure_task(name)
            task.overflow_events, task.late_clamped, task.future_clamped = int(overflow), int(late), int(future)
        by_id: dict[int, Series] = {}
        rows = db.execute(
            "SELECT id, task, segment, created_ns, last_ns, cumulative, hist_counts, hist_sum,"
            " expo_offset, expo_counts, expo_zero FROM series ORDER BY id"
        )
        for sid, task_name, segment, created, last, cumulative, hist, hist_sum, offset, expo, zero in rows:
            values = tuple(json.loads(segment))
            if len(values) != len(engine.reader.names) or not all(isinstance(v, str) for v in values):
                raise StateError(f"series {sid} has a segment that does not fit the dimensions")
            series = engine.new_series(engine.ensure_task(task_name), values, int(created), int(sid))
            series.last_ns = int(last)
            series.cumulative[:] = _array(cumulative, np.float64, series.cumulative.size)
            series.hist_counts[:] = _array(hist, np.int64, series.hist_counts.size)
            series.hist_sum_s = float(hist_sum)
            series.expo.offset = int(offset)
            series.expo.counts = np.frombuffer(expo, dtype=np.int64).copy()
            series.expo.zero_count = int(zero)
            by_id[int(sid)] = series
        for sid, tier, slot, stamp, row in db.execute("SELECT series, tier, slot, stamp, row FROM counts"):
            _series(by_id, sid).counts.load(int(tier), int(slot), int(stamp), bytes(row))
        for sid, tier, slot, stamp, cell in db.execute("SELECT series, tier, slot, stamp, cell FROM sketches"):
            _series(by_id, sid).sketches.load(int(tier), int(slot), int(stamp), bytes(cell))
        engine.rebuild_volumes()
        logger.info("restored SLI state: %d series of %d tasks from %s", len(by_id), len(engine.tasks), self.path)

    # -- save -------------------------------------------------------------------------------------

    def save(self, engine: SliEngine, touched: Iterable[Series]) -> None:
        """Write one checkpoint: counters, touched series and their changed buckets."""
        started = time.perf_counter()
        db = self._db
        db.execute("BEGIN")
        try:
            meta = {
                "schema": SCHEMA_VERSION,
                "fingerprint": self.fingerprint,
                "coverage_start_ns": str(engine.coverage_start_ns),
                "counters": json.dumps(
                    {"untracked_task_events": engine.untracked_task_events, "task_events": engine.task_events}
                ),
            }
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())
            db.executemany(
                "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?)",
                [(t.name, t.overflow_events, t.late_clamped, t.future_clamped) for t in engine.tasks.values()],
            )
            for series in touched:
                db.execute(
                    "INSERT OR REPLACE INTO series VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        series.id,
                        series.task,
                        json.dumps(list(series.values)),
                        series.created_ns,
                        series.last_ns,
                        series.cumulative.tobytes(),
                        series.hist_counts.tobytes(),
                        series.hist_sum_s,
                        series.expo.offset,
                        series.expo.counts.tobytes(),
                        series.expo.zero_count,
                    ),
                )
                db.executemany(
                    "INSERT OR REPLACE INTO counts VALUES (?, ?, ?, ?, ?)",
                    [(series.id, *row) for row in series.counts.take_dirty()],
                )
                db.executemany(
                    "INSERT OR REPLACE INTO sketches VALUES (?, ?, ?, ?, ?)",
                    [(series.id, *cell) for cell in series.sketches.take_dirty()],
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.checkpoints += 1
        self.last_checkpoint_s = time.perf_counter() - started

    def forget_series(self, series_id: int) -> None:
        for table in ("series", "counts", "sketches"):
            column = "id" if table == "series" else "series"
            self._db.execute(f"DELETE FROM {table} WHERE {column} = ?", (series_id,))

    def close(self) -> None:
        self._db.close()


def _series(by_id: dict[int, Series], series_id: int) -> Series:
    series = by_id.get(int(series_id))
    if series is None:
        raise StateError(f"a bucket refers to series {series_id}, which is not saved")
    return series


def _array(data: bytes, dtype: type[np.generic], size: int) -> np.ndarray:
    array = np.frombuffer(data, dtype=dtype)
    if array.size != size:
        raise StateError("a saved array has the wrong length")
    return array


def _move_aside(path: Path, why: str, reason: str) -> None:
    target = path.with_name(f"{path.name}.{why}-{int(time.time())}")
    for suffix in ("", "-journal", "-wal", "-shm"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            source.replace(Path(f"{target}{suffix}"))
    log = logger.error if why == "corrupt" else logger.warning
    log(
        "SLI state file %s is %s: %s. Moved it aside to %s and starting with empty SLI state; "
        "answers cover only what arrives from now on.",
        path,
        why,
        reason,
        target,
    )
