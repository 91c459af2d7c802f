"""Reading OTLP trace requests through the lean view in ``impact_view.proto``.

`parse_traces` parses OTLP/protobuf bytes (an ``ExportTraceServiceRequest`` or ``TracesData``:
the two are the same on the wire) into `impact_view_pb2.TracesData`. Its attributes are
``map<string, bytes>`` from key to the attribute's *undecoded* ``AnyValue`` bytes; the decoders
below turn those bytes into Python values only for the attributes actually read.

AnyValue on the wire: field 1 string, 2 bool, 3 int64, 4 double, 5 array, 6 kvlist, 7 bytes.
A span's ``status`` is its undecoded ``Status`` message too: `status_code` reads it.
"""

from __future__ import annotations

import struct
from typing import Any, Final, TypeAlias

from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from .impact_view_pb2 import Event, Resource, ResourceSpans, ScopeSpans, Span, SpanCount, Status, TracesData

__all__ = [
    "AttributeMap",
    "Event",
    "Resource",
    "ResourceSpans",
    "ScopeSpans",
    "Span",
    "Status",
    "TracesData",
    "count_spans",
    "decode_any",
    "decode_bool",
    "decode_double",
    "decode_int",
    "decode_str",
    "decode_str_array",
    "parse_traces",
    "span_total",
    "status_code",
]

AttributeMap: TypeAlias = Any  # the generated map<string, bytes> container
"""A view attribute map: ``key in attrs``, ``attrs.get(key)`` → undecoded AnyValue bytes."""

_STRING: Final = 0x0A  # field 1, length-delimited
_BOOL: Final = 0x10  # field 2, varint
_INT: Final = 0x18  # field 3, varint
_DOUBLE: Final = 0x21  # field 4, fixed64
_ARRAY: Final = 0x2A  # field 5, length-delimited
_unpack_double = struct.Struct("<d").unpack_from
_STATUS_CODE: Final = 0x18  # Status field 3 (code), varint


def parse_traces(data: bytes) -> TracesData:
    """Parse OTLP trace bytes into the lean view. Raises ``google.protobuf.message.DecodeError``."""
    traces = TracesData()
    traces.ParseFromString(data)
    return traces


def span_total(traces: TracesData) -> int:
    """The number of spans in a parsed view."""
    return sum(len(scope.spans) for resource in traces.resource_spans for scope in resource.scope_spans)


def count_spans(data: bytes) -> int:
    """Count the spans in OTLP trace bytes, checking each span's wire framing but decoding nothing.

    About ten times cheaper than `parse_traces`; for forwarding, where nothing is read. Raises
    ``google.protobuf.message.DecodeError`` on malformed framing.
    """
    counted = SpanCount()
    counted.ParseFromString(data)
    return sum(len(scope.spans) for resource in counted.resource_spans for scope in resource.scope_spans)


def status_code(raw: bytes) -> int:
    """The code in a span's undecoded ``Status`` (0, unset, for empty bytes).

    ``Status`` is {2: message, 3: code}; a status with only a code (the usual ERROR) is
    ``18 0c`` with ``0c`` < 128, read directly; anything else is parsed. Bytes that are not a
    ``Status`` read as 0 (unset): the request was accepted and is forwarded as it is, and its
    status decides nothing.
    """
    if not raw:
        return 0
    if len(raw) == 2 and raw[0] == _STATUS_CODE and raw[1] < 0x80:
        return raw[1]
    try:
        return int(Status.FromString(raw).code)
    except DecodeError:
        return 0


def _varint(raw: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = raw[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def decode_str(raw: bytes | None) -> str | None:
    """The string in an AnyValue, or ``None`` when it holds something else."""
    if not raw or raw[0] != _STRING:
        return None
    if len(raw) > 1 and raw[1] < 0x80:  # the common case: a string shorter than 128 bytes
        end = 2 + raw[1]
        return raw[2:end].decode("utf-8", "replace") if end == len(raw) else _slow_str(raw)
    return _slow_str(raw)


def _slow_str(raw: bytes) -> str | None:
    try:
        value = AnyValue.FromString(raw)
    except (DecodeError, RecursionError):  # not an AnyValue: a bad value reads as "not a string"
        return None
    return value.string_value if value.WhichOneof("value") == "string_value" else None


def decode_int(raw: bytes | None) -> int | None:
    """The integer in an AnyValue (int64), or ``None`` when it holds something else."""
    if not raw or raw[0] != _INT:
        return None
    value, _ = _varint(raw, 1)
    return value - (1 << 64) if value >= 1 << 63 else value


def decode_double(raw: bytes | None) -> float | None:
    """The number in an AnyValue (double or int64), or ``None``."""
    if not raw:
        return None
    if raw[0] == _DOUBLE and len(raw) >= 9:
        return float(_unpack_double(raw, 1)[0])
    number = decode_int(raw)
    return None if number is None else float(number)


def decode_bool(raw: bytes | None) -> bool | None:
    """The boolean in an AnyValue, or ``None`` when it holds something else."""
    if raw and raw[0] == _BOOL and len(raw) > 1:
        return raw[1] != 0
    return None


def decode_str_array(raw: bytes | None) -> tuple[str, ...]:
    """The strings in an AnyValue array (other elements are skipped); ``()`` if not an array
    (or not decodable)."""
    if not raw or raw[0] != _ARRAY:
        return ()
    try:
        value = AnyValue.FromString(raw)
    except (DecodeError, RecursionError):
        return ()
    return tuple(item.string_value for item in value.array_value.values if item.WhichOneof("value") == "string_value")


def decode_any(raw: bytes | None) -> Any:
    """Any AnyValue as a Python value: str, bool, int, float, bytes, tuple or dict; ``None`` if empty.

    Raises ``google.protobuf.message.DecodeError`` when the bytes are not an AnyValue (e.g.
    kvlists nested past protobuf's depth limit)."""
    if not raw:
        return None
    return _from_any_value(AnyValue.FromString(raw))


def _from_any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_from_any_value(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: _from_any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)
