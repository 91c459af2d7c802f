"""The bounded caches of the SLI analysis, and the memos from raw value bytes to plain values.

Spans repeat the same few raw values, so the analyzer remembers what each decodes to.
Every cache is bounded by entries and by key size; a key longer than its limit is decoded each
time and not remembered, so a hostile value cannot make a cache large:

==============================  ===========================  ===================  ================  ==========
cache                           key                          entries (when full)  key size          worst case
==============================  ===========================  ===================  ================  ==========
``SliAnalyzer._tasks_by_raw``   raw ``impact.task.name``     4096 (emptied)       ≤ 516 bytes       2.5 MB
``SliAnalyzer._resource_memo``  raw resource key attributes  4096 (emptied)       ≤ 1 KiB in total  9 MB
``ValueMemos.status``           raw span status              4096 (no more)       ≤ 256 bytes       1.5 MB
``ValueMemos.http``             raw HTTP status code         4096 (no more)       ≤ 256 bytes       1.5 MB
``ValueMemos.user_texts``       raw user attribute           16384 (emptied)      ≤ 256 bytes       11 MB
``TaskState.raw_keys``          raw segment key              4096 per task,       ≤ 1 KiB in total  18 MB
                                                             16384 in all
                                                             (emptied)
==============================  ===========================  ===================  ================  ==========

A value past its key limit is counted (`SliAnalyzer.value_tally`, exposed as
``otel_impact_analyzer_values_total{analyzer="sli",kind="oversized_..."}``). What outlives a
batch holds no attacker-sized bytes: a series keeps its label values, each cut to 128
characters (counted as ``oversized_label``); the user sketches keep hashes; the top-customers
list keeps pseudonyms only (other values count as ``(not a pseudonym)``).

The worst case is every key at its limit, about 45 MB in all (plus the segment reader's two
caches of raw ``impact.feature_flags`` values, 4096 entries each with keys ≤ 1 KiB, emptied
when full: see ``segments.py``); in practice keys are a few dozen bytes and the caches a few
MB. Per batch, the pending groups hold the batch's own events only.
"""

from __future__ import annotations

from typing import Final

from otel_impact._attributes import MAX_TASK_NAME_LENGTH
from otel_impact.proto import view

from .segments import _text

__all__ = [
    "COMPOSITE_KEY_BYTES",
    "MEMO_LIMIT",
    "OVERSIZED_KINDS",
    "RAW_KEYS_LIMIT",
    "TASK_KEY_BYTES",
    "ValueMemos",
    "key_bytes",
]

MEMO_LIMIT: Final = 4096
"""Entries of each cache but the user texts (see the module docstring)."""
USER_MEMO_LIMIT: Final = 16384
"""Distinct user values whose text is remembered (about 4 MB); the memo is emptied when full."""
TASK_KEY_BYTES: Final = 4 * MAX_TASK_NAME_LENGTH + 4
"""The longest raw task name worth remembering: the longest valid name in UTF-8, plus its header."""
VALUE_KEY_BYTES: Final = 256
"""The longest raw status, HTTP code or user value the caches remember."""
COMPOSITE_KEY_BYTES: Final = 1024
"""The most bytes of raw values a resource key or a segment key may hold to be remembered."""
RAW_KEYS_LIMIT: Final = 16384
"""Segment keys remembered over all tasks (each task's ``raw_keys`` also holds at most `MEMO_LIMIT`)."""
OVERSIZED_KINDS: Final = ("task_name", "resource", "status", "http_status", "user", "segment")
"""What `SliAnalyzer.oversized` counts: raw values too long for their cache (see the table above)."""


def key_bytes(key: object) -> int:
    """Bytes of raw values (and text) in a cache key: a value, or a tuple of values and tuples."""
    if isinstance(key, bytes | str):
        return len(key)
    if isinstance(key, tuple):
        return sum(key_bytes(part) for part in key)
    return 0


class ValueMemos:
    """Raw span status, HTTP status and user values → what they decode to, within the limits above.

    The hot loop reads ``status``, ``http`` and ``user_texts`` directly (one dict lookup a value)
    and calls the methods on a miss; a miss counts an oversized value in ``oversized``.
    """

    def __init__(self) -> None:
        self.status: dict[bytes, int] = {}
        self.http: dict[bytes, int] = {}
        self.user_texts: dict[bytes, str] = {}
        self.oversized: dict[str, int] = dict.fromkeys(OVERSIZED_KINDS, 0)

    def user_text(self, raw: bytes) -> str:
        """A user attribute's value as text (memoized: the same customers come back batch after batch)."""
        if raw and raw[0] == 0x0A and len(raw) > 1 and raw[1] < 0x80 and len(raw) == raw[1] + 2:
            text = raw[2:].decode("utf-8", "replace")
        else:
            text = _text(raw) if raw else ""
        if len(raw) <= VALUE_KEY_BYTES:
            if len(self.user_texts) >= USER_MEMO_LIMIT:
                self.user_texts.clear()
            self.user_texts[raw] = text
        else:
            self.oversized["user"] += 1
        return text

    def status_code(self, raw: bytes) -> int:
        code = view.status_code(raw)
        if len(raw) > VALUE_KEY_BYTES:
            self.oversized["status"] += 1
        elif len(self.status) < MEMO_LIMIT:
            self.status[raw] = code
        return code

    def http_code(self, raw: bytes) -> int:
        code = view.decode_int(raw)
        if code is None:
            text = view.decode_str(raw)
            code = int(text) if text is not None and text.isdigit() and len(text) <= 3 else 0
        if len(raw) > VALUE_KEY_BYTES:
            self.oversized["http_status"] += 1
        elif len(self.http) < MEMO_LIMIT:
            self.http[raw] = code
        return code
