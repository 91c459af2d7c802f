"""OTLP/JSON trace requests to OTLP/protobuf bytes, as the OTLP specification encodes JSON.

The differences from protobuf's canonical JSON mapping: trace and span ids are hex strings
(not base64), enums are integers (names are accepted too), keys are lowerCamelCase (the
original field names are accepted too), and unknown fields are ignored, as the specification
requires of receivers. 64-bit integers may be strings or numbers.

An enum given by name must be one of its names (``STATUS_CODE_EROR`` is refused, not read as
unset); an integer is taken as it is, as protobuf does for open enums.

How: ``orjson`` parses the body, a walk driven by tables built once from the message
descriptors turns the document into constructor arguments (hex ids to bytes, names to
numbers, both key spellings to field names), and one call to the upb constructor of
``ExportTraceServiceRequest`` builds the message, which is serialized. The walk has fast
paths for the attribute lists that make up most of a span. `json_to_protobuf` is a pure
function of bytes to bytes, so it can run in a worker thread or process.

Faster, where it is built (`NATIVE_JSON` true): the compiled extension
``otel_impact.processors.intake._otlp_json`` reads the JSON and writes the protobuf bytes in one
pass, without the GIL, for the bodies whose every detail it is sure of (the shape OTel SDKs and
the Collector send); for anything else it declines and the walk above runs, so results and
errors are the walk's either way. It is not used when the environment variable named by
`otel_impact.proto.prefilter.PURE_PYTHON_ENV` is ``1`` when this module is first imported.

Errors are `InvalidJson` with a message that names where the problem is (the field path, such
as ``resourceSpans[0].scopeSpans[0].spans[3].status.code``) but never repeats the offending
value (it may be a customer ID); the one exception is a misspelled enum name that starts like
one of the enum's names, which is repeated so the sender sees the typo.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
from collections.abc import Callable
from typing import Any, Final

import orjson
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from otel_impact.proto.prefilter import PURE_PYTHON_ENV

MAX_DEPTH: Final = 64
"""How deeply messages may nest (attribute values hold arrays and maps of values)."""

_INT_RANGES: Final = {
    FieldDescriptor.TYPE_INT64: (-(1 << 63), 1 << 63),
    FieldDescriptor.TYPE_SINT64: (-(1 << 63), 1 << 63),
    FieldDescriptor.TYPE_SFIXED64: (-(1 << 63), 1 << 63),
    FieldDescriptor.TYPE_UINT64: (0, 1 << 64),
    FieldDescriptor.TYPE_FIXED64: (0, 1 << 64),
    FieldDescriptor.TYPE_INT32: (-(1 << 31), 1 << 31),
    FieldDescriptor.TYPE_SINT32: (-(1 << 31), 1 << 31),
    FieldDescriptor.TYPE_SFIXED32: (-(1 << 31), 1 << 31),
    FieldDescriptor.TYPE_UINT32: (0, 1 << 32),
    FieldDescriptor.TYPE_FIXED32: (0, 1 << 32),
}
_ID_SIZES: Final = {"trace_id": 16, "span_id": 8, "parent_span_id": 8}
"""The fields of ``Span`` and ``Span.Link`` that OTLP/JSON writes as hex, and their sizes."""
_ENUM_NOUNS: Final = {"StatusCode": "status code", "SpanKind": "span kind"}


class InvalidJson(ValueError):
    """The body is not an OTLP/JSON trace request; the message says where, without values."""


class _Bad(Exception):
    """A problem found in the walk; the path is collected while the walk unwinds."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []

    def where(self) -> str:
        out = ""
        for part in reversed(self.path):
            out += part if part.startswith("[") or not out else "." + part
        return out or "the request"


Convert = Callable[[Any, int], Any]
"""A field's converter: (JSON value, message depth) → the value for the upb constructor."""


def _integer(low: int, high: int) -> Callable[[Any, int], int]:
    def convert(value: Any, depth: int) -> int:
        kind = type(value)
        if kind is int:
            number: int = value
        elif kind is str and " " not in value:
            try:
                number = int(value)
            except ValueError:
                raise _Bad("invalid value or type") from None
        elif kind is float and value.is_integer():
            number = int(value)
        else:
            raise _Bad("invalid value or type")
        if not low <= number < high:
            raise _Bad("invalid value or type")
        return number

    return convert


_SPECIAL_FLOATS: Final = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _double(value: Any, depth: int) -> float:
    kind = type(value)
    if kind is float or kind is int:
        return float(value)
    if kind is str:
        special = _SPECIAL_FLOATS.get(value)
        if special is not None:
            return special
        try:
            return float(value)
        except ValueError:
            pass
    raise _Bad("invalid value or type")


def _string(value: Any, depth: int) -> str:
    if type(value) is not str:
        raise _Bad("invalid value or type")
    return value


def _boolean(value: Any, depth: int) -> bool:
    if type(value) is not bool:
        raise _Bad("invalid value or type")
    return value


def _base64(value: Any, depth: int) -> bytes:
    if type(value) is not str:
        raise _Bad("invalid value or type")
    try:
        return base64.b64decode(value.translate(_URLSAFE) + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise _Bad("invalid value or type") from None


_URLSAFE: Final = str.maketrans("-_", "+/")


def _hex_id(size: int) -> Convert:
    def convert(value: Any, depth: int) -> bytes:
        if type(value) is not str:
            raise _Bad("expected a hex string")
        if value == "":
            return b""
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        if len(raw) != size:
            raise _Bad(f"expected {size * 2} hex characters")
        return raw

    return convert


def _enum(enum: EnumDescriptor) -> Convert:
    names: dict[str, int] = {value.name: value.number for value in enum.values}
    numbers = sorted(names.values())
    noun = _ENUM_NOUNS.get(enum.name, enum.name)
    listed = list(names)
    hint = f"use {', '.join(listed[:-1])} or {listed[-1]} or {numbers[0]}-{numbers[-1]}"
    prefix = listed[0][: listed[0].rfind("_") + 1]
    as_integer: Callable[[Any, int], int] = _integer(-(1 << 31), 1 << 31)

    def convert(value: Any, depth: int) -> int:
        if type(value) is str:
            number = names.get(value)
            if number is not None:
                return number
            if value.isdigit():
                return as_integer(value, depth)
            # A near-miss of a name is repeated (it is no customer data); anything else is not.
            shown = repr(value) if prefix and value.startswith(prefix) and len(value) <= 64 else "the value"
            raise _Bad(f"{shown} is not a {noun}; {hint}")
        if type(value) is bool:
            raise _Bad(f"the value is not a {noun}; {hint}")
        return as_integer(value, depth)

    return convert


class _Table:
    """How to read one message type: its JSON keys (both spellings) → (field name, path name, converter)."""

    def __init__(self) -> None:
        self.fields: dict[str, tuple[str, str, Convert]] = {}


_TABLES: dict[str, _Table] = {}


def _table(descriptor: Descriptor) -> _Table:
    known = _TABLES.get(descriptor.full_name)
    if known is not None:
        return known
    table = _Table()
    _TABLES[descriptor.full_name] = table  # before the fields: messages may nest themselves
    for field in descriptor.fields:
        convert = _field_converter(descriptor, field)
        entry = (field.name, field.json_name, convert)
        table.fields[field.json_name] = entry
        table.fields[field.name] = entry
    return table


def _field_converter(owner: Descriptor, field: FieldDescriptor) -> Convert:
    single: Convert
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name == AnyValue.DESCRIPTOR.full_name:
            single = _any_value
        else:
            single = _message_converter(field.message_type)
    elif field.type == FieldDescriptor.TYPE_ENUM:
        single = _enum(field.enum_type)
    elif field.type == FieldDescriptor.TYPE_BYTES:
        in_span = owner.full_name in (Span.DESCRIPTOR.full_name, Span.Link.DESCRIPTOR.full_name)
        size = _ID_SIZES.get(field.name) if in_span else None
        single = _hex_id(size) if size else _base64
    elif field.type in _INT_RANGES:
        single = _integer(*_INT_RANGES[field.type])
    elif field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        single = _double
    elif field.type == FieldDescriptor.TYPE_BOOL:
        single = _boolean
    else:
        single = _string
    if not field.is_repeated:
        return single
    if field.message_type is not None and field.message_type.name == "KeyValue":
        return _key_values
    return _repeated(single)


def _repeated(single: Convert) -> Convert:
    def convert(value: Any, depth: int) -> list[Any]:
        if type(value) is not list:
            raise _Bad("expected an array")
        out: list[Any] = []
        try:
            for item in value:
                out.append(single(item, depth))
        except _Bad as bad:
            bad.path.append(f"[{len(out)}]")
            raise
        return out

    return convert


def _message_converter(descriptor: Descriptor) -> Convert:
    table = _table(descriptor)

    def convert(value: Any, depth: int) -> dict[str, Any]:
        return _message(value, table, depth + 1)

    return convert


def _message(node: Any, table: _Table, depth: int) -> dict[str, Any]:
    if type(node) is not dict:
        raise _Bad("expected an object")
    if depth > MAX_DEPTH:
        raise _Bad("nested too deeply")
    fields = table.fields
    out: dict[str, Any] = {}
    for key, value in node.items():
        entry = fields.get(key)
        if entry is None or value is None:  # unknown fields are ignored; null is the default
            continue
        name, path_name, convert = entry
        try:
            out[name] = convert(value, depth)
        except _Bad as bad:
            bad.path.append(path_name)
            raise
    return out


_ANY_VALUE_TABLE: _Table
_SIMPLE_VALUES: dict[tuple[str, type], tuple[str, Convert | None]] = {}
"""The one-key ``AnyValue`` forms read without the generic walk: (key, JSON type) → (field, converter)."""


def _any_value(node: Any, depth: int) -> dict[str, Any]:
    if type(node) is dict and len(node) == 1:  # the common case: one string, bool or number
        for key, value in node.items():
            simple = _SIMPLE_VALUES.get((key, type(value)))
            if simple is not None:
                convert = simple[1]
                if convert is None:
                    return {simple[0]: value}
                try:
                    return {simple[0]: convert(value, depth)}
                except _Bad as bad:
                    bad.path.append(key)
                    raise
    return _message(node, _ANY_VALUE_TABLE, depth + 1)


def _key_values(value: Any, depth: int) -> list[dict[str, Any]]:
    """A ``KeyValue`` list (attributes, map values): a fast path for ``{"key", "value"}`` pairs."""
    if type(value) is not list:
        raise _Bad("expected an array")
    out: list[dict[str, Any]] = []
    append = out.append
    simple_values = _SIMPLE_VALUES
    try:
        for item in value:
            if type(item) is dict and len(item) == 2:
                key = item.get("key")
                any_value = item.get("value")
                if type(key) is str and type(any_value) is dict:
                    if len(any_value) == 1:
                        for value_key, inner in any_value.items():
                            simple = simple_values.get((value_key, type(inner)))
                            if simple is not None and simple[1] is None:
                                append({"key": key, "value": {simple[0]: inner}})
                                break
                        else:
                            simple = None
                        if simple is not None:
                            continue
                    try:
                        append({"key": key, "value": _any_value(any_value, depth + 1)})
                    except _Bad as bad:
                        bad.path.append("value")
                        raise
                    continue
            append(_message(item, _KEY_VALUE_TABLE, depth + 1))
    except _Bad as bad:
        bad.path.append(f"[{len(out)}]")
        raise
    return out


_KEY_VALUE_TABLE: Final = _table(KeyValue.DESCRIPTOR)
_ANY_VALUE_TABLE = _table(AnyValue.DESCRIPTOR)
_REQUEST_TABLE: Final = _table(ExportTraceServiceRequest.DESCRIPTOR)
_SIMPLE_VALUES.update(
    {
        (spelling, kind): (name, convert)
        for name, kind, convert in (
            ("string_value", str, None),
            ("bool_value", bool, None),
            ("int_value", str, _ANY_VALUE_TABLE.fields["int_value"][2]),
            ("int_value", int, _ANY_VALUE_TABLE.fields["int_value"][2]),
            ("double_value", float, None),
        )
        for spelling in (name, _ANY_VALUE_TABLE.fields[name][1])
    }
)


def _load_transcode() -> Callable[[bytes], bytes | None] | None:
    if os.environ.get(PURE_PYTHON_ENV) == "1":
        return None
    try:
        import otel_impact.processors.intake._otlp_json as _otlp_json  # noqa: PLC0415 (optional, compiled)
    except ImportError:  # not built: no compiler at install time
        return None
    return _otlp_json.transcode


_transcode: Final = _load_transcode()

NATIVE_JSON: Final[bool] = _transcode is not None
"""Whether `json_to_protobuf` tries the compiled transcoder first."""


def try_compiled(body: bytes) -> bytes | None:
    """What `json_to_protobuf` returns for ``body``, or None where the compiled transcoder declines
    it or is not in use (`NATIVE_JSON`). Releases the GIL while it reads: fit for a thread."""
    return None if _transcode is None else _transcode(body)


def json_to_protobuf(body: bytes) -> bytes:
    """Convert an OTLP/JSON ExportTraceServiceRequest to protobuf bytes; raises `InvalidJson`.

    The bytes are what upb's ``SerializeToString`` writes for the request (fields in number
    order, defaults left out), whichever implementation (`NATIVE_JSON`) produced them.
    """
    if _transcode is not None:
        fast = _transcode(body)
        if fast is not None:
            return fast
    return _json_to_protobuf_python(body)


def _json_to_protobuf_python(body: bytes) -> bytes:
    """The walk: every body, every error (`json_to_protobuf` without the compiled fast path)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if "recursion" in str(error).lower() or "depth" in str(error).lower():
            raise InvalidJson("the JSON is nested too deeply") from None
        raise InvalidJson(f"not valid JSON (JSONDecodeError at position {error.pos})") from None
    if not isinstance(document, dict):
        raise InvalidJson("expected a JSON object with resourceSpans")
    try:
        arguments = _message(document, _REQUEST_TABLE, 1)
    except _Bad as bad:
        raise InvalidJson(f"{bad.where()}: {bad.problem}") from None
    except RecursionError:
        raise InvalidJson("the JSON is nested too deeply") from None
    try:
        request = ExportTraceServiceRequest(**arguments)
        serialized: bytes = request.SerializeToString()
    except (RecursionError, ValueError, TypeError):
        raise InvalidJson("the request does not match the OTLP schema") from None
    return serialized
