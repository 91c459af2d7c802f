/* The JSON half of _otlp_json.c (included by it, and by nothing else): a strict RFC 8259 reader.
 *
 * Every function checks what it reads against s->end before reading it, and returns -1 for
 * anything that is not well-formed JSON, or that the Python side (orjson) would refuse: invalid
 * UTF-8, a lone surrogate escape, a control character in a string, a number whose double is
 * infinite. Containers nest at most MAX_DEPTH deep (the recursion is bounded by it).
 */
#ifndef OTEL_IMPACT_OTLP_JSON_READ_H
#define OTEL_IMPACT_OTLP_JSON_READ_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <locale.h>
#endif

#define MAX_DEPTH 48  /* JSON arrays and objects; the Python walk allows 64 message levels */
#define NUMBER_MAX 64 /* longest number token handed to strtod */

/* The body being read and the protobuf bytes being written. */
typedef struct {
    const uint8_t *p;   /* next unread byte */
    const uint8_t *end; /* one past the body */
    uint8_t *out;
    size_t len, cap;
    int depth;
} state;

/* ---- JSON scanning ------------------------------------------------------------------------ */

static inline void
skip_ws(state *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) {
        s->p++;
    }
}

static inline int
hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20u;
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

static int
read_u_escape(const uint8_t *p, const uint8_t *end, uint32_t *unit) /* p after "\u" */
{
    if (end - p < 4) {
        return -1;
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(p[i]);
        if (h < 0) {
            return -1;
        }
        v = (v << 4) | (uint32_t)h;
    }
    *unit = v;
    return 0;
}

/* One UTF-8 sequence starting at p (lead byte >= 0x80); its length, or -1 when malformed. */
static int
utf8_sequence(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0];
    Py_ssize_t left = end - p;
    if (c >= 0xC2 && c <= 0xDF) {
        return (left >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : -1;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) {
            return -1;
        }
        if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0)) {
            return -1; /* overlong, or an encoded surrogate */
        }
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) {
            return -1;
        }
        if ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)) {
            return -1; /* overlong, or past U+10FFFF */
        }
        return 4;
    }
    return -1;
}

typedef struct {
    const uint8_t *raw; /* the bytes between the quotes */
    size_t raw_len;
    size_t decoded_len; /* UTF-8 bytes once escapes are decoded */
    int escaped;
} jstring;

/* A string token (s->p at its opening quote), checked; s->p ends after the closing quote. */
static int
scan_string(state *s, jstring *str)
{
    const uint8_t *p = s->p + 1, *end = s->end;
    size_t decoded = 0;
    int escaped = 0;
    str->raw = p;
    for (;;) {
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\' && *p < 0x80) {
            p++;
            decoded++;
        }
        if (p >= end) {
            return -1;
        }
        uint8_t c = *p;
        if (c == '"') {
            break;
        }
        if (c < 0x20) {
            return -1;
        }
        if (c >= 0x80) {
            int n = utf8_sequence(p, end);
            if (n < 0) {
                return -1;
            }
            p += n;
            decoded += (size_t)n;
            continue;
        }
        /* a backslash */
        escaped = 1;
        if (end - p < 2) {
            return -1;
        }
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            decoded += 1;
            break;
        case 'u': {
            uint32_t unit, low;
            if (read_u_escape(p + 2, end, &unit) < 0) {
                return -1;
            }
            p += 6;
            if (unit >= 0xD800 && unit <= 0xDBFF) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || read_u_escape(p + 2, end, &low) < 0
                    || low < 0xDC00 || low > 0xDFFF) {
                    return -1; /* a lone high surrogate */
                }
                p += 6;
                decoded += 4;
            } else if (unit >= 0xDC00 && unit <= 0xDFFF) {
                return -1; /* a lone low surrogate */
            } else {
                decoded += unit < 0x80 ? 1 : unit < 0x800 ? 2 : 3;
            }
            break;
        }
        default:
            return -1;
        }
    }
    str->raw_len = (size_t)(p - str->raw);
    str->decoded_len = decoded;
    str->escaped = escaped;
    s->p = p + 1;
    return 0;
}

/* The decoded bytes of a string already checked by scan_string (room reserved). */
static void
put_string(state *s, const jstring *str)
{
    if (!str->escaped) {
        memcpy(s->out + s->len, str->raw, str->raw_len);
        s->len += str->raw_len;
        return;
    }
    const uint8_t *p = str->raw, *end = str->raw + str->raw_len;
    uint8_t *o = s->out + s->len;
    while (p < end) {
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        uint8_t e = p[1];
        p += 2;
        switch (e) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t cp, low;
            (void)read_u_escape(p, end, &cp);
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                (void)read_u_escape(p + 2, end, &low);
                p += 6;
                cp = 0x10000u + ((cp - 0xD800u) << 10) + (low - 0xDC00u);
            }
            if (cp < 0x80) {
                *o++ = (uint8_t)cp;
            } else if (cp < 0x800) {
                *o++ = (uint8_t)(0xC0 | (cp >> 6));
                *o++ = (uint8_t)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *o++ = (uint8_t)(0xE0 | (cp >> 12));
                *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (uint8_t)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (uint8_t)(0xF0 | (cp >> 18));
                *o++ = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
                *o++ = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (uint8_t)(0x80 | (cp & 0x3F));
            }
            break;
        }
        default: /* '"', '\\', '/' */
            *o++ = e;
        }
    }
    s->len = (size_t)(o - s->out);
}

typedef struct {
    const uint8_t *start;
    size_t len;
    int negative;
    int integer; /* no fraction, no exponent */
} jnumber;

/* A number token per RFC 8259 (s->p at '-' or a digit). */
static int
scan_number(state *s, jnumber *num)
{
    const uint8_t *p = s->p, *end = s->end;
    num->start = p;
    num->negative = 0;
    num->integer = 1;
    if (p < end && *p == '-') {
        num->negative = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9') {
        return -1;
    }
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && *p == '.') {
        num->integer = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9') {
            return -1;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        num->integer = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= end || *p < '0' || *p > '9') {
            return -1;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    num->len = (size_t)(p - num->start);
    s->p = p;
    return 0;
}

static int skip_value(state *s);
static int number_to_double(const jnumber *num, double *value);

static int
skip_container(state *s, uint8_t close)
{
    if (++s->depth > MAX_DEPTH) {
        return -1;
    }
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            jstring key;
            if (s->p >= s->end || *s->p != '"' || scan_string(s, &key) < 0) {
                return -1;
            }
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':') {
                return -1;
            }
            s->p++;
        }
        if (skip_value(s) < 0) {
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
        if (*s->p != close) {
            return -1;
        }
        s->p++;
        s->depth--;
        return 0;
    }
}

static int
match_literal(state *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) {
        return -1;
    }
    s->p += n;
    return 0;
}

/* Any JSON value, checked and passed over (s->p at its first byte, whitespace skipped). */
static int
skip_value(state *s)
{
    skip_ws(s);
    if (s->p >= s->end) {
        return -1;
    }
    jstring str;
    jnumber num;
    switch (*s->p) {
    case '"':
        return scan_string(s, &str);
    case '{':
        return skip_container(s, '}');
    case '[':
        return skip_container(s, ']');
    case 't':
        return match_literal(s, "true", 4);
    case 'f':
        return match_literal(s, "false", 5);
    case 'n':
        return match_literal(s, "null", 4);
    default: {
        double ignored;
        if (scan_number(s, &num) < 0) {
            return -1;
        }
        /* the Python side refuses a number whose double is infinite, even where it is ignored */
        return (num.integer && num.len <= 18) ? 0 : number_to_double(&num, &ignored);
    }
    }
}

/* ---- values ------------------------------------------------------------------------------- */

/* Digits [p, p + n) as an unsigned magnitude no larger than max. */
static int
digits_value(const uint8_t *p, size_t n, uint64_t max, uint64_t *value)
{
    uint64_t v = 0;
    if (n == 0 || n > 20) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
        unsigned d = (unsigned)(p[i] - '0');
        if (v > (max - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    *value = v;
    return 0;
}

/* An integer field's value (s->p at the value): a JSON integer or a string of digits, with a
 * leading '-' only when `is_signed`; its magnitude at most max_positive (max_negative if negative).
 * The result is the two's complement bits. 1: read; 0: null; -1: anything else. */
static int
read_integer(state *s, int is_signed, uint64_t max_positive, uint64_t max_negative, uint64_t *bits)
{
    const uint8_t *digits;
    size_t n;
    int negative;
    if (*s->p == '"') {
        jstring str;
        if (scan_string(s, &str) < 0 || str.escaped) {
            return -1;
        }
        digits = str.raw;
        n = str.raw_len;
        negative = n > 0 && digits[0] == '-';
    } else if (*s->p == 'n') {
        return match_literal(s, "null", 4) < 0 ? -1 : 0;
    } else {
        jnumber num;
        if (scan_number(s, &num) < 0 || !num.integer) {
            return -1;
        }
        digits = num.start;
        n = num.len;
        negative = num.negative;
    }
    if (negative) {
        if (!is_signed) {
            return -1;
        }
        digits++;
        n--;
    }
    uint64_t magnitude;
    if (digits_value(digits, n, negative ? max_negative : max_positive, &magnitude) < 0) {
        return -1;
    }
    *bits = negative ? (uint64_t)0 - magnitude : magnitude;
    return 1;
}

#ifdef __GLIBC__
static locale_t c_locale; /* strtod_l in it reads '.' whatever the process's locale */
#endif

static const double powers_of_ten[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A JSON number as the nearest double. Where the decimal digits (at most 15 significant) and the
 * power of ten (at most 22) are both exact doubles, one multiplication or division rounds
 * correctly; the rest goes to strtod (glibc's is correctly rounded), or is refused elsewhere. */
static int
number_to_double(const jnumber *num, double *value)
{
    const uint8_t *p = num->start, *end = num->start + num->len;
    uint64_t mantissa = 0;
    int significant = 0, exponent = 0, exp_value = 0, exp_negative = 0;
    if (*p == '-') {
        p++;
    }
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (mantissa || *p != '0') {
            mantissa = mantissa * 10 + (unsigned)(*p - '0');
            if (++significant > 15) {
                goto slow;
            }
        }
    }
    if (p < end && *p == '.') {
        for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
            if (mantissa || *p != '0') {
                mantissa = mantissa * 10 + (unsigned)(*p - '0');
                if (++significant > 15) {
                    goto slow;
                }
            }
            exponent--;
        }
    }
    if (p < end) { /* 'e' or 'E' */
        p++;
        if (*p == '+' || *p == '-') {
            exp_negative = *p == '-';
            p++;
        }
        for (; p < end; p++) {
            exp_value = exp_value * 10 + (*p - '0');
            if (exp_value > 400) {
                goto slow;
            }
        }
        exponent += exp_negative ? -exp_value : exp_value;
    }
    if (exponent < -22 || exponent > 22) {
        goto slow;
    }
    {
        double d = (double)mantissa; /* exact: below 10**15 */
        d = exponent < 0 ? d / powers_of_ten[-exponent] : d * powers_of_ten[exponent];
        /* "-0" is the integer 0 in Python (so +0.0); "-0.0" is the float -0.0 */
        *value = num->negative && !(num->integer && mantissa == 0) ? -d : d;
        return 0;
    }
slow:
#ifdef __GLIBC__
    if (c_locale != (locale_t)0 && num->len < NUMBER_MAX) {
        char text[NUMBER_MAX];
        char *stop;
        memcpy(text, num->start, num->len);
        text[num->len] = '\0';
        errno = 0;
        double d = strtod_l(text, &stop, c_locale);
        /* ERANGE also flags a (correctly rounded) subnormal result; 0 and infinity are refused */
        if (stop == text + num->len && (errno == 0 || (errno == ERANGE && d != 0.0 && d - d == 0.0))) {
            *value = d;
            return 0;
        }
    }
#endif
    return -1;
}

#endif
