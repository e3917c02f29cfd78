/*
 * JSON parser and writer (see json.h for the contract).
 *
 * Parser invariants: the cursor never passes `end`; every node and decoded
 * string comes from the caller's arena; the only heap memory is the two
 * scratch stacks (pending array items and object members), which are freed
 * before json_parse returns, whatever the outcome. Array items and object
 * members collect on those stacks while their container is open and are
 * copied into one exactly-sized arena array when it closes, so a container
 * of n elements costs n nodes plus one array, with no reallocation.
 *
 * Numbers: the literal is validated against the RFC 8259 grammar first. Up
 * to 19-20 significant digits accumulate exactly in a uint64; when that
 * mantissa is at most 2^53 and the decimal exponent within +-22, the value is
 * one exact multiplication or division by an exact power of ten, which IEEE
 * arithmetic rounds correctly (Clinger's fast path). That covers the numbers
 * a tensor in a request body is made of and involves no locale. Anything else
 * goes to strtod, which reads the decimal point of the current locale: the
 * rouse program never calls setlocale(), so the "C" locale (".") applies. The
 * writer's printf-family formatting relies on the same fact.
 */
#include "common/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parser -------------------------------------------------------------- */

typedef struct parser {
    const unsigned char *start, *p, *end;
    rouse_arena *arena;
    rouse_errbuf *eb;
    int depth;
    json_value **items; /* pending array items of every open array */
    size_t n_items, cap_items;
    json_member *members; /* pending members of every open object */
    size_t n_members, cap_members;
} parser;

static int perr(parser *ps, const unsigned char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records "at byte N: <reason>" and returns ROUSE_EFORMAT. */
static int perr(parser *ps, const unsigned char *at, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    return rouse_err_set(ps->eb, ROUSE_EFORMAT, "at byte %zu: %s", (size_t)(at - ps->start),
                         reason);
}

static int nomem(parser *ps)
{
    return rouse_err_set(ps->eb, ROUSE_ENOMEM, "out of memory while parsing JSON");
}

/* "got 'x'" / "got byte 0xC3" / "got end of input", for error messages. */
static const char *describe(parser *ps, const unsigned char *at, char *buf, size_t len)
{
    if (at >= ps->end) {
        snprintf(buf, len, "end of input");
    } else if (*at >= 0x20 && *at < 0x7f) {
        snprintf(buf, len, "'%c'", *at);
    } else {
        snprintf(buf, len, "byte 0x%02X", *at);
    }
    return buf;
}

static void skip_ws(parser *ps)
{
    const unsigned char *p = ps->p, *end = ps->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

static json_value *new_node(parser *ps, json_type t)
{
    json_value *v = rouse_arena_alloc(ps->arena, sizeof(*v), _Alignof(json_value));
    if (v) v->type = t;
    return v;
}

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 when it is
 * malformed: overlong forms, surrogates and code points above U+10FFFF are
 * rejected (RFC 3629). */
static size_t utf8_seq_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t avail = (size_t)(end - p);
    if (c >= 0xC2 && c <= 0xDF) return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (avail < 3 || (p[2] & 0xC0) != 0x80) return 0;
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (avail < 4 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *out)
{
    if (end - p < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            d = (c | 0x20) - 'a' + 10;
        } else {
            return -1;
        }
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the string literal at ps->p (on the opening quote). The decoded
 * form is never longer than the literal, so one arena allocation of the
 * literal's size suffices. */
static int parse_string(parser *ps, const char **out, size_t *out_len)
{
    const unsigned char *open = ps->p, *s = ps->p + 1, *q = s, *end = ps->end;
    bool simple = true;
    while (q < end && *q != '"') {
        if (*q == '\\') {
            simple = false;
            q += (end - q >= 2) ? 2 : 1;
        } else {
            if (*q < 0x20)
                return perr(ps, q, "control character 0x%02X in a string (escape it)", *q);
            if (*q >= 0x80) simple = false;
            q++;
        }
    }
    if (q >= end) return perr(ps, open, "unterminated string");
    size_t raw = (size_t)(q - s);
    char *buf = rouse_arena_alloc(ps->arena, raw + 1, 1);
    if (!buf) return nomem(ps);
    if (simple) {
        memcpy(buf, s, raw);
        buf[raw] = '\0';
        *out = buf;
        *out_len = raw;
        ps->p = q + 1;
        return 0;
    }
    char *o = buf;
    const unsigned char *p = s;
    while (p < q) {
        unsigned c = *p;
        if (c >= 0x80) {
            size_t n = utf8_seq_len(p, q);
            if (!n) return perr(ps, p, "invalid UTF-8 in a string");
            memcpy(o, p, n);
            o += n;
            p += n;
            continue;
        }
        if (c != '\\') {
            *o++ = (char)c;
            p++;
            continue;
        }
        const unsigned char *esc = p;
        p++; /* p < q: the scan above never ends a string on a backslash */
        switch (*p) {
        case '"':
        case '\\':
        case '/':
            *o++ = (char)*p++;
            break;
        case 'b':
            *o++ = '\b';
            p++;
            break;
        case 'f':
            *o++ = '\f';
            p++;
            break;
        case 'n':
            *o++ = '\n';
            p++;
            break;
        case 'r':
            *o++ = '\r';
            p++;
            break;
        case 't':
            *o++ = '\t';
            p++;
            break;
        case 'u': {
            unsigned cp;
            if (hex4(p + 1, q, &cp) < 0)
                return perr(ps, esc, "\\u must be followed by four hex digits");
            p += 5;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return perr(ps, esc, "lone low surrogate \\u%04X", cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (q - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, q, &lo) < 0 ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return perr(ps, esc, "high surrogate \\u%04X not followed by a low surrogate",
                                cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            o += put_utf8(o, cp);
            break;
        }
        default: {
            char d[32];
            return perr(ps, esc, "invalid escape \\%s", describe(ps, p, d, sizeof(d)));
        }
        }
    }
    *o = '\0';
    *out = buf;
    *out_len = (size_t)(o - buf);
    ps->p = q + 1;
    return 0;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static bool is_digit(unsigned c)
{
    return c - '0' < 10u;
}

/* Accumulates a digit into the exact mantissa; false once the mantissa is
 * full (then and for every later digit: the caller only tracks the exponent). */
static bool mant_push(uint64_t *m, bool *full, unsigned d)
{
    /* Up to this, m * 10 + 9 fits: the common case needs no division. A full
     * mantissa is always above it. */
    const uint64_t safe = (UINT64_MAX - 9) / 10;
    if (*m <= safe) {
        *m = *m * 10 + d;
        return true;
    }
    if (*full || *m > (UINT64_MAX - d) / 10) {
        *full = true;
        return false;
    }
    *m = *m * 10 + d;
    return true;
}

static int parse_number(parser *ps, json_value *v)
{
    const unsigned char *s = ps->p, *q = s, *end = ps->end;
    char d[32];
    bool neg = false;
    if (*q == '-') {
        neg = true;
        q++;
    }
    if (q >= end || !is_digit(*q))
        return perr(ps, q, "expected a digit, got %s", describe(ps, q, d, sizeof(d)));

    uint64_t mant = 0;
    bool full = false;
    bool inexact = false; /* a nonzero digit did not fit the mantissa */
    int64_t exp10 = 0;    /* value = mant * 10^exp10 (when !inexact) */
    if (*q == '0') {
        q++;
        if (q < end && is_digit(*q)) return perr(ps, q - 1, "leading zeros are not allowed");
    } else {
        while (q < end && is_digit(*q)) {
            if (!mant_push(&mant, &full, *q - '0')) {
                exp10++;
                if (*q != '0') inexact = true;
            }
            q++;
        }
    }
    bool integer = true;
    if (q < end && *q == '.') {
        integer = false;
        q++;
        if (q >= end || !is_digit(*q))
            return perr(ps, q, "expected a digit after '.', got %s", describe(ps, q, d, sizeof(d)));
        while (q < end && is_digit(*q)) {
            if (mant_push(&mant, &full, *q - '0')) {
                exp10--;
            } else if (*q != '0') {
                inexact = true;
            }
            q++;
        }
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        integer = false;
        q++;
        bool eneg = false;
        if (q < end && (*q == '+' || *q == '-')) eneg = *q++ == '-';
        if (q >= end || !is_digit(*q))
            return perr(ps, q, "expected a digit in the exponent, got %s",
                        describe(ps, q, d, sizeof(d)));
        int64_t e = 0;
        while (q < end && is_digit(*q)) {
            if (e < 1000000) e = e * 10 + (*q - '0'); /* saturates far beyond any double */
            q++;
        }
        exp10 += eneg ? -e : e;
    }

    v->type = JSON_NUMBER;
    v->u.num.is_int = false;
    v->u.num.is_uint = false;
    v->u.num.i = 0;
    if (integer && !inexact && exp10 == 0) {
        /* Exact integer literal: uint64 to double rounds correctly. */
        double m = (double)mant;
        v->u.num.d = neg ? -m : m;
        if (!neg) {
            v->u.num.i = (int64_t)mant; /* wraps above INT64_MAX; see json.h */
            v->u.num.is_uint = true;
            v->u.num.is_int = mant <= (uint64_t)INT64_MAX;
        } else if (mant <= (uint64_t)INT64_MAX + 1) {
            v->u.num.i = mant == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mant;
            v->u.num.is_int = true;
        }
    } else if (!inexact && (mant == 0 || (mant <= (1ull << 53) && exp10 >= -22 && exp10 <= 22))) {
        double m = (double)mant;
        double r = mant == 0 ? 0.0 : exp10 >= 0 ? m * pow10_exact[exp10] : m / pow10_exact[-exp10];
        v->u.num.d = neg ? -r : r;
    } else {
        /* Slow path (long mantissas, large exponents): strtod on a terminated
         * copy. The literal was validated above, so strtod consumes all of it. */
        size_t len = (size_t)(q - s);
        char small[64];
        char *copy = len < sizeof(small) ? small : malloc(len + 1);
        if (!copy) return nomem(ps);
        memcpy(copy, s, len);
        copy[len] = '\0';
        double r = strtod(copy, NULL);
        if (copy != small) free(copy);
        if (isinf(r)) return perr(ps, s, "number out of range");
        v->u.num.d = r;
    }
    ps->p = q;
    return 0;
}

static int parse_value(parser *ps, json_value **out);

static int expect_literal(parser *ps, const char *lit, size_t len)
{
    if ((size_t)(ps->end - ps->p) < len || memcmp(ps->p, lit, len) != 0)
        return perr(ps, ps->p, "invalid literal (expected '%s')", lit);
    ps->p += len;
    return 0;
}

static int push_item(parser *ps, json_value *v)
{
    if (ps->n_items == ps->cap_items) {
        size_t cap = ps->cap_items ? ps->cap_items * 2 : 256;
        json_value **n = realloc(ps->items, cap * sizeof(*n));
        if (!n) return nomem(ps);
        ps->items = n;
        ps->cap_items = cap;
    }
    ps->items[ps->n_items++] = v;
    return 0;
}

static int push_member(parser *ps, const json_member *mb)
{
    if (ps->n_members == ps->cap_members) {
        size_t cap = ps->cap_members ? ps->cap_members * 2 : 64;
        json_member *n = realloc(ps->members, cap * sizeof(*n));
        if (!n) return nomem(ps);
        ps->members = n;
        ps->cap_members = cap;
    }
    ps->members[ps->n_members++] = *mb;
    return 0;
}

static int parse_array(parser *ps, json_value *v)
{
    char d[32];
    size_t base = ps->n_items;
    int rc;
    ps->p++; /* '[' */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
    } else {
        for (;;) {
            json_value *item;
            if ((rc = parse_value(ps, &item)) < 0) return rc;
            if ((rc = push_item(ps, item)) < 0) return rc;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == ']') {
                ps->p++;
                break;
            }
            return perr(ps, ps->p, "expected ',' or ']', got %s",
                        describe(ps, ps->p, d, sizeof(d)));
        }
    }
    size_t n = ps->n_items - base;
    json_value **items = rouse_arena_alloc(ps->arena, n * sizeof(*items), _Alignof(json_value *));
    if (!items) return nomem(ps);
    if (n) memcpy(items, ps->items + base, n * sizeof(*items));
    ps->n_items = base;
    v->type = JSON_ARRAY;
    v->u.arr.items = items;
    v->u.arr.n = n;
    return 0;
}

static int parse_object(parser *ps, json_value *v)
{
    char d[32];
    size_t base = ps->n_members;
    int rc;
    ps->p++; /* '{' */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
    } else {
        for (;;) {
            json_member mb;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"')
                return perr(ps, ps->p, "expected a string key, got %s",
                            describe(ps, ps->p, d, sizeof(d)));
            if ((rc = parse_string(ps, &mb.key, &mb.key_len)) < 0) return rc;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return perr(ps, ps->p, "expected ':' after a key, got %s",
                            describe(ps, ps->p, d, sizeof(d)));
            ps->p++;
            if ((rc = parse_value(ps, &mb.value)) < 0) return rc;
            if ((rc = push_member(ps, &mb)) < 0) return rc;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == '}') {
                ps->p++;
                break;
            }
            return perr(ps, ps->p, "expected ',' or '}', got %s",
                        describe(ps, ps->p, d, sizeof(d)));
        }
    }
    size_t n = ps->n_members - base;
    json_member *members =
        rouse_arena_alloc(ps->arena, n * sizeof(*members), _Alignof(json_member));
    if (!members) return nomem(ps);
    if (n) memcpy(members, ps->members + base, n * sizeof(*members));
    ps->n_members = base;
    v->type = JSON_OBJECT;
    v->u.obj.members = members;
    v->u.obj.n = n;
    return 0;
}

static int parse_value(parser *ps, json_value **out)
{
    char d[32];
    int rc;
    skip_ws(ps);
    if (ps->p >= ps->end) return perr(ps, ps->p, "expected a value, got end of input");
    json_value *v = new_node(ps, JSON_NULL);
    if (!v) return nomem(ps);
    switch (*ps->p) {
    case '{':
    case '[':
        /* Bounded recursion: only containers recurse, at most JSON_MAX_DEPTH deep. */
        if (ps->depth >= JSON_MAX_DEPTH)
            return perr(ps, ps->p, "nesting deeper than %d levels", JSON_MAX_DEPTH);
        ps->depth++;
        rc = *ps->p == '{' ? parse_object(ps, v) : parse_array(ps, v);
        ps->depth--;
        break;
    case '"':
        v->type = JSON_STRING;
        rc = parse_string(ps, &v->u.str.s, &v->u.str.len);
        break;
    case 't':
        v->type = JSON_TRUE;
        rc = expect_literal(ps, "true", 4);
        break;
    case 'f':
        v->type = JSON_FALSE;
        rc = expect_literal(ps, "false", 5);
        break;
    case 'n':
        v->type = JSON_NULL;
        rc = expect_literal(ps, "null", 4);
        break;
    default:
        if (*ps->p == '-' || is_digit(*ps->p)) {
            rc = parse_number(ps, v);
        } else {
            rc = perr(ps, ps->p, "expected a value, got %s", describe(ps, ps->p, d, sizeof(d)));
        }
        break;
    }
    if (rc < 0) return rc;
    *out = v;
    return 0;
}

int json_parse(const char *text, size_t len, rouse_arena *arena, json_value **out, rouse_errbuf *eb)
{
    parser ps = {
        .start = (const unsigned char *)text,
        .p = (const unsigned char *)text,
        .end = (const unsigned char *)text + len,
        .arena = arena,
        .eb = eb,
    };
    json_value *root = NULL;
    int rc = parse_value(&ps, &root);
    if (rc == 0) {
        skip_ws(&ps);
        if (ps.p < ps.end) {
            char d[32];
            rc = perr(&ps, ps.p, "unexpected %s after the end of the document",
                      describe(&ps, ps.p, d, sizeof(d)));
        }
    }
    free(ps.items);
    free(ps.members);
    if (rc < 0) return rc;
    *out = root;
    return 0;
}

/* ---- accessors ------------------------------------------------------------ */

const json_value *json_get(const json_value *v, const char *key)
{
    if (!v || v->type != JSON_OBJECT || !key) return NULL;
    size_t klen = strlen(key);
    for (size_t i = v->u.obj.n; i-- > 0;) {
        const json_member *mb = &v->u.obj.members[i];
        if (mb->key_len == klen && memcmp(mb->key, key, klen) == 0) return mb->value;
    }
    return NULL;
}

/* An integral value written with a fraction or exponent, within +-2^53. */
static bool integral_double(const json_value *v)
{
    double d = v->u.num.d;
    return d == floor(d) && fabs(d) <= 9007199254740992.0;
}

bool json_as_int64(const json_value *v, int64_t *out)
{
    if (!v || v->type != JSON_NUMBER) return false;
    if (v->u.num.is_int) {
        *out = v->u.num.i;
        return true;
    }
    if (v->u.num.is_uint || !integral_double(v)) return false;
    *out = (int64_t)v->u.num.d;
    return true;
}

bool json_as_uint64(const json_value *v, uint64_t *out)
{
    if (!v || v->type != JSON_NUMBER) return false;
    if (v->u.num.is_uint) {
        *out = (uint64_t)v->u.num.i;
        return true;
    }
    if (v->u.num.is_int || !integral_double(v) || v->u.num.d < 0) return false;
    *out = (uint64_t)v->u.num.d;
    return true;
}

bool json_as_double(const json_value *v, double *out)
{
    if (!v || v->type != JSON_NUMBER) return false;
    *out = v->u.num.d;
    return true;
}

bool json_as_bool(const json_value *v, bool *out)
{
    if (!v || (v->type != JSON_TRUE && v->type != JSON_FALSE)) return false;
    *out = v->type == JSON_TRUE;
    return true;
}

const char *json_as_string(const json_value *v)
{
    return v && v->type == JSON_STRING ? v->u.str.s : NULL;
}

const char *json_type_name(json_type t)
{
    switch (t) {
    case JSON_NULL:
        return "null";
    case JSON_FALSE:
    case JSON_TRUE:
        return "boolean";
    case JSON_NUMBER:
        return "number";
    case JSON_STRING:
        return "string";
    case JSON_ARRAY:
        return "array";
    case JSON_OBJECT:
        return "object";
    }
    return "unknown";
}

/* ---- writer ---------------------------------------------------------------- */

int json_write_string(rouse_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    /* Worst case: every byte becomes "\u00XX" (6) or U+FFFD (3). */
    if (len > (SIZE_MAX - 2) / 6 || rouse_buf_reserve(b, len * 6 + 2) < 0) return ROUSE_ENOMEM;
    char *o = b->data + b->len;
    *o++ = '"';
    while (p < end) {
        unsigned c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_seq_len(p, end);
            if (n) {
                memcpy(o, p, n);
                o += n;
                p += n;
            } else {
                memcpy(o, "\xEF\xBF\xBD", 3);
                o += 3;
                p++;
            }
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
            break;
        }
        p++;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

/* "%.<prec>g" of a finite value, "null" otherwise (JSON has no NaN/Inf). */
static int write_g(rouse_buf *b, double d, int prec)
{
    if (!isfinite(d)) return rouse_buf_append(b, "null", 4) < 0 ? ROUSE_ENOMEM : 0;
    if (rouse_buf_reserve(b, 32) < 0) return ROUSE_ENOMEM;
    int n = snprintf(b->data + b->len, 32, "%.*g", prec, d);
    if (n < 0 || n >= 32) return ROUSE_EINTERNAL;
    b->len += (size_t)n;
    return 0;
}

int json_write_double(rouse_buf *b, double d)
{
    return write_g(b, d, 17);
}

int json_write_float(rouse_buf *b, float f)
{
    return write_g(b, (double)f, 9);
}

int json_write_uint64(rouse_buf *b, uint64_t v)
{
    char tmp[24];
    char *o = tmp + sizeof(tmp);
    do {
        *--o = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return rouse_buf_append(b, o, (size_t)(tmp + sizeof(tmp) - o)) < 0 ? ROUSE_ENOMEM : 0;
}

int json_write_int64(rouse_buf *b, int64_t v)
{
    if (v >= 0) return json_write_uint64(b, (uint64_t)v);
    if (rouse_buf_append_byte(b, '-') < 0) return ROUSE_ENOMEM;
    return json_write_uint64(b, 0 - (uint64_t)v);
}
