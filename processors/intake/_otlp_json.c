/* The compiled half of otel_impact.processors.intake.otlp_json: OTLP/JSON trace requests straight
 * to OTLP/protobuf wire bytes, in one pass, with no Python objects in between.
 *
 * Contract: transcode(body: bytes) -> bytes | None. When it returns bytes, they are what
 * json_to_protobuf's Python walk returns for the same body: the same fields in field-number order,
 * defaults left out as proto3 leaves them out, so byte for byte what upb's SerializeToString()
 * writes. It returns None for anything it is not sure about, and the Python walk then decides
 * (its result or its error). None is always correct; bytes for a body the Python walk refuses
 * would be a bug. So this side is strict:
 *
 *   - JSON: RFC 8259 only, UTF-8 checked (no overlong forms, no encoded surrogates, nothing past
 *     U+10FFFF), escapes checked (a \u surrogate must be a proper pair), no byte order mark,
 *     nesting at most MAX_DEPTH arrays and objects (below the Python walk's 64 message levels);
 *   - keys: both spellings (lowerCamelCase and the proto field names), written without escapes;
 *     a key with an escape, a known field given twice, a field this file does not handle
 *     (entityRefs, keyStrindex, stringValueStrindex) or two members of AnyValue's oneof: None;
 *   - values: strings for string fields; exactly 32/16 hex digits (or "") for ids; integers as
 *     JSON integers or strings of ASCII digits (a sign only where the field is signed) within the
 *     field's range; enums as names, or non-negative integers (JSON or ASCII digits); doubles as
 *     JSON numbers (correctly rounded: exact arithmetic where it is exact, else the C library's
 *     strtod in the C locale, else None); bytesValue as canonical base64 (standard or URL-safe
 *     alphabet, padded or not); null as "not given". Everything else: None.
 *
 * The JSON reader (tokens, UTF-8, escapes, numbers) is in _otlp_json_read.h; this file holds the
 * schema and the protobuf writer.
 *
 * Output: fields are written as they come; a nested message gets a one-byte length that is
 * widened (its content moved) when the length needs more bytes; a message whose fields came out
 * of field-number order has its fields moved into order when it closes. Every write goes through
 * out_reserve, which checks the buffer's growth for overflow. The GIL is released while the body
 * (an immutable bytes object) is read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "_otlp_json_read.h"

#define MAX_FIELDS 20 /* more than any message below declares */

/* ---- output buffer ------------------------------------------------------------------------ */


static int
out_reserve(state *s, size_t more)
{
    if (more <= s->cap - s->len) {
        return 0;
    }
    if (more > ((size_t)PY_SSIZE_T_MAX >> 1) - s->len) {
        return -1;
    }
    size_t cap = s->cap ? s->cap : 256;
    while (cap - s->len < more) {
        cap *= 2; /* cap < 2 * (len + more) <= PY_SSIZE_T_MAX: no overflow */
    }
    uint8_t *grown = realloc(s->out, cap);
    if (grown == NULL) {
        return -1;
    }
    s->out = grown;
    s->cap = cap;
    return 0;
}

static inline int
varint_size(uint64_t v)
{
    int n = 1;
    while (v >= 0x80u) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline void
put_varint(state *s, uint64_t v) /* room already reserved */
{
    while (v >= 0x80u) {
        s->out[s->len++] = (uint8_t)(v | 0x80u);
        v >>= 7;
    }
    s->out[s->len++] = (uint8_t)v;
}

static int
write_varint_field(state *s, uint32_t number, uint64_t v)
{
    if (out_reserve(s, 2 + 10) < 0) {
        return -1;
    }
    put_varint(s, (uint64_t)number << 3);
    put_varint(s, v);
    return 0;
}

static int
write_fixed_field(state *s, uint32_t number, uint64_t v, int bytes)
{
    if (out_reserve(s, 2 + 8) < 0) {
        return -1;
    }
    put_varint(s, ((uint64_t)number << 3) | (bytes == 8 ? 1u : 5u));
    for (int i = 0; i < bytes; i++) {
        s->out[s->len++] = (uint8_t)(v >> (8 * i));
    }
    return 0;
}

/* ---- messages ----------------------------------------------------------------------------- */

enum kind {
    K_STRING,     /* string */
    K_HEX,        /* bytes written as hex of `size` bytes */
    K_BASE64,     /* bytes written as base64 */
    K_FIXED64,    /* fixed64 */
    K_FIXED32,    /* fixed32 */
    K_UINT32,     /* uint32 (varint) */
    K_INT64,      /* int64 (varint) */
    K_ENUM,       /* an open enum (int32 varint): a name, or a non-negative integer */
    K_BOOL,       /* bool */
    K_DOUBLE,     /* double */
    K_MESSAGE,    /* a singular message */
    K_REPEATED,   /* a repeated message */
    K_UNHANDLED,  /* a known field this file leaves to the Python walk */
};

enum message {
    M_REQUEST, M_RESOURCE_SPANS, M_RESOURCE, M_SCOPE_SPANS, M_SCOPE, M_SPAN, M_EVENT, M_LINK,
    M_STATUS, M_KEY_VALUE, M_ANY_VALUE, M_ARRAY_VALUE, M_KVLIST, M_COUNT,
};

enum { E_SPAN_KIND, E_STATUS_CODE }; /* K_ENUM's arg */

typedef struct {
    const char *name;      /* the proto field name */
    const char *json_name; /* lowerCamelCase */
    uint8_t number;
    uint8_t kind;
    uint8_t arg; /* K_HEX: size; K_MESSAGE, K_REPEATED: enum message */
} field;

typedef struct {
    const field *fields;
    int count;
    int oneof; /* every field is a member of one oneof: written even when default, at most one */
} message_type;

#define F(name, json, number, kind, arg) {name, json, number, kind, arg}
static const field request_fields[] = {F("resource_spans", "resourceSpans", 1, K_REPEATED, M_RESOURCE_SPANS)};
static const field resource_spans_fields[] = {
    F("resource", "resource", 1, K_MESSAGE, M_RESOURCE),
    F("scope_spans", "scopeSpans", 2, K_REPEATED, M_SCOPE_SPANS),
    F("schema_url", "schemaUrl", 3, K_STRING, 0),
};
static const field resource_fields[] = {
    F("attributes", "attributes", 1, K_REPEATED, M_KEY_VALUE),
    F("dropped_attributes_count", "droppedAttributesCount", 2, K_UINT32, 0),
    F("entity_refs", "entityRefs", 3, K_UNHANDLED, 0),
};
static const field scope_spans_fields[] = {
    F("scope", "scope", 1, K_MESSAGE, M_SCOPE),
    F("spans", "spans", 2, K_REPEATED, M_SPAN),
    F("schema_url", "schemaUrl", 3, K_STRING, 0),
};
static const field scope_fields[] = {
    F("name", "name", 1, K_STRING, 0),
    F("version", "version", 2, K_STRING, 0),
    F("attributes", "attributes", 3, K_REPEATED, M_KEY_VALUE),
    F("dropped_attributes_count", "droppedAttributesCount", 4, K_UINT32, 0),
};
static const field span_fields[] = {
    F("trace_id", "traceId", 1, K_HEX, 16),
    F("span_id", "spanId", 2, K_HEX, 8),
    F("trace_state", "traceState", 3, K_STRING, 0),
    F("parent_span_id", "parentSpanId", 4, K_HEX, 8),
    F("flags", "flags", 16, K_FIXED32, 0),
    F("name", "name", 5, K_STRING, 0),
    F("kind", "kind", 6, K_ENUM, E_SPAN_KIND),
    F("start_time_unix_nano", "startTimeUnixNano", 7, K_FIXED64, 0),
    F("end_time_unix_nano", "endTimeUnixNano", 8, K_FIXED64, 0),
    F("attributes", "attributes", 9, K_REPEATED, M_KEY_VALUE),
    F("dropped_attributes_count", "droppedAttributesCount", 10, K_UINT32, 0),
    F("events", "events", 11, K_REPEATED, M_EVENT),
    F("dropped_events_count", "droppedEventsCount", 12, K_UINT32, 0),
    F("links", "links", 13, K_REPEATED, M_LINK),
    F("dropped_links_count", "droppedLinksCount", 14, K_UINT32, 0),
    F("status", "status", 15, K_MESSAGE, M_STATUS),
};
static const field event_fields[] = {
    F("time_unix_nano", "timeUnixNano", 1, K_FIXED64, 0),
    F("name", "name", 2, K_STRING, 0),
    F("attributes", "attributes", 3, K_REPEATED, M_KEY_VALUE),
    F("dropped_attributes_count", "droppedAttributesCount", 4, K_UINT32, 0),
};
static const field link_fields[] = {
    F("trace_id", "traceId", 1, K_HEX, 16),
    F("span_id", "spanId", 2, K_HEX, 8),
    F("trace_state", "traceState", 3, K_STRING, 0),
    F("attributes", "attributes", 4, K_REPEATED, M_KEY_VALUE),
    F("dropped_attributes_count", "droppedAttributesCount", 5, K_UINT32, 0),
    F("flags", "flags", 6, K_FIXED32, 0),
};
static const field status_fields[] = {
    F("message", "message", 2, K_STRING, 0),
    F("code", "code", 3, K_ENUM, E_STATUS_CODE),
};
static const field key_value_fields[] = {
    F("key", "key", 1, K_STRING, 0),
    F("value", "value", 2, K_MESSAGE, M_ANY_VALUE),
    F("key_strindex", "keyStrindex", 3, K_UNHANDLED, 0),
};
static const field any_value_fields[] = {
    F("string_value", "stringValue", 1, K_STRING, 0),
    F("bool_value", "boolValue", 2, K_BOOL, 0),
    F("int_value", "intValue", 3, K_INT64, 0),
    F("double_value", "doubleValue", 4, K_DOUBLE, 0),
    F("array_value", "arrayValue", 5, K_MESSAGE, M_ARRAY_VALUE),
    F("kvlist_value", "kvlistValue", 6, K_MESSAGE, M_KVLIST),
    F("bytes_value", "bytesValue", 7, K_BASE64, 0),
    F("string_value_strindex", "stringValueStrindex", 8, K_UNHANDLED, 0),
};
static const field array_value_fields[] = {F("values", "values", 1, K_REPEATED, M_ANY_VALUE)};
static const field kvlist_fields[] = {F("values", "values", 1, K_REPEATED, M_KEY_VALUE)};
#undef F

#define TYPE(fields, oneof) {fields, (int)(sizeof(fields) / sizeof(fields[0])), oneof}
static const message_type types[M_COUNT] = {
    [M_REQUEST] = TYPE(request_fields, 0),
    [M_RESOURCE_SPANS] = TYPE(resource_spans_fields, 0),
    [M_RESOURCE] = TYPE(resource_fields, 0),
    [M_SCOPE_SPANS] = TYPE(scope_spans_fields, 0),
    [M_SCOPE] = TYPE(scope_fields, 0),
    [M_SPAN] = TYPE(span_fields, 0),
    [M_EVENT] = TYPE(event_fields, 0),
    [M_LINK] = TYPE(link_fields, 0),
    [M_STATUS] = TYPE(status_fields, 0),
    [M_KEY_VALUE] = TYPE(key_value_fields, 0),
    [M_ANY_VALUE] = TYPE(any_value_fields, 1),
    [M_ARRAY_VALUE] = TYPE(array_value_fields, 0),
    [M_KVLIST] = TYPE(kvlist_fields, 0),
};
#undef TYPE

static int
find_field(const message_type *type, const jstring *key)
{
    if (key->escaped) {
        return -1;
    }
    for (int i = 0; i < type->count; i++) {
        const field *f = &type->fields[i];
        if ((strlen(f->json_name) == key->raw_len && memcmp(f->json_name, key->raw, key->raw_len) == 0)
            || (strlen(f->name) == key->raw_len && memcmp(f->name, key->raw, key->raw_len) == 0)) {
            return i;
        }
    }
    return -2; /* unknown: ignored */
}

static int write_message(state *s, uint32_t number, int type);

/* base64 (either alphabet, padded or not, no stray bits) decoded into the output (room reserved). */
static int
put_base64(state *s, const jstring *str)
{
    static int8_t table[256];
    static int ready; /* benign race: every thread writes the same values */
    if (!ready) {
        memset(table, -1, sizeof table);
        const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        for (int i = 0; i < 62; i++) {
            table[(uint8_t)alphabet[i]] = (int8_t)i;
        }
        table['+'] = table['-'] = 62;
        table['/'] = table['_'] = 63;
        ready = 1;
    }
    size_t n = str->raw_len, padding = 0;
    const uint8_t *p = str->raw;
    while (n > 0 && p[n - 1] == '=' && padding < 2) {
        n--;
        padding++;
    }
    if (n % 4 == 1 || (padding && (n + padding) % 4 != 0)) {
        return -1;
    }
    uint32_t bits = 0;
    int held = 0;
    for (size_t i = 0; i < n; i++) {
        int v = table[p[i]];
        if (v < 0) {
            return -1;
        }
        bits = (bits << 6) | (uint32_t)v;
        held += 6;
        if (held >= 8) {
            held -= 8;
            s->out[s->len++] = (uint8_t)(bits >> held);
            bits &= (1u << held) - 1u;
        }
    }
    return bits == 0 ? 0 : -1; /* leftover bits must be zero (canonical) */
}

static const char *const span_kinds[] = {"SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
                                          "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER", NULL};
static const char *const status_codes[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR", NULL};

/* An enum given as a string: one of its names (numbered in order), or ASCII digits. */
static int
enum_value(int which, const jstring *str, uint64_t *value)
{
    const char *const *names = which == E_SPAN_KIND ? span_kinds : status_codes;
    for (int i = 0; names[i] != NULL; i++) {
        if (strlen(names[i]) == str->raw_len && memcmp(names[i], str->raw, str->raw_len) == 0) {
            *value = (uint64_t)i;
            return 0;
        }
    }
    return digits_value(str->raw, str->raw_len, INT32_MAX, value);
}

/* One field's value (s->p at it). 0: done (written, or a default left out); -1: None. */
static int
write_field(state *s, const field *f, int always)
{
    uint8_t c = *s->p;
    if (c == 'n') { /* null: the field is not given */
        return match_literal(s, "null", 4);
    }
    uint64_t bits;
    int got;
    switch (f->kind) {
    case K_STRING: {
        jstring str;
        if (c != '"' || scan_string(s, &str) < 0) {
            return -1;
        }
        if (str.decoded_len == 0 && !always) {
            return 0;
        }
        if (out_reserve(s, 2 + 10 + str.decoded_len) < 0) {
            return -1;
        }
        put_varint(s, ((uint64_t)f->number << 3) | 2u);
        put_varint(s, str.decoded_len);
        put_string(s, &str);
        return 0;
    }
    case K_HEX: {
        jstring str;
        if (c != '"' || scan_string(s, &str) < 0 || str.escaped) {
            return -1;
        }
        if (str.raw_len == 0) {
            return 0;
        }
        if (str.raw_len != 2u * f->arg || out_reserve(s, 2 + f->arg) < 0) {
            return -1;
        }
        put_varint(s, ((uint64_t)f->number << 3) | 2u);
        put_varint(s, f->arg);
        for (size_t i = 0; i < str.raw_len; i += 2) {
            int high = hex_value(str.raw[i]), low = hex_value(str.raw[i + 1]);
            if (high < 0 || low < 0) {
                return -1;
            }
            s->out[s->len++] = (uint8_t)(high << 4 | low);
        }
        return 0;
    }
    case K_BASE64: {
        jstring str;
        if (c != '"' || scan_string(s, &str) < 0 || str.escaped) {
            return -1;
        }
        size_t size = str.raw_len / 4 * 3 + 3;
        if (out_reserve(s, 2 + 10 + size) < 0) {
            return -1;
        }
        size_t tag_at = s->len;
        put_varint(s, ((uint64_t)f->number << 3) | 2u);
        size_t length_at = s->len;
        s->len += (size_t)varint_size(size); /* room for the largest length; fixed below */
        size_t start = s->len;
        if (put_base64(s, &str) < 0) {
            return -1;
        }
        size_t decoded = s->len - start;
        if (decoded == 0 && !always) {
            s->len = tag_at;
            return 0;
        }
        memmove(s->out + length_at + varint_size(decoded), s->out + start, decoded);
        s->len = length_at;
        put_varint(s, decoded);
        s->len += decoded;
        return 0;
    }
    case K_FIXED64:
        if ((got = read_integer(s, 0, UINT64_MAX, 0, &bits)) < 0) {
            return -1;
        }
        return (got == 0 || (bits == 0 && !always)) ? 0 : write_fixed_field(s, f->number, bits, 8);
    case K_FIXED32:
    case K_UINT32:
        if ((got = read_integer(s, 0, UINT32_MAX, 0, &bits)) < 0) {
            return -1;
        }
        if (got == 0 || (bits == 0 && !always)) {
            return 0;
        }
        return f->kind == K_FIXED32 ? write_fixed_field(s, f->number, bits, 4) : write_varint_field(s, f->number, bits);
    case K_INT64:
        if ((got = read_integer(s, 1, (uint64_t)INT64_MAX, (uint64_t)INT64_MAX + 1u, &bits)) < 0) {
            return -1;
        }
        return (got == 0 || (bits == 0 && !always)) ? 0 : write_varint_field(s, f->number, bits);
    case K_ENUM:
        if (c == '"') {
            jstring str;
            if (scan_string(s, &str) < 0 || str.escaped || enum_value(f->arg, &str, &bits) < 0) {
                return -1;
            }
        } else {
            jnumber num;
            if (scan_number(s, &num) < 0 || !num.integer || num.negative
                || digits_value(num.start, num.len, INT32_MAX, &bits) < 0) {
                return -1;
            }
        }
        return (bits == 0 && !always) ? 0 : write_varint_field(s, f->number, bits);
    case K_BOOL:
        if (c == 't' && match_literal(s, "true", 4) == 0) {
            bits = 1;
        } else if (c == 'f' && match_literal(s, "false", 5) == 0) {
            bits = 0;
        } else {
            return -1;
        }
        return (bits == 0 && !always) ? 0 : write_varint_field(s, f->number, bits);
    case K_DOUBLE: {
        jnumber num;
        double d;
        if (c == '"' || scan_number(s, &num) < 0 || number_to_double(&num, &d) < 0) {
            return -1;
        }
        memcpy(&bits, &d, sizeof bits);
        return (bits == 0 && !always) ? 0 : write_fixed_field(s, f->number, bits, 8);
    }
    case K_MESSAGE:
        return c == '{' ? write_message(s, f->number, f->arg) : -1;
    case K_REPEATED:
        if (c != '[' || ++s->depth > MAX_DEPTH) {
            return -1;
        }
        s->p++;
        skip_ws(s);
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            s->depth--;
            return 0;
        }
        for (;;) {
            if (s->p >= s->end || *s->p != '{' || write_message(s, f->number, f->arg) < 0) {
                return -1;
            }
            skip_ws(s);
            if (s->p >= s->end) {
                return -1;
            }
            if (*s->p == ',') {
                s->p++;
                skip_ws(s);
                continue;
            }
            if (*s->p != ']') {
                return -1;
            }
            s->p++;
            s->depth--;
            return 0;
        }
    default: /* K_UNHANDLED */
        return -1;
    }
}

typedef struct {
    size_t start;
    uint32_t number;
} segment;

/* Put the fields written since `segments[0].start` in field-number order (stable). */
static int
sort_segments(state *s, segment *segments, int count)
{
    size_t begin = segments[0].start, total = s->len - begin;
    size_t ends[MAX_FIELDS];
    for (int i = 0; i < count; i++) {
        ends[i] = i + 1 < count ? segments[i + 1].start : s->len;
    }
    int order[MAX_FIELDS];
    for (int i = 0; i < count; i++) {
        int j = i;
        while (j > 0 && segments[order[j - 1]].number > segments[i].number) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    uint8_t *copy = malloc(total ? total : 1);
    if (copy == NULL) {
        return -1;
    }
    memcpy(copy, s->out + begin, total);
    size_t at = begin;
    for (int k = 0; k < count; k++) {
        int i = order[k];
        size_t n = ends[i] - segments[i].start;
        memcpy(s->out + at, copy + (segments[i].start - begin), n);
        at += n;
    }
    free(copy);
    return 0;
}

/* The members of a JSON object (s->p at '{') as the fields of `type`, in field-number order. */
static int
write_fields(state *s, int type_index)
{
    const message_type *type = &types[type_index];
    segment segments[MAX_FIELDS];
    int count = 0, unordered = 0, members = 0;
    uint32_t seen = 0, last = 0;
    if (++s->depth > MAX_DEPTH) {
        return -1;
    }
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        jstring key;
        if (s->p >= s->end || *s->p != '"' || scan_string(s, &key) < 0) {
            return -1;
        }
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':') {
            return -1;
        }
        s->p++;
        skip_ws(s);
        if (s->p >= s->end) {
            return -1;
        }
        int index = find_field(type, &key);
        if (index == -1) {
            return -1;
        }
        if (index == -2) {
            if (skip_value(s) < 0) {
                return -1;
            }
        } else {
            const field *f = &type->fields[index];
            if (seen & (1u << index)) {
                return -1; /* given twice */
            }
            seen |= 1u << index;
            if (*s->p != 'n' && type->oneof && members++) {
                return -1; /* a second member of the oneof */
            }
            if (f->number < last) {
                unordered = 1;
            }
            last = f->number;
            segments[count].start = s->len;
            segments[count].number = f->number;
            count++;
            if (write_field(s, f, type->oneof) < 0) {
                return -1;
            }
        }
        skip_ws(s);
        if (s->p >= s->end) {
            return -1;
        }
        if (*s->p == ',') {
            s->p++;
            skip_ws(s);
            continue;
        }
        if (*s->p != '}') {
            return -1;
        }
        s->p++;
        s->depth--;
        return unordered ? sort_segments(s, segments, count) : 0;
    }
}

/* A nested message: its tag, its length, then its fields (s->p at '{'). */
static int
write_message(state *s, uint32_t number, int type)
{
    if (out_reserve(s, 2 + 1) < 0) {
        return -1;
    }
    put_varint(s, ((uint64_t)number << 3) | 2u);
    size_t length_at = s->len++; /* one byte, widened below when the length needs more */
    if (write_fields(s, type) < 0) {
        return -1;
    }
    size_t length = s->len - length_at - 1;
    int width = varint_size(length);
    if (width > 1) {
        if (out_reserve(s, (size_t)width - 1) < 0) {
            return -1;
        }
        memmove(s->out + length_at + width, s->out + length_at + 1, length);
    }
    s->len = length_at;
    put_varint(s, length);
    s->len += length;
    return 0;
}

/* The whole body: one object, then only whitespace. */
static int
transcode_body(state *s)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != '{' || write_fields(s, M_REQUEST) < 0) {
        return -1;
    }
    skip_ws(s);
    return s->p == s->end ? 0 : -1;
}

static PyObject *
transcode(PyObject *module, PyObject *body)
{
    (void)module;
    if (!PyBytes_Check(body)) {
        PyErr_Format(PyExc_TypeError, "transcode() needs bytes, not %.100s", Py_TYPE(body)->tp_name);
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(body);
    if (size >= INT32_MAX) {
        Py_RETURN_NONE; /* the Python walk decides */
    }
    state s = {(const uint8_t *)PyBytes_AS_STRING(body), (const uint8_t *)PyBytes_AS_STRING(body) + size,
               NULL, 0, 0, 0};
    int rc;
    /* bytes are immutable and `body` is borrowed from the caller, who holds it: safe without the GIL */
    Py_BEGIN_ALLOW_THREADS
    rc = out_reserve(&s, (size_t)size / 2 + 64) < 0 ? -1 : transcode_body(&s);
    Py_END_ALLOW_THREADS
    PyObject *result;
    if (rc < 0) {
        result = Py_None;
        Py_INCREF(result);
    } else {
        result = PyBytes_FromStringAndSize((const char *)s.out, (Py_ssize_t)s.len);
    }
    free(s.out);
    return result;
}

static PyMethodDef methods[] = {
    {"transcode", transcode, METH_O,
     "transcode(body, /) -> bytes | None. See otel_impact.processors.intake.otlp_json."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "otel_impact.processors.intake._otlp_json",
    "Compiled OTLP/JSON transcoder; use otel_impact.processors.intake.otlp_json.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__otlp_json(void)
{
#ifdef __GLIBC__
    if (c_locale == (locale_t)0) {
        c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); /* on failure: no slow doubles */
    }
#endif
    return PyModule_Create(&module);
}
