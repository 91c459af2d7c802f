"""Processor-side pseudonymization: raw identity attributes from services without the SDK.

A Java or Go service may put a raw ``enduser.id`` on its spans. `IdentityRewriter` replaces the
configured attributes' values with exactly the keyed pseudonym the SDK's ``set_customer`` would
give for the same ID and key, so both kinds of service count as the same customer. It looks
wherever an attribute can sit: resource, instrumentation scope, span, span event and span link
attributes, and inside kvlist and array values (to `MAX_DEPTH` levels; a deeper request is
refused as invalid, as is one that does not decode, e.g. an identity value that is not UTF-8).
A value that cannot be pseudonymized (a float, a map) is removed rather than forwarded raw.

Which attributes hold raw identities is the wire contract's rule, the one the SDK's PII guard
follows too (`otel_impact._attributes.raw_identity_keys`): the configured ones plus
``feature_flag.context.id``; and an ``impact.customer.hash`` whose value is not a pseudonym is
pseudonymized, while one that is a pseudonym is left alone.

Only requests that may carry such an attribute are decoded; the others are forwarded as their
original bytes. Detection searches the raw bytes (in C): for the raw identity key names, and
for ``impact.customer.hash`` each occurrence must be followed by a pseudonym, so a request from
the SDK is done there. A request that passes that test is decoded in full and walked; it is
re-encoded only when something was replaced or removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from otel_impact import ConfigurationError, HashKey, Pseudonymizer, load_hash_key
from otel_impact._attributes import CLAIMED_PSEUDONYMS, PSEUDONYM_PATTERN, is_pseudonym, raw_identity_keys
from otel_impact._hash_key import read_key_file
from otel_impact._pseudonymize import ALGORITHMS
from otel_impact.processors.config import PseudonymizationConfig
from otel_impact.proto.view import TracesData

_PSEUDONYM_VALUE: Final = re.compile(b"\\x0a\\x20" + PSEUDONYM_PATTERN.pattern.encode())
"""The undecoded AnyValue bytes of a pseudonym: a string (field 1) of 32 bytes, then the pseudonym."""


_NESTED_TAGS: Final = (b"\x2a", b"\x32")
"""The first byte of an AnyValue holding an array (field 5) or a kvlist (field 6)."""
MAX_DEPTH: Final = 24
"""How deep kvlist and array values may nest in a request that is pseudonymized; deeper is refused.

Protobuf itself refuses to decode more than 100 nested messages, about 31 levels of kvlists in a
span attribute; this limit lies below that, so every too-deep request gets the same answer."""


class BadIdentityData(ValueError):
    """A request whose identities cannot be pseudonymized safely; it is refused as invalid, not forwarded."""


def _claimed_pseudonym_kv(key: str) -> re.Pattern[bytes]:
    """``key`` followed by an AnyValue holding a pseudonym, as every OTLP encoder writes a KeyValue
    (key, then value: field 2, 34 bytes). Starts at the name, not the key's tag: faster to find."""
    return re.compile(re.escape(key.encode()) + b"\\x12\\x22" + _PSEUDONYM_VALUE.pattern)


def build_rewriter(config: PseudonymizationConfig, environ: Mapping[str, str] | None = None) -> IdentityRewriter | None:
    """The rewriter for ``config``, or ``None`` when pseudonymization is off.

    Raises `ConfigurationError` (naming the setting and the fix) when it is on and the key is
    missing or unusable: the processor must not forward raw identities it was told to hide.
    """
    if not config.enabled:
        return None
    if config.algorithm not in ALGORITHMS:
        raise ConfigurationError(
            "pseudonymization.algorithm",
            f"unknown algorithm {config.algorithm!r}",
            f"use one of {', '.join(ALGORITHMS)}",
        )
    if config.key_file:
        key: HashKey | None = HashKey(
            read_key_file(config.key_file, setting="pseudonymization.key_file"), source="pseudonymization.key_file"
        )
    else:
        key = load_hash_key(environ)
    if key is None:
        raise ConfigurationError(
            "pseudonymization.attributes",
            "pseudonymization is configured but no key is set",
            "set OTEL_IMPACT_HASH_KEY or OTEL_IMPACT_HASH_KEY_FILE to the key your services use "
            "(or pseudonymization.key_file), or remove pseudonymization.attributes",
        )
    pseudonymizer = Pseudonymizer(key, algorithm=config.algorithm)  # type: ignore[arg-type,unused-ignore]
    return IdentityRewriter(config.attributes, pseudonymizer)


class IdentityRewriter:
    """Finds and rewrites raw identity attributes in OTLP trace requests. Not thread-safe (one event loop).

    ``attributes`` are the configured raw identity attributes; the rewriter also watches the
    ones the wire contract always treats as raw identity or as claimed pseudonyms.
    """

    def __init__(self, attributes: Iterable[str], pseudonymizer: Pseudonymizer) -> None:
        self.keys = raw_identity_keys(attributes)
        """Attributes whose every value is a raw identity."""
        self.claimed = CLAIMED_PSEUDONYMS
        """Attributes whose values must be pseudonyms; other values are raw identities."""
        self._raw_keys = frozenset(self.keys)
        self._watched = self._raw_keys | frozenset(self.claimed)
        self._key_bytes = tuple(key.encode() for key in (*self.keys, *self.claimed))
        self._raw_key_bytes = tuple(key.encode() for key in self.keys)
        self._claim_checks = tuple((key.encode(), _claimed_pseudonym_kv(key)) for key in self.claimed)
        self._pseudonymizer = pseudonymizer
        self.replaced = 0
        self.removed = 0

    @property
    def key_id(self) -> str:
        return self._pseudonymizer.key_id

    def may_need_rewrite(self, data: bytes) -> bool:
        """A cheap first test on the raw bytes (in C, no decoding).

        False when no raw identity key name occurs at all and each occurrence of a claimed key
        name is a KeyValue holding a pseudonym (the SDK's ``impact.customer.hash``): the common
        request then costs a few byte searches, not a walk over its spans.
        """
        if any(raw in data for raw in self._raw_key_bytes):
            return True
        for name, valid in self._claim_checks:
            seen = data.count(name)
            if seen and len(valid.findall(data)) != seen:
                return True
        return False

    def needs_rewrite(self, view: TracesData) -> bool:
        """Whether any resource, scope, span, event or link in ``view`` may carry a raw identity.

        Top-level attributes are looked up by key; in the bytes the view leaves opaque (the
        scope, links, and kvlist or array values) any watched key name counts. `rewrite`
        decides for sure: it returns the original bytes when it finds nothing to replace.
        """
        for resource_spans in view.resource_spans:
            if self._raw_in(resource_spans.resource.attributes):
                return True
            for scope in resource_spans.scope_spans:
                if scope.scope and self._names_in(scope.scope):
                    return True
                for span in scope.spans:
                    if self._raw_in(span.attributes):
                        return True
                    if span.events:
                        for event in span.events:
                            if self._raw_in(event.attributes):
                                return True
                    if span.links:
                        for link in span.links:
                            if self._names_in(link):
                                return True
        return False

    def _names_in(self, raw: bytes) -> bool:
        return any(name in raw for name in self._key_bytes)

    def _raw_in(self, attrs: Any) -> bool:
        """Whether a view attribute map holds a raw identity (a raw key, a claim that is not a
        pseudonym, or a watched key name inside a kvlist or array value)."""
        for key in self.keys:
            if key in attrs:
                return True
        for key in self.claimed:
            raw = attrs.get(key)
            if raw is not None and _PSEUDONYM_VALUE.fullmatch(raw) is None:
                return True
        return any(raw[:1] in _NESTED_TAGS and self._names_in(raw) for raw in attrs.values())

    def rewrite(self, data: bytes) -> tuple[bytes, int, int]:
        """``data`` with identities pseudonymized; returns (bytes, replaced, removed).

        Looks everywhere an attribute can sit: resource, scope, span, event and link attributes,
        and inside their kvlist and array values, down to `MAX_DEPTH` levels. When nothing is
        found the original bytes are returned (not re-encoded). Raises `BadIdentityData` when
        the request cannot be rewritten safely: it does not parse as a full OTLP request (e.g.
        an identity value that is not UTF-8) or nests deeper than `MAX_DEPTH`.
        """
        try:
            request = ExportTraceServiceRequest.FromString(data)
        except (DecodeError, RecursionError) as error:
            raise BadIdentityData(
                "the request cannot be decoded for pseudonymization (invalid UTF-8 in a string, "
                "or values nested too deeply)"
            ) from error
        replaced = removed = 0
        clean = self._clean
        for resource_spans in request.resource_spans:
            r, d = clean(resource_spans.resource.attributes, 0)
            replaced, removed = replaced + r, removed + d
            for scope_spans in resource_spans.scope_spans:
                r, d = clean(scope_spans.scope.attributes, 0)
                replaced, removed = replaced + r, removed + d
                for span in scope_spans.spans:
                    r, d = clean(span.attributes, 0)
                    replaced, removed = replaced + r, removed + d
                    for event in span.events:
                        r, d = clean(event.attributes, 0)
                        replaced, removed = replaced + r, removed + d
                    for link in span.links:
                        r, d = clean(link.attributes, 0)
                        replaced, removed = replaced + r, removed + d
        if not replaced and not removed:
            return data, 0, 0
        self.replaced += replaced
        self.removed += removed
        return request.SerializeToString(), replaced, removed

    def _clean(self, attributes: Any, depth: int) -> tuple[int, int]:
        """Pseudonymize the watched keys of one attribute list and, recursively, of nested values."""
        if depth > MAX_DEPTH:
            raise BadIdentityData(f"attribute values are nested more than {MAX_DEPTH} levels deep")
        watched = self._watched
        replaced = removed = 0
        rewrite = False
        for kv in attributes:
            if kv.key in watched:
                rewrite = True
            else:
                kind = kv.value.WhichOneof("value")
                if kind == "kvlist_value" or kind == "array_value":
                    r, d = self._clean_nested(kv.value, depth + 1)
                    replaced, removed = replaced + r, removed + d
        if not rewrite:
            return replaced, removed
        kept: list[KeyValue] = []
        for kv in attributes:
            if kv.key not in watched or (kv.key not in self._raw_keys and _is_pseudonym_value(kv.value)):
                kept.append(kv)
                continue
            _check_depth(kv.value, depth + 1)
            value = self._pseudonymize(kv.value)
            if value is None:
                removed += 1
                continue
            replaced += 1
            kept.append(KeyValue(key=kv.key, value=value))
        del attributes[:]
        attributes.extend(kept)
        return replaced, removed

    def _clean_nested(self, value: AnyValue, depth: int) -> tuple[int, int]:
        """Clean the attribute lists inside a kvlist or an array value."""
        if depth > MAX_DEPTH:
            raise BadIdentityData(f"attribute values are nested more than {MAX_DEPTH} levels deep")
        if value.WhichOneof("value") == "kvlist_value":
            return self._clean(value.kvlist_value.values, depth)
        replaced = removed = 0
        for item in value.array_value.values:
            kind = item.WhichOneof("value")
            if kind == "kvlist_value" or kind == "array_value":
                r, d = self._clean_nested(item, depth + 1)
                replaced, removed = replaced + r, removed + d
        return replaced, removed

    def _pseudonymize(self, value: AnyValue) -> AnyValue | None:
        kind = value.WhichOneof("value")
        if kind == "array_value":
            items = [self._scalar(item) for item in value.array_value.values]
            kept = [item for item in items if item is not None]
            if not kept:
                return None
            result = AnyValue()
            result.array_value.values.extend(AnyValue(string_value=item) for item in kept)
            return result
        scalar = self._scalar(value)
        return None if scalar is None else AnyValue(string_value=scalar)

    def _scalar(self, value: AnyValue) -> str | None:
        kind = value.WhichOneof("value")
        if kind == "string_value":
            return self._pseudonymizer.pseudonymize(value.string_value)
        if kind == "int_value":
            return self._pseudonymizer.pseudonymize(value.int_value)
        if kind == "bytes_value":
            return self._pseudonymizer.pseudonymize(value.bytes_value)
        return None


def _check_depth(value: AnyValue, depth: int) -> None:
    """Raise `BadIdentityData` when ``value`` (about to be dropped or replaced) nests past `MAX_DEPTH`.

    A removed value is not forwarded, but the same request must get the same answer whichever
    key holds the deep value.
    """
    if depth > MAX_DEPTH:
        raise BadIdentityData(f"attribute values are nested more than {MAX_DEPTH} levels deep")
    kind = value.WhichOneof("value")
    if kind == "kvlist_value":
        for kv in value.kvlist_value.values:
            _check_depth(kv.value, depth + 1)
    elif kind == "array_value":
        for item in value.array_value.values:
            _check_depth(item, depth + 1)


def _is_pseudonym_value(value: AnyValue) -> bool:
    return value.WhichOneof("value") == "string_value" and is_pseudonym(value.string_value)
