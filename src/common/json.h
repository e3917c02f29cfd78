/*
 * JSON (RFC 8259): a strict parser into a read-only tree, and a writer.
 *
 * The parser takes untrusted bytes (HTTP bodies): it never reads past the
 * buffer, limits nesting (JSON_MAX_DEPTH), rejects invalid UTF-8, lone
 * surrogates and trailing garbage, allows repeated keys (json_get returns
 * the last), and reports the byte offset and the reason of the first error
 * ("at byte 17: expected ',' or '}'"). All nodes and decoded strings live in
 * a caller-provided arena, freed in one call.
 *
 * Numbers with up to 19 significant digits and small exponents (what tensor
 * data is made of) convert without allocation or locale; longer ones go
 * through strtod, and the writer through printf, both of which assume the
 * "C" locale's decimal point: rouse never calls setlocale().
 */
#ifndef ROUSE_COMMON_JSON_H
#define ROUSE_COMMON_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "rouse/err.h"

#define JSON_MAX_DEPTH 64

typedef enum json_type {
    JSON_NULL,
    JSON_FALSE,
    JSON_TRUE,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT,
} json_type;

typedef struct json_value json_value;

typedef struct json_member {
    const char *key; /* decoded, NUL-terminated (may contain \u0000 -> key_len says) */
    size_t key_len;
    json_value *value;
} json_member;

struct json_value {
    json_type type;
    union {
        struct {
            double d;     /* the number as a double */
            int64_t i;    /* exact value when is_int */
            bool is_int;  /* integer literal (no fraction/exponent) that fits int64 */
            bool is_uint; /* integer literal >= 0 that fits uint64: (uint64_t)i is
                             exact (above INT64_MAX is_int is false, i wraps) */
        } num;
        struct {
            const char *s; /* decoded UTF-8, NUL-terminated */
            size_t len;
        } str;
        struct {
            json_value **items;
            size_t n;
        } arr;
        struct {
            json_member *members; /* in document order */
            size_t n;
        } obj;
    } u;
};

/* Parses text[0..len). Returns 0 and the root in *out, or ROUSE_EFORMAT with
 * the offset and reason in eb (ROUSE_ENOMEM when the arena fails). */
int json_parse(const char *text, size_t len, rouse_arena *arena, json_value **out,
               rouse_errbuf *eb);

/* Member of an object by key (the last one if repeated), or NULL (also when
 * v is NULL or not an object). */
const json_value *json_get(const json_value *v, const char *key);

/* Typed accessors: true and *out set when v has that type (and, for ints, an
 * exact integer value in range). Integer literals convert exactly; a number
 * written with a fraction or exponent ("2.0", "1e3") counts when its value is
 * integral and within +-2^53, where doubles hold every integer. */
bool json_as_int64(const json_value *v, int64_t *out);
bool json_as_uint64(const json_value *v, uint64_t *out);
bool json_as_double(const json_value *v, double *out);
bool json_as_bool(const json_value *v, bool *out);
const char *json_as_string(const json_value *v); /* NULL unless a string */

/* Human name of a type ("object", "number"...), for error messages. */
const char *json_type_name(json_type t);

/* --- writer: appends to a rouse_buf; returns 0 or ROUSE_ENOMEM ----------- */

/* A string literal with quotes and escapes ("\n", "\u0001", ...). Invalid
 * UTF-8 in s is replaced with U+FFFD so the output is always valid JSON. */
int json_write_string(rouse_buf *b, const char *s, size_t len);
/* Shortest round-trip representation ("%.9g" for float data is enough:
 * callers pass the float widened to double and ask for float precision). */
int json_write_double(rouse_buf *b, double d);
int json_write_float(rouse_buf *b, float f); /* %.9g; NaN/Inf -> null */
int json_write_int64(rouse_buf *b, int64_t v);
int json_write_uint64(rouse_buf *b, uint64_t v);

#endif
