"""OTLP/protobuf bytes as the OTLP/JSON document a collector would send: hex ids, integer enums,
lowerCamelCase keys. Shared by the JSON intake benchmark and the decoder's tests."""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def otlp_json_document(data: bytes) -> dict[str, Any]:
    """The OTLP/JSON form of the ``ExportTraceServiceRequest`` in ``data``."""
    document = json_format.MessageToDict(ExportTraceServiceRequest.FromString(data), use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", ()):
        for scope_spans in resource_spans.get("scopeSpans", ()):
            for span in scope_spans.get("spans", ()):
                for node in (span, *span.get("links", ())):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in node:
                            node[key] = base64.b64decode(node[key]).hex()
    return document
