"""The persistent queue's dealings with a failing disk: writes that heal, outages told once, corrupt files set aside.

A write either completes or leaves nothing behind: `write_all` loops over short writes and raises
when the disk stops taking bytes; the queue writes to a temporary name and renames it into place,
removing the temporary file when anything fails. `StorageHealth` tallies failed writes by reason
(read by ``otel_impact_queue_storage_errors_total``) and logs an outage once when it starts and
once when it ends, however many requests meet it. `set_aside` keeps a corrupt queue file for an
operator to inspect, within `MAX_CORRUPT_FILES` and `MAX_CORRUPT_BYTES`.

Everything runs on the queue's event loop; nothing here is thread-safe, except that the tally's
keys are fixed at creation, so a scrape on another thread can copy it safely.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Final

logger = logging.getLogger("otel_impact.processor")

STORAGE_ERROR_REASONS: Final = ("no_space", "short_write", "read_only", "permission", "io_error")
"""The ``reason`` label values of ``otel_impact_queue_storage_errors_total`` (a fixed set)."""

CORRUPT_SUFFIX: Final = ".corrupt"
MAX_CORRUPT_FILES: Final = 16
"""Corrupt queue files kept per queue directory for inspection; older ones are deleted."""
MAX_CORRUPT_BYTES: Final = 64 << 20
"""Bytes of corrupt queue files kept per queue directory; older ones are deleted."""

_CORRUPT_FILE = re.compile(r"\A(\d{20})\.req\.corrupt\Z")


class ShortWriteError(OSError):
    """The disk stopped taking bytes without reporting an error (a write made no progress)."""


class CorruptFileError(Exception):
    """A queue file that cannot be parsed. ``spans`` is what its intact header says, or None if unknown."""

    def __init__(self, reason: str, spans: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.spans = spans


def storage_error_reason(error: OSError) -> str:
    """The `STORAGE_ERROR_REASONS` value describing ``error``."""
    if isinstance(error, ShortWriteError):
        return "short_write"
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "no_space"
    if error.errno == errno.EROFS:
        return "read_only"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission"
    return "io_error"


def write_all(fd: int, parts: Sequence[bytes]) -> None:
    """Write every byte of ``parts`` to ``fd``, looping over short writes; raise if the disk stops taking them."""
    views = [memoryview(part) for part in parts if part]
    while views:
        written = os.writev(fd, views)
        if written <= 0:
            raise ShortWriteError(errno.EIO, "a write made no progress (is the disk full?)")
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if written:
            views[0] = views[0][written:]


class StorageHealth:
    """Failed writes of one persistent queue: tallied by reason, an outage logged when it starts and ends."""

    def __init__(self, directory: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory
        self._monotonic = monotonic
        self.errors: dict[str, int] = dict.fromkeys(STORAGE_ERROR_REASONS, 0)
        """Failed writes by reason since start (the keys never change)."""
        self._since: float | None = None
        self._failed = 0
        self._refused = 0

    @property
    def failing(self) -> bool:
        """Whether the last write of a request failed (an outage is going on)."""
        return self._since is not None

    def failed(self, error: OSError, *, request: bool = True) -> None:
        """Count a failed write: of a ``request`` (refused to its sender) or of the in-flight log.

        The first failure of an outage is logged; the outage ends at the next request written whole.
        """
        reason = storage_error_reason(error)
        self.errors[reason] += 1
        self._failed += 1
        self._refused += request
        if self._since is not None:
            return
        self._since = self._monotonic()
        if request:
            consequence = "senders are told to retry until writes succeed again"
        else:
            consequence = "delivery goes on, but requests sent meanwhile are not marked as possible duplicates"
        logger.error(
            "otel-impact: cannot write %s of the persistent queue in %s (%s: %s); %s; "
            "counted in otel_impact_queue_storage_errors_total",
            "a request" if request else "the in-flight log",
            self.directory,
            reason,
            error,
            consequence,
        )

    def succeeded(self) -> None:
        """Note a request written whole; ends an outage (logged with its duration and failed writes)."""
        if self._since is None:
            return
        duration = self._monotonic() - self._since
        logger.warning(
            "otel-impact: the persistent queue in %s is writable again after %.1fs; %d writes failed meanwhile "
            "(%d requests refused: their senders were told to retry)",
            self.directory,
            duration,
            self._failed,
            self._refused,
        )
        self._since = None
        self._failed = 0
        self._refused = 0


def set_aside(directory: str, name: str) -> str | None:
    """Rename the corrupt file ``name`` to ``name.corrupt`` and enforce the bounds; its new path, or None.

    None means it could not be renamed and was deleted (or could not even be deleted: logged).
    """
    path = os.path.join(directory, name)
    aside = path + CORRUPT_SUFFIX
    try:
        os.replace(path, aside)
    except OSError as error:
        logger.error("otel-impact: cannot move %s aside (%s); deleting it", path, error)
        try:
            os.unlink(path)
        except OSError as unlink_error:
            logger.error("otel-impact: cannot delete %s either (%s)", path, unlink_error)
        return None
    _prune(directory)
    return aside


def corrupt_seqs(names: Sequence[str]) -> list[int]:
    """The sequence numbers of the corrupt files among ``names`` (numbers are never used again)."""
    return [int(m.group(1)) for name in names if (m := _CORRUPT_FILE.match(name))]


def _prune(directory: str) -> None:
    """Delete the oldest corrupt files beyond `MAX_CORRUPT_FILES` or `MAX_CORRUPT_BYTES`."""
    kept: list[tuple[str, int]] = []
    for name in sorted(os.listdir(directory), reverse=True):  # newest (highest number) first
        if _CORRUPT_FILE.match(name):
            try:
                kept.append((name, os.path.getsize(os.path.join(directory, name))))
            except OSError:
                continue
    total = 0
    removed = 0
    for index, (name, size) in enumerate(kept):
        total += size
        if index >= MAX_CORRUPT_FILES or total > MAX_CORRUPT_BYTES:
            try:
                os.unlink(os.path.join(directory, name))
                removed += 1
            except OSError:
                continue
    if removed:
        logger.warning(
            "otel-impact: deleted %d older corrupt queue files in %s: at most %d files and %d MiB are kept",
            removed,
            directory,
            MAX_CORRUPT_FILES,
            MAX_CORRUPT_BYTES >> 20,
        )
