/* The compiled half of otel_impact.proto.prefilter: keep only the spans of an OTLP trace request
 * that carry a given attribute key, in one pass over the request's bytes.
 *
 * Contract (prefilter.py documents it for callers): filter_spans(data, key[, unless_key,
 * unless_values[, sample_below]]) -> (span_count, kept). A span is kept when it carries `key`,
 * unless its attribute `unless_key` (as the view's map reads it: the last entry) has one of the
 * raw AnyValue encodings in `unless_values` (unless_key None: no exclusion). A span is also kept,
 * whatever its attributes, when its trace is sampled: its trace_id (the last field 1 of the span,
 * as the view reads it) has 16 bytes and its last 7, read big-endian, are below `sample_below`
 * (0: no trace is sampled; 2**56: every trace with a 16-byte id).
 * It accepts exactly the inputs that view.count_spans accepts, i.e. what the protobuf runtime's
 * decoder (upb) accepts when it parses the SpanCount message of impact_view.proto, and raises
 * google.protobuf.message.DecodeError on the rest. SpanCount declares three nested messages
 * (TracesData.resource_spans = 1, ResourceSpans.scope_spans = 2, ScopeSpans.spans = 2); every
 * other field, on every level and inside every span, is an unknown field whose framing upb checks:
 *
 *   - a tag is a varint of at most 5 bytes whose value fits 32 bits; field number 0 is malformed
 *     in the three declared messages and the request, but not in a span (SpanFrame declares no
 *     field) nor inside a group;
 *   - wire types 6 and 7 are malformed; a varint value has at most 10 bytes (the bits past 64 are
 *     dropped);
 *   - a length is a varint of at most 5 bytes, below INT32_MAX, that fits inside the enclosing
 *     message;
 *   - fixed32/fixed64 values fit inside the enclosing message;
 *   - a start-group tag opens a group that must be closed by an end-group tag of the same field
 *     number inside the same message; an end-group tag anywhere else is malformed;
 *   - nesting: each message and group takes one level of a depth budget of MAX_DEPTH (the Python
 *     runtime's default); a span's own fields sit three levels down.
 *
 * A field is "known" only by its number and wire type together: a resource_spans field with a
 * varint wire type is an unknown field, as it is for upb. These rules were read off upb's
 * behaviour (protobuf 7.36) and are pinned by tests/unit/proto/test_prefilter.py, which compares
 * this module with count_spans on edge cases and generated inputs.
 *
 * Hostile input: every read is checked against the end of the enclosing message before it
 * happens; lengths are compared as 64-bit values before any pointer arithmetic; there is no
 * recursion (the three message levels are three functions, groups are skipped with a bounded
 * stack). The output is written into one bytes object of len(data) + OUT_SLACK bytes, which bounds
 * every write (see out_reserve), and shrunk once at the end.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 100 /* upb's depth limit as the Python protobuf runtime sets it */
#define WT_VARINT 0u
#define WT_I64 1u
#define WT_LEN 2u
#define WT_SGROUP 3u
#define WT_EGROUP 4u
#define WT_I32 5u
#define TAG_RESOURCE_SPANS ((1u << 3) | WT_LEN) /* TracesData.resource_spans */
#define TAG_SCOPE_SPANS ((2u << 3) | WT_LEN)    /* ResourceSpans.scope_spans */
#define TAG_SPANS ((2u << 3) | WT_LEN)          /* ScopeSpans.spans */
#define TAG_ATTRIBUTES ((9u << 3) | WT_LEN)     /* Span.attributes */
#define TAG_TRACE_ID ((1u << 3) | WT_LEN)       /* Span.trace_id */
#define TRACE_ID_LEN 16
#define SAMPLE_BYTES 7 /* the trace id's last 7 bytes: random in W3C trace context level 2 ids */
#define SAMPLE_ALL ((uint64_t)1 << (8 * SAMPLE_BYTES))
#define TAG_KEY ((1u << 3) | WT_LEN)            /* KeyValue.key */
#define TAG_VALUE ((2u << 3) | WT_LEN)          /* KeyValue.value */
/* Levels of the depth budget left inside each message (upb counts the outermost as level 0). */
#define DEPTH_TOP MAX_DEPTH
#define DEPTH_RESOURCE (MAX_DEPTH - 1)
#define DEPTH_SCOPE (MAX_DEPTH - 2)
#define DEPTH_SPAN (MAX_DEPTH - 3)
#define DEPTH_KEYVALUE (MAX_DEPTH - 4)
#define HEADER_MAX 6 /* a tag byte and a length below 2**31 (at most 5 varint bytes) */
/* The output never runs ahead of the input consumed by more than the two open headers' reserve. */
#define OUT_SLACK (4 * HEADER_MAX)

typedef const uint8_t *cursor;

#define MAX_UNLESS_VALUES 8

typedef struct {
    const uint8_t *key;
    Py_ssize_t key_len;
    const uint8_t *unless_key; /* NULL: no exclusion */
    Py_ssize_t unless_key_len;
    const uint8_t *unless_values[MAX_UNLESS_VALUES];
    Py_ssize_t unless_value_lens[MAX_UNLESS_VALUES];
    Py_ssize_t unless_count;
    uint64_t sample_below; /* 0: no trace sampled; SAMPLE_ALL: every trace with a 16-byte id */
    uint8_t *out;
    Py_ssize_t used; /* bytes written to out */
    Py_ssize_t cap;  /* size of out */
    Py_ssize_t spans;
    Py_ssize_t kept;
} walk_state;

/* A varint of at most max_bytes (<= 10) bytes; bits past 64 are dropped, as upb drops them. */
static int
read_varint(cursor *pp, const uint8_t *end, unsigned max_bytes, uint64_t *value)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (unsigned i = 0; i < max_bytes; i++) {
        if (p >= end) {
            return -1;
        }
        uint8_t byte = *p++;
        v |= (uint64_t)(byte & 0x7Fu) << (7u * i);
        if (byte < 0x80u) {
            *pp = p;
            *value = v;
            return 0;
        }
    }
    return -1;
}

/* A tag: at most 5 bytes, and a value that fits 32 bits. */
static inline int
read_tag(cursor *pp, const uint8_t *end, uint32_t *tag)
{
    uint64_t v;
    if (*pp < end && **pp < 0x80u) { /* the usual one-byte tag */
        *tag = *(*pp)++;
        return 0;
    }
    if (read_varint(pp, end, 5, &v) < 0 || v > UINT32_MAX) {
        return -1;
    }
    *tag = (uint32_t)v;
    return 0;
}

/* A length prefix: at most 5 bytes, below INT32_MAX, within the enclosing message. */
static inline int
read_length(cursor *pp, const uint8_t *end, Py_ssize_t *length)
{
    uint64_t v;
    if (*pp < end && **pp < 0x80u) { /* shorter than 128 bytes */
        v = *(*pp)++;
        if (v > (uint64_t)(end - *pp)) {
            return -1;
        }
        *length = (Py_ssize_t)v;
        return 0;
    }
    if (read_varint(pp, end, 5, &v) < 0 || v >= (uint64_t)INT32_MAX || v > (uint64_t)(end - *pp)) {
        return -1;
    }
    *length = (Py_ssize_t)v;
    return 0;
}

/* The value of a varint, fixed64, length-delimited or fixed32 field (the tag already read). */
static int
skip_scalar(cursor *pp, const uint8_t *end, uint32_t wire_type)
{
    uint64_t ignored;
    Py_ssize_t length;
    switch (wire_type) {
    case WT_VARINT:
        return read_varint(pp, end, 10, &ignored);
    case WT_I64:
        length = 8;
        break;
    case WT_LEN:
        if (read_length(pp, end, &length) < 0) {
            return -1;
        }
        break;
    case WT_I32:
        length = 4;
        break;
    default: /* 6 and 7 do not exist; groups are handled by the caller */
        return -1;
    }
    if (length > end - *pp) {
        return -1;
    }
    *pp += length;
    return 0;
}

/* The rest of a group opened by a start-group tag of `number`, with `depth` levels left in the
 * message that holds it. Nested groups go on a bounded stack instead of the C stack. Inside a
 * group, field number 0 is accepted (upb checks it only in declared messages). */
static int
skip_group(cursor *pp, const uint8_t *end, uint32_t number, int depth)
{
    uint32_t open[MAX_DEPTH];
    int top = 0;
    if (depth < 1 || depth > MAX_DEPTH) {
        return -1;
    }
    open[top++] = number;
    while (top > 0) {
        uint32_t tag;
        if (read_tag(pp, end, &tag) < 0) {
            return -1; /* includes a group still open at the end of its message */
        }
        uint32_t field = tag >> 3, wire_type = tag & 7u;
        if (wire_type == WT_EGROUP) {
            if (field != open[top - 1]) {
                return -1;
            }
            top--;
        } else if (wire_type == WT_SGROUP) {
            if (top >= depth) {
                return -1;
            }
            open[top++] = field;
        } else if (skip_scalar(pp, end, wire_type) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Any field the walk does not look into, its tag already read; zero_ok where field number 0 is
 * accepted (in a span). */
static int
skip_field(cursor *pp, const uint8_t *end, uint32_t tag, int depth, int zero_ok)
{
    uint32_t field = tag >> 3, wire_type = tag & 7u;
    if ((field == 0 && !zero_ok) || wire_type == WT_EGROUP) {
        return -1; /* an end-group tag outside a group ends no message the walk parses */
    }
    if (wire_type == WT_SGROUP) {
        return skip_group(pp, end, field, depth);
    }
    return skip_scalar(pp, end, wire_type);
}

/* Reads a KeyValue as the view's attribute map does: a map entry whose key is its last field 1
 * ("" when there is none) and whose value is its last field 2 (empty when there is none); an entry
 * with any field besides key and value goes to the span's unknown fields instead of the map.
 * Returns 1 for a map entry (key and value set), 0 for an entry that is not in the map, -1 when
 * its framing cannot be read (not part of what count_spans checks: the caller keeps the span,
 * and whoever parses it sees the error). */
static int
read_entry(const uint8_t *p, const uint8_t *end, const uint8_t **key, Py_ssize_t *key_len,
           const uint8_t **value, Py_ssize_t *value_len)
{
    int unknown = 0;
    *key = *value = NULL;
    *key_len = *value_len = 0;
    while (p < end) {
        uint32_t tag;
        if (read_tag(&p, end, &tag) < 0) {
            return -1;
        }
        if (tag == TAG_KEY || tag == TAG_VALUE) {
            Py_ssize_t length;
            if (read_length(&p, end, &length) < 0) {
                return -1;
            }
            if (tag == TAG_KEY) {
                *key = p;
                *key_len = length;
            } else {
                *value = p;
                *value_len = length;
            }
            p += length;
        } else if (skip_field(&p, end, tag, DEPTH_KEYVALUE, 0) < 0) {
            return -1;
        } else {
            unknown = 1;
        }
    }
    return unknown ? 0 : 1;
}

static int
same_bytes(const uint8_t *a, Py_ssize_t a_len, const uint8_t *b, Py_ssize_t b_len)
{
    return a_len == b_len && (a_len == 0 || memcmp(a, b, (size_t)a_len) == 0);
}

/* Whether a trace id (as the view reads it) belongs to a sampled trace (see the contract above). */
static int
trace_sampled(const uint8_t *trace_id, Py_ssize_t trace_id_len, uint64_t below)
{
    uint64_t value = 0;
    if (below == 0 || trace_id == NULL || trace_id_len != TRACE_ID_LEN) {
        return 0;
    }
    for (int i = TRACE_ID_LEN - SAMPLE_BYTES; i < TRACE_ID_LEN; i++) {
        value = (value << 8) | trace_id[i];
    }
    return value < below;
}

/* Checks the framing of one span's fields; sets *carries when the span is to be kept: one of its
 * attributes has the key (or cannot be read) and its unless attribute does not exclude it, or
 * its trace is sampled. */
static int
scan_span(const uint8_t *p, const uint8_t *end, const walk_state *st, int *carries)
{
    int unreadable = 0;
    const uint8_t *trace_id = NULL; /* the last trace_id field, when there is one */
    Py_ssize_t trace_id_len = 0;
    const uint8_t *unless_value = NULL; /* the unless attribute's last value, when it has one */
    Py_ssize_t unless_value_len = 0;
    *carries = 0;
    while (p < end) {
        uint32_t tag;
        if (read_tag(&p, end, &tag) < 0) {
            return -1;
        }
        if (tag == TAG_ATTRIBUTES) {
            Py_ssize_t length;
            if (read_length(&p, end, &length) < 0) {
                return -1;
            }
            if (!unreadable && (!*carries || st->unless_key != NULL)) {
                const uint8_t *key, *value;
                Py_ssize_t key_len, value_len;
                int entry = read_entry(p, p + length, &key, &key_len, &value, &value_len);
                if (entry < 0) {
                    unreadable = *carries = 1;
                } else if (entry > 0) {
                    if (same_bytes(key, key_len, st->key, st->key_len)) {
                        *carries = 1;
                    }
                    if (st->unless_key != NULL && same_bytes(key, key_len, st->unless_key, st->unless_key_len)) {
                        unless_value = value != NULL ? value : (const uint8_t *)"";
                        unless_value_len = value_len;
                    }
                }
            }
            p += length;
        } else if (tag == TAG_TRACE_ID) {
            Py_ssize_t length;
            if (read_length(&p, end, &length) < 0) {
                return -1;
            }
            trace_id = p;
            trace_id_len = length;
            p += length;
        } else if (skip_field(&p, end, tag, DEPTH_SPAN, 1) < 0) {
            return -1;
        }
    }
    if (*carries && !unreadable && unless_value != NULL) {
        for (Py_ssize_t i = 0; i < st->unless_count; i++) {
            if (same_bytes(unless_value, unless_value_len, st->unless_values[i], st->unless_value_lens[i])) {
                *carries = 0;
                break;
            }
        }
    }
    if (!*carries && trace_sampled(trace_id, trace_id_len, st->sample_below)) {
        *carries = 1;
    }
    return 0;
}

/* Room for n more output bytes. The walk never needs more than OUT_SLACK beyond the input's
 * length, so a failure here is a bug, reported as one rather than written past the buffer. */
static int
out_reserve(const walk_state *st, Py_ssize_t n)
{
    return n <= st->cap - st->used ? 0 : -2;
}

static int
out_copy(walk_state *st, const uint8_t *from, const uint8_t *to)
{
    Py_ssize_t n = to - from;
    if (out_reserve(st, n) < 0) {
        return -2;
    }
    memcpy(st->out + st->used, from, (size_t)n);
    st->used += n;
    return 0;
}

/* Opens a message in the output: reserves room for its header, returns where it starts. */
static int
out_open(walk_state *st, Py_ssize_t *start)
{
    if (out_reserve(st, HEADER_MAX) < 0) {
        return -2;
    }
    *start = st->used;
    st->used += HEADER_MAX;
    return 0;
}

/* Closes a message opened at `start`: writes its tag and length, moves its content up to them. */
static void
out_close(walk_state *st, Py_ssize_t start, uint8_t tag)
{
    Py_ssize_t content = start + HEADER_MAX;
    /* length <= cap < 2**31 + OUT_SLACK < 2**35: at most 5 varint bytes, so n <= HEADER_MAX */
    Py_ssize_t length = st->used - content;
    uint8_t header[HEADER_MAX];
    size_t n = 0;
    uint64_t v = (uint64_t)length;
    header[n++] = tag;
    while (v >= 0x80u) {
        header[n++] = (uint8_t)(v | 0x80u);
        v >>= 7;
    }
    header[n++] = (uint8_t)v;
    memcpy(st->out + start, header, n);
    memmove(st->out + start + (Py_ssize_t)n, st->out + content, (size_t)length);
    st->used = start + (Py_ssize_t)n + length;
}

/* One ScopeSpans: its other fields are copied, its spans kept or dropped. */
static int
walk_scope(const uint8_t *p, const uint8_t *end, walk_state *st)
{
    Py_ssize_t start;
    Py_ssize_t kept_before = st->kept;
    if (out_open(st, &start) < 0) {
        return -2;
    }
    while (p < end) {
        const uint8_t *field_start = p;
        uint32_t tag;
        int rc;
        if (read_tag(&p, end, &tag) < 0) {
            return -1;
        }
        if (tag == TAG_SPANS) {
            Py_ssize_t length;
            int carries;
            if (read_length(&p, end, &length) < 0 || scan_span(p, p + length, st, &carries) < 0) {
                return -1;
            }
            p += length;
            st->spans++;
            if (carries) {
                st->kept++;
                if ((rc = out_copy(st, field_start, p)) < 0) {
                    return rc;
                }
            }
        } else {
            if (skip_field(&p, end, tag, DEPTH_SCOPE, 0) < 0) {
                return -1;
            }
            if ((rc = out_copy(st, field_start, p)) < 0) {
                return rc;
            }
        }
    }
    if (st->kept == kept_before) {
        st->used = start; /* no span kept: the scope is left out */
    } else {
        out_close(st, start, (uint8_t)TAG_SCOPE_SPANS);
    }
    return 0;
}

/* One ResourceSpans: its other fields are copied, its scopes filtered. */
static int
walk_resource(const uint8_t *p, const uint8_t *end, walk_state *st)
{
    Py_ssize_t start;
    Py_ssize_t kept_before = st->kept;
    if (out_open(st, &start) < 0) {
        return -2;
    }
    while (p < end) {
        const uint8_t *field_start = p;
        uint32_t tag;
        int rc;
        if (read_tag(&p, end, &tag) < 0) {
            return -1;
        }
        if (tag == TAG_SCOPE_SPANS) {
            Py_ssize_t length;
            if (read_length(&p, end, &length) < 0) {
                return -1;
            }
            if ((rc = walk_scope(p, p + length, st)) < 0) {
                return rc;
            }
            p += length;
        } else {
            if (skip_field(&p, end, tag, DEPTH_RESOURCE, 0) < 0) {
                return -1;
            }
            if ((rc = out_copy(st, field_start, p)) < 0) {
                return rc;
            }
        }
    }
    if (st->kept == kept_before) {
        st->used = start;
    } else {
        out_close(st, start, (uint8_t)TAG_RESOURCE_SPANS);
    }
    return 0;
}

/* The whole request. Returns 0, -1 on malformed framing, -2 on an internal error. Fields of the
 * request other than resource_spans are checked and not copied. */
static int
walk_request(const uint8_t *p, const uint8_t *end, walk_state *st)
{
    while (p < end) {
        uint32_t tag;
        if (read_tag(&p, end, &tag) < 0) {
            return -1;
        }
        if (tag == TAG_RESOURCE_SPANS) {
            Py_ssize_t length;
            int rc;
            if (read_length(&p, end, &length) < 0) {
                return -1;
            }
            if ((rc = walk_resource(p, p + length, st)) < 0) {
                return rc;
            }
            p += length;
        } else if (skip_field(&p, end, tag, DEPTH_TOP, 0) < 0) {
            return -1;
        }
    }
    return 0;
}

static PyObject *decode_error; /* google.protobuf.message.DecodeError */

static PyObject *
filter_spans(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer data, key;
    PyObject *out = NULL, *result = NULL;
    walk_state st;
    int rc;

    if (nargs != 2 && nargs != 4 && nargs != 5) {
        PyErr_Format(PyExc_TypeError, "filter_spans() takes 2, 4 or 5 positional arguments (%zd given)", nargs);
        return NULL;
    }
    memset(&st, 0, sizeof st);
    if (nargs == 5) {
        unsigned long long below;
        if (!PyLong_Check(args[4])) {
            PyErr_SetString(PyExc_TypeError, "filter_spans(): sample_below must be an int");
            return NULL;
        }
        below = PyLong_AsUnsignedLongLong(args[4]);
        if (below == (unsigned long long)-1 && PyErr_Occurred()) {
            return NULL; /* negative or past 64 bits */
        }
        if (below > SAMPLE_ALL) {
            PyErr_SetString(PyExc_ValueError, "filter_spans(): sample_below must be at most 2**56");
            return NULL;
        }
        st.sample_below = (uint64_t)below;
    }
    if (nargs >= 4 && args[2] != Py_None) {
        PyObject *values = args[3];
        if (!PyBytes_Check(args[2]) || !PyTuple_Check(values) || PyTuple_GET_SIZE(values) > MAX_UNLESS_VALUES) {
            PyErr_Format(PyExc_TypeError, "filter_spans(): unless_key must be bytes and unless_values a tuple of "
                                          "at most %d bytes", MAX_UNLESS_VALUES);
            return NULL;
        }
        st.unless_key = (const uint8_t *)PyBytes_AS_STRING(args[2]);
        st.unless_key_len = PyBytes_GET_SIZE(args[2]);
        st.unless_count = PyTuple_GET_SIZE(values);
        for (Py_ssize_t i = 0; i < st.unless_count; i++) {
            PyObject *value = PyTuple_GET_ITEM(values, i);
            if (!PyBytes_Check(value)) {
                PyErr_SetString(PyExc_TypeError, "filter_spans(): unless_values must hold bytes");
                return NULL;
            }
            st.unless_values[i] = (const uint8_t *)PyBytes_AS_STRING(value);
            st.unless_value_lens[i] = PyBytes_GET_SIZE(value);
        }
    }
    if (PyObject_GetBuffer(args[0], &data, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &key, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    /* upb keeps buffer offsets in 32 bits; the rules above are only known to match below 2 GiB
     * (far above any request the processor's intake limits accept), so refuse the rest. */
    if (data.len >= INT32_MAX) {
        PyErr_SetString(decode_error, "Error parsing message: too large");
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, data.len + OUT_SLACK);
    if (out == NULL) {
        goto done;
    }
    st.key = (const uint8_t *)key.buf;
    st.key_len = key.len;
    st.out = (uint8_t *)PyBytes_AS_STRING(out);
    st.cap = data.len + OUT_SLACK;
    Py_BEGIN_ALLOW_THREADS
    rc = walk_request((const uint8_t *)data.buf, (const uint8_t *)data.buf + data.len, &st);
    Py_END_ALLOW_THREADS
    if (rc == -1) {
        PyErr_SetString(decode_error, "Error parsing message: malformed span framing");
        goto done;
    }
    if (rc < 0) {
        PyErr_SetString(PyExc_SystemError, "filter_spans: output bound exceeded");
        goto done;
    }
    if (st.kept == 0) {
        Py_SETREF(out, PyBytes_FromStringAndSize(NULL, 0));
    } else if (st.kept == st.spans && PyBytes_CheckExact(args[0])) {
        Py_INCREF(args[0]);
        Py_SETREF(out, args[0]);
    } else if (_PyBytes_Resize(&out, st.used) < 0) {
        goto done; /* _PyBytes_Resize released out and set out to NULL */
    }
    if (out != NULL) {
        PyObject *count = PyLong_FromSsize_t(st.spans);
        if (count != NULL && (result = PyTuple_New(2)) != NULL) {
            PyTuple_SET_ITEM(result, 0, count);
            PyTuple_SET_ITEM(result, 1, out);
            count = out = NULL; /* the tuple owns them */
        }
        Py_XDECREF(count);
    }
done:
    Py_XDECREF(out);
    PyBuffer_Release(&key);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"filter_spans", (PyCFunction)(void (*)(void))filter_spans, METH_FASTCALL,
     "filter_spans(data, key, [unless_key, unless_values, [sample_below,]] /) -> (span_count, kept). "
     "See otel_impact.proto.prefilter."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "otel_impact.proto._prefilter",
    "Compiled span pre-filter; use otel_impact.proto.prefilter.", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__prefilter(void)
{
    PyObject *protobuf_message = PyImport_ImportModule("google.protobuf.message");
    if (protobuf_message == NULL) {
        return NULL;
    }
    decode_error = PyObject_GetAttrString(protobuf_message, "DecodeError");
    Py_DECREF(protobuf_message);
    if (decode_error == NULL) {
        return NULL;
    }
    return PyModule_Create(&module);
}
