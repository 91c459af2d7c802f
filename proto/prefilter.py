"""Keep only the spans of an OTLP trace request that carry a given attribute key, before parsing.

Most spans are not what an analysis looks for; parsing only the ones that carry its key is
cheaper than parsing them all. Optionally every span of a sampled share of traces is kept too
(`trace_sampled`: the same decision for a trace in every batch and process). `filter_spans` does
that selection on the wire bytes, in one pass, with the compiled extension
``otel_impact.proto._prefilter`` when it is built (`NATIVE` true).
Where it is not (no C compiler at install time), or when the environment variable named by
`PURE_PYTHON_ENV` (``OTEL_IMPACT_PURE_PYTHON``) is ``1`` when this module is first imported,
`filter_spans` keeps every span: correct under its contract, no faster than parsing everything.
A pure-Python byte scan was measured slower than parsing the whole request in C, so there is no
Python version of the selection.

Check which one is in use::

    python -c "from otel_impact.proto import prefilter; print(prefilter.NATIVE)"
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final, TypeAlias

from .view import count_spans

__all__ = [
    "MAX_UNLESS_VALUES",
    "NATIVE",
    "PURE_PYTHON_ENV",
    "SAMPLE_ALL",
    "Unless",
    "filter_spans",
    "sample_below",
    "trace_sampled",
]

PURE_PYTHON_ENV: Final = "OTEL_IMPACT_PURE_PYTHON"
"""Set to ``1`` to use the pure-Python fallback even where the extension is built (read at import)."""


Unless: TypeAlias = "tuple[bytes, tuple[bytes, ...]]"
"""An attribute key and raw ``AnyValue`` encodings of it that make a span not kept (see `filter_spans`)."""
MAX_UNLESS_VALUES: Final = 8

SAMPLE_BYTES: Final = 7
"""A trace is sampled by the last 7 bytes of its id (random in W3C trace context level 2 ids)."""
SAMPLE_ALL: Final = 1 << (8 * SAMPLE_BYTES)
"""The ``sample_below`` that samples every trace with a 16-byte id."""
TRACE_ID_BYTES: Final = 16


def sample_below(share: float) -> int:
    """The ``sample_below`` threshold that samples ``share`` (0 to 1) of random trace ids."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"a trace sample share must be within 0 and 1, not {share!r}")
    return round(share * SAMPLE_ALL)


def trace_sampled(trace_id: bytes, below: int, /) -> bool:
    """Whether the trace ``trace_id`` is sampled under ``below``: the id has 16 bytes and its last 7,
    read big-endian, are below ``below``. The one rule, in C (`filter_spans`) and here: every
    process and every batch decides the same for a trace."""
    return len(trace_id) == TRACE_ID_BYTES and int.from_bytes(trace_id[-SAMPLE_BYTES:], "big") < below


def _filter_spans_python(data: bytes, key: bytes, unless: Unless | None = None, below: int = 0, /) -> tuple[int, bytes]:
    """The fallback: every span is kept."""
    return count_spans(data), data


def _filter_spans_native(data: bytes, key: bytes, unless: Unless | None = None, below: int = 0, /) -> tuple[int, bytes]:
    from . import _prefilter  # noqa: PLC0415 (already imported by _load)

    if below:
        unless_key, unless_values = unless if unless is not None else (None, ())
        return _prefilter.filter_spans(data, key, unless_key, unless_values, below)
    if unless is None:
        return _prefilter.filter_spans(data, key)
    return _prefilter.filter_spans(data, key, unless[0], unless[1])


_Filter: TypeAlias = Callable[[bytes, bytes, "Unless | None", int], tuple[int, bytes]]


def _load() -> tuple[bool, _Filter]:
    if os.environ.get(PURE_PYTHON_ENV) == "1":
        return False, _filter_spans_python
    try:
        from . import _prefilter  # noqa: F401, PLC0415 (optional: imported only when not switched off)
    except ImportError:  # not built: no compiler at install time
        return False, _filter_spans_python
    return True, _filter_spans_native


_native, _implementation = _load()

NATIVE: Final[bool] = _native
"""Whether `filter_spans` is the compiled extension."""


def filter_spans(data: bytes, key: bytes, /, unless: Unless | None = None, sample_below: int = 0) -> tuple[int, bytes]:
    """``(span_count, kept)``: how many spans ``data`` holds, and a request with those that carry ``key``.

    With ``unless = (other_key, values)``, a span that carries ``key`` is still left out when its
    attribute ``other_key`` (the last one, as the view's map reads it) is encoded as one of the
    raw ``AnyValue`` bytes in ``values`` (at most `MAX_UNLESS_VALUES`), e.g. a task span whose
    ``impact.task.root`` is false.

    With ``sample_below`` (0 to `SAMPLE_ALL`), every span of a sampled trace is kept too, whatever
    its attributes: a span whose ``trace_id`` (the last one, as the view reads it) passes
    `trace_sampled` under ``sample_below``. "The spans that carry ``key``" below means all these.

    ``data`` is an OTLP ``ExportTraceServiceRequest`` (or ``TracesData``: the same on the wire);
    ``key`` an attribute key as UTF-8 bytes. ``span_count`` counts every span of ``data``.

    ``kept`` is a serialized ``TracesData`` that holds at least every span whose attributes
    include ``key``: parsed with `view.parse_traces`, it gives those spans in their order, each
    under its resource and scope; the analysis still checks each span it gets. With the extension
    (`NATIVE`) it holds exactly those spans: for each ``ResourceSpans`` with such a span, its
    other fields unchanged (resource, schema URL, unknown fields) and only its ``ScopeSpans``
    with such spans, each with its other fields unchanged and only those spans, copied byte for
    byte; fields of the request besides ``resource_spans`` are not copied. ``kept`` is ``b""``
    when no span carries the key, and may be ``data`` itself when every span does. Without the
    extension, ``kept`` is ``data``. A span whose attribute list cannot be read is kept, so
    whoever parses ``kept`` sees the error `view.parse_traces` would raise on ``data``.

    Raises ``google.protobuf.message.DecodeError`` for exactly the inputs `view.count_spans`
    rejects (malformed framing of the request, its resources, scopes and spans), at protobuf's
    default nesting limit.
    """
    if unless is not None and len(unless[1]) > MAX_UNLESS_VALUES:
        raise ValueError(f"unless holds {len(unless[1])} values, more than {MAX_UNLESS_VALUES}")
    if not 0 <= sample_below <= SAMPLE_ALL:
        raise ValueError(f"sample_below must be within 0 and 2**56, not {sample_below}")
    return _implementation(data, key, unless, sample_below)
