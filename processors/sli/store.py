"""SQLite checkpoints of the SLI state under the state directory.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from .state import BucketRow, SeriesRecord, StateError, StateSnapshot, TaskRecord

__all__ = ["RESTORE_ERRORS", "STATE_FILE", "StateError", "StateStore"]

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


RESTORE_ERRORS: Final = (StateError, sqlite3.DatabaseError, ValueError, KeyError, TypeError)
"""What reading a checkpoint back (`StateStore.load`, `SliState.restore`) raises on bad content."""


class StateStore:
    """The checkpoint file of an `SliState`, as `StateSnapshot` records.

    Use `open`; every method runs on the caller's thread. The store knows the file format only:
    it never builds series or tasks (that is `SliState.restore`).
    """

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

    # -- load -----------------------------------------------------------------------------------

    def load(self) -> StateSnapshot | None:
        """The last checkpoint, or ``None`` when the file holds none yet.

        The snapshot's buckets are read as they are iterated. Reading, or restoring the snapshot,
        raises one of `RESTORE_ERRORS` when the content does not read back; the caller then
        calls `discard`.
        """
        db = self._db
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        if not meta:
            return None
        counters = json.loads(meta["counters"])
        tasks = [
            TaskRecord(str(name), int(overflow), int(late), int(future))
            for name, overflow, late, future in db.execute(
                "SELECT name, overflow_events, late_clamped, future_clamped FROM tasks"
            )
        ]
        series: list[SeriesRecord] = []
        rows = db.execute(
            "SELECT id, task, segment, created_ns, last_ns, cumulative, hist_counts, hist_sum,"
            " expo_offset, expo_counts, expo_zero FROM series ORDER BY id"
        )
        for sid, task_name, segment, created, last, cumulative, hist, hist_sum, offset, expo, zero in rows:
            values = tuple(json.loads(segment))
            if not all(isinstance(v, str) for v in values):
                raise StateError(f"series {sid} has a segment that does not fit the dimensions")
            series.append(
                SeriesRecord(
                    id=int(sid),
                    task=str(task_name),
                    values=values,
                    created_ns=int(created),
                    last_ns=int(last),
                    cumulative=bytes(cumulative),
                    hist_counts=bytes(hist),
                    hist_sum_s=float(hist_sum),
                    expo_offset=int(offset),
                    expo_counts=bytes(expo),
                    expo_zero=int(zero),
                )
            )
        return StateSnapshot(
            coverage_start_ns=int(meta["coverage_start_ns"]),
            untracked_task_events=int(counters["untracked_task_events"]),
            task_events=int(counters["task_events"]),
            tasks=tasks,
            series=series,
            counts=self._buckets("SELECT series, tier, slot, stamp, row FROM counts"),
            sketches=self._buckets("SELECT series, tier, slot, stamp, cell FROM sketches"),
        )

    def _buckets(self, query: str) -> Iterator[BucketRow]:
        for sid, tier, slot, stamp, data in self._db.execute(query):
            yield int(sid), int(tier), int(slot), int(stamp), bytes(data)

    def discard(self, error: BaseException) -> None:
        """Move the file aside as corrupt (its content did not restore) and start an empty one."""
        self._db.close()
        _move_aside(self.path, "corrupt", f"its content does not restore ({error})")
        self._db = self._connect(self.path)

    # -- save -------------------------------------------------------------------------------------

    def save(self, changes: StateSnapshot) -> None:
        """Write one checkpoint in one transaction: counters, tasks, and the changed series and buckets."""
        started = time.perf_counter()
        db = self._db
        db.execute("BEGIN")
        try:
            meta = {
                "schema": SCHEMA_VERSION,
                "fingerprint": self.fingerprint,
                "coverage_start_ns": str(changes.coverage_start_ns),
                "counters": json.dumps(
                    {"untracked_task_events": changes.untracked_task_events, "task_events": changes.task_events}
                ),
            }
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())
            db.executemany(
                "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?)",
                [(t.name, t.overflow_events, t.late_clamped, t.future_clamped) for t in changes.tasks],
            )
            for series in changes.series:
                db.execute(
                    "INSERT OR REPLACE INTO series VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        series.id,
                        series.task,
                        json.dumps(list(series.values)),
                        series.created_ns,
                        series.last_ns,
                        series.cumulative,
                        series.hist_counts,
                        series.hist_sum_s,
                        series.expo_offset,
                        series.expo_counts,
                        series.expo_zero,
                    ),
                )
            db.executemany("INSERT OR REPLACE INTO counts VALUES (?, ?, ?, ?, ?)", changes.counts)
            db.executemany("INSERT OR REPLACE INTO sketches VALUES (?, ?, ?, ?, ?)", changes.sketches)
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
