"""OTLP/JSON trace requests to OTLP/protobuf bytes, as the OTLP specification encodes JSON.

The differences from protobuf's canonical JSON mapping: trace and span ids are hex strings
(not base64), enums are integers (names are accepted too), keys are lowerCamelCase (the
original field names are accepted too), and unknown fields are ignored, as the specification
requires of receivers. 64-bit integers may be strings or numbers.

Errors are `InvalidJson` with a message that names where the problem is but never repeats the
offending value (it may be a customer ID).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

_ID_FIELDS = {"traceId": 16, "trace_id": 16, "spanId": 8, "span_id": 8, "parentSpanId": 8, "parent_span_id": 8}
_FAILED_FIELD = re.compile(r"Failed to parse (\w+) field")
MAX_DEPTH = 64


class InvalidJson(ValueError):
    """The body is not an OTLP/JSON trace request; the message says where, without values."""


def _items(node: dict[str, Any], camel: str, snake: str, path: str) -> list[tuple[str, dict[str, Any]]]:
    key = camel if camel in node else snake
    value = node.get(key)
    where = f"{path}.{camel}" if path else camel
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidJson(f"{where}: expected an array")
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidJson(f"{where}[{index}]: expected an object")
        out.append((f"{where}[{index}]", item))
    return out


def _fix_ids(node: dict[str, Any], path: str) -> None:
    for field, size in _ID_FIELDS.items():
        value = node.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidJson(f"{path}.{field}: expected a hex string")
        if value == "":
            continue
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        if len(raw) != size:
            raise InvalidJson(f"{path}.{field}: expected {size * 2} hex characters")
        node[field] = base64.b64encode(raw).decode("ascii")


def json_to_protobuf(body: bytes) -> bytes:
    """Convert an OTLP/JSON ExportTraceServiceRequest to protobuf bytes; raises `InvalidJson`."""
    try:
        document = json.loads(body)
    except RecursionError:
        raise InvalidJson("the JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidJson(f"not valid JSON ({type(error).__name__} at position {getattr(error, 'pos', '?')})") from None
    if not isinstance(document, dict):
        raise InvalidJson("expected a JSON object with resourceSpans")
    for rs_path, resource_spans in _items(document, "resourceSpans", "resource_spans", ""):
        for ss_path, scope_spans in _items(resource_spans, "scopeSpans", "scope_spans", rs_path):
            for span_path, span in _items(scope_spans, "spans", "spans", ss_path):
                _fix_ids(span, span_path)
                for link_path, link in _items(span, "links", "links", span_path):
                    _fix_ids(link, link_path)
    request = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True, max_recursion_depth=MAX_DEPTH)
    except json_format.ParseError as error:
        where = ".".join(_FAILED_FIELD.findall(str(error))) or "the request"
        raise InvalidJson(f"{where}: invalid value or type") from None
    except (RecursionError, binascii.Error, ValueError, TypeError):
        raise InvalidJson("the request does not match the OTLP schema") from None
    serialized: bytes = request.SerializeToString()
    return serialized
