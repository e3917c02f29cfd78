/*
 * JSON parser and writer: JSONTestSuite-style accept/reject cases written by
 * hand, nesting limits, numbers (exact int64/uint64 detection, rounding,
 * range), escapes and surrogates, UTF-8 validation, error offsets, and
 * writer -> parser round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"

static json_value *parse_ok(rouse_arena *a, const char *text, size_t len)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    json_value *v = NULL;
    int rc = json_parse(text, len, a, &v, &eb);
    if (rc != 0) fail_msg("'%.*s' rejected: %s", (int)len, text, eb.msg);
    assert_non_null(v);
    return v;
}

static json_value *ok(rouse_arena *a, const char *text)
{
    return parse_ok(a, text, strlen(text));
}

/* Expects rejection; returns the message (static storage) for checks. */
static const char *bad_n(const char *text, size_t len)
{
    static rouse_errbuf eb;
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v = NULL;
    rouse_errbuf_clear(&eb);
    int rc = json_parse(text, len, &a, &v, &eb);
    rouse_arena_fini(&a);
    if (rc != ROUSE_EFORMAT) fail_msg("'%.*s' accepted (rc %d)", (int)len, text, rc);
    assert_true(strncmp(eb.msg, "at byte ", 8) == 0);
    return eb.msg;
}

static const char *bad(const char *text)
{
    return bad_n(text, strlen(text));
}

static void accepts_valid_documents(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "[]",
        "{}",
        "[[]]",
        "null",
        "true",
        "false",
        "0",
        "-0",
        "1",
        "-1",
        "\"\"",
        "\"a\"",
        " [ 1 , 2 ] ",
        "\t\r\n{\"a\" :\n1}\n",
        "[1e1]",
        "[1E+2]",
        "[1e-2]",
        "[0.5]",
        "[-0.0e0]",
        "[1.5e300]",
        "[\"\\u0000\"]",
        "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"]",
        "[\"\\uD834\\uDD1E\"]",
        "{\"a\":[],\"b\":{},\"c\":null}",
        "[\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"]",
        "{\"\":0}",
        "[1,\"x\",true,false,null,{},[]]",
        "[123456789012345678901234567890]",
        "[1e-400]",
        "[\"\xEF\xBB\xBF\"]",
        "[\"\x7F\"]",
        "{\"a\":1,\"a\":2}",
    };
    rouse_arena a;
    rouse_arena_init(&a, 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ok(&a, cases[i]);
    rouse_arena_fini(&a);
}

static void rejects_invalid_documents(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",
        " ",
        "[",
        "]",
        "{",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\" 1}",
        "{a:1}",
        "{'a':1}",
        "['a']",
        "{\"a\":1,}",
        "{,}",
        "[1]]",
        "[1] x",
        "[] []",
        "01",
        "[01]",
        "-",
        "[-]",
        "[1.]",
        "[.5]",
        "[1e]",
        "[1e+]",
        "[+1]",
        "[0x10]",
        "[Infinity]",
        "[NaN]",
        "[-Infinity]",
        "[1e400]",
        "[-1e400]",
        "tru",
        "nul",
        "True",
        "[nulll]",
        "\"abc",
        "[\"\\x\"]",
        "[\"\\u12\"]",
        "[\"\\u12G4\"]",
        "[\"\\uD834\"]",
        "[\"\\uDD1E\"]",
        "[\"\\uD834\\u0041\"]",
        "[\"\\uD834x\"]",
        "[\"a\tb\"]",
        "[\"a\nb\"]",
        "[\"\\\"]",
        "\xEF\xBB\xBF[]",
        "[1,2",
        "{\"a\":1",
        "/* c */ []",
        "[] // c",
        "[\"\\'\"]",
        "[- 1]",
        "[1.e1]",
        "[1ee1]",
        "[\"\\U0041\"]",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        bad(cases[i]);
    /* Bytes that strlen would hide. */
    bad_n("[1]\0", 4);
    bad_n("[\"a\0b\"]", 7);
    bad_n("\0", 1);
}

static void rejects_invalid_utf8(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "[\"\x80\"]",             /* lone continuation */
        "[\"\xC3\"]",             /* truncated */
        "[\"\xC0\xAF\"]",         /* overlong '/' */
        "[\"\xC1\xBF\"]",         /* overlong */
        "[\"\xE0\x80\xAF\"]",     /* overlong 3-byte */
        "[\"\xED\xA0\x80\"]",     /* encoded surrogate U+D800 */
        "[\"\xF0\x80\x80\xAF\"]", /* overlong 4-byte */
        "[\"\xF4\x90\x80\x80\"]", /* above U+10FFFF */
        "[\"\xF5\x80\x80\x80\"]",
        "[\"\xFF\"]",
        "[\"\xE2\x82\"]",
        "[\"\xE2\x28\xA1\"]",
        "{\"\xC3\x28\":1}", /* in a key */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *msg = bad(cases[i]);
        assert_non_null(strstr(msg, "UTF-8"));
    }
    /* UTF-8 outside strings is just an unexpected byte. */
    bad("[\xC3\xA9]");
}

static void reports_byte_offsets(void **state)
{
    (void)state;
    assert_string_equal(bad("{\"a\":1 \"b\":2}"), "at byte 7: expected ',' or '}', got '\"'");
    assert_string_equal(bad("[1,2,]"), "at byte 5: expected a value, got ']'");
    assert_string_equal(bad("[1,2"), "at byte 4: expected ',' or ']', got end of input");
    assert_string_equal(bad(""), "at byte 0: expected a value, got end of input");
    assert_string_equal(bad("[tru]"), "at byte 1: invalid literal (expected 'true')");
    assert_string_equal(bad("  \"abc"), "at byte 2: unterminated string");
    assert_string_equal(bad("[\"ab\\q\"]"), "at byte 4: invalid escape \\'q'");
    assert_string_equal(bad("[\"x\\uDC00\"]"), "at byte 3: lone low surrogate \\uDC00");
    assert_string_equal(bad("[\"\\uD800\"]"),
                        "at byte 2: high surrogate \\uD800 not followed by a low surrogate");
    assert_string_equal(bad("[\"ab\xC3(\"]"), "at byte 4: invalid UTF-8 in a string");
    assert_string_equal(bad("[00]"), "at byte 1: leading zeros are not allowed");
    assert_string_equal(bad("[1.x]"), "at byte 3: expected a digit after '.', got 'x'");
    assert_string_equal(bad("[2e]"), "at byte 3: expected a digit in the exponent, got ']'");
    assert_string_equal(bad("[1e999]"), "at byte 1: number out of range");
    assert_string_equal(bad("{} x"), "at byte 3: unexpected 'x' after the end of the document");
    assert_string_equal(bad("[\"a\x01\"]"),
                        "at byte 3: control character 0x01 in a string (escape it)");
    assert_string_equal(bad("{1:2}"), "at byte 1: expected a string key, got '1'");
    assert_string_equal(bad("{\"k\" 2}"), "at byte 5: expected ':' after a key, got '2'");
    assert_string_equal(bad("[\x01]"), "at byte 1: expected a value, got byte 0x01");
}

static void limits_nesting_depth(void **state)
{
    (void)state;
    char buf[2 * (JSON_MAX_DEPTH + 1) + 1];
    rouse_arena a;
    rouse_arena_init(&a, 0);
    /* Exactly JSON_MAX_DEPTH levels parse. */
    int d = JSON_MAX_DEPTH;
    memset(buf, '[', (size_t)d);
    memset(buf + d, ']', (size_t)d);
    json_value *v = parse_ok(&a, buf, 2 * (size_t)d);
    for (int i = 1; i < d; i++) {
        assert_int_equal(v->type, JSON_ARRAY);
        assert_int_equal(v->u.arr.n, 1);
        v = v->u.arr.items[0];
    }
    assert_int_equal(v->u.arr.n, 0);
    /* One more is rejected, at the offending bracket. */
    d = JSON_MAX_DEPTH + 1;
    memset(buf, '[', (size_t)d);
    memset(buf + d, ']', (size_t)d);
    const char *msg = bad_n(buf, 2 * (size_t)d);
    char want[80];
    snprintf(want, sizeof(want), "at byte %d: nesting deeper than %d levels", JSON_MAX_DEPTH,
             JSON_MAX_DEPTH);
    assert_string_equal(msg, want);
    /* Objects count too, and a deep attack does not blow the stack. */
    size_t n = 100000;
    char *deep = malloc(n * 6);
    assert_non_null(deep);
    for (size_t i = 0; i < n; i++)
        memcpy(deep + 6 * i, "{\"a\":[", 6);
    bad_n(deep, n * 6);
    free(deep);
    rouse_arena_fini(&a);
}

static void numbers_exact_ints(void **state)
{
    (void)state;
    rouse_arena a;
    rouse_arena_init(&a, 0);
    struct {
        const char *text;
        bool is_int, is_uint;
        int64_t i;
        uint64_t u;
        double d;
    } cases[] = {
        {"0", true, true, 0, 0, 0.0},
        {"-0", true, false, 0, 0, -0.0},
        {"42", true, true, 42, 42, 42.0},
        {"-42", true, false, -42, 0, -42.0},
        {"9007199254740993", true, true, 9007199254740993LL, 9007199254740993ULL,
         9007199254740992.0},
        {"9223372036854775807", true, true, INT64_MAX, (uint64_t)INT64_MAX, 9223372036854775807.0},
        {"-9223372036854775808", true, false, INT64_MIN, 0, -9223372036854775808.0},
        {"9223372036854775808", false, true, 0, 9223372036854775808ULL, 9223372036854775808.0},
        {"18446744073709551615", false, true, 0, UINT64_MAX, 18446744073709551615.0},
        {"18446744073709551616", false, false, 0, 0, 18446744073709551616.0},
        {"-9223372036854775809", false, false, 0, 0, -9223372036854775809.0},
        {"100000000000000000000000", false, false, 0, 0, 1e23},
        {"1.0", false, false, 0, 0, 1.0},
        {"1e2", false, false, 0, 0, 100.0},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        json_value *v = ok(&a, cases[k].text);
        assert_int_equal(v->type, JSON_NUMBER);
        if (v->u.num.is_int != cases[k].is_int || v->u.num.is_uint != cases[k].is_uint)
            fail_msg("%s: is_int %d is_uint %d", cases[k].text, v->u.num.is_int, v->u.num.is_uint);
        int64_t i;
        uint64_t u;
        if (cases[k].is_int) {
            assert_true(json_as_int64(v, &i));
            assert_true(i == cases[k].i);
        }
        if (cases[k].is_uint) {
            assert_true(json_as_uint64(v, &u));
            assert_true(u == cases[k].u);
        }
        if (v->u.num.d != cases[k].d || signbit(v->u.num.d) != signbit(cases[k].d))
            fail_msg("%s: got %.17g", cases[k].text, v->u.num.d);
    }
    /* Accessors: integral values with a fraction convert within 2^53. */
    int64_t i;
    uint64_t u;
    double d;
    bool b;
    assert_true(json_as_int64(ok(&a, "2.0"), &i) && i == 2);
    assert_true(json_as_int64(ok(&a, "-3e2"), &i) && i == -300);
    assert_false(json_as_int64(ok(&a, "2.5"), &i));
    assert_false(json_as_int64(ok(&a, "1e300"), &i));
    assert_false(json_as_int64(ok(&a, "18446744073709551615"), &i));
    assert_false(json_as_uint64(ok(&a, "-1"), &u));
    assert_false(json_as_uint64(ok(&a, "-1.0"), &u));
    assert_true(json_as_uint64(ok(&a, "7e0"), &u) && u == 7);
    assert_false(json_as_int64(ok(&a, "\"1\""), &i));
    assert_false(json_as_int64(NULL, &i));
    assert_true(json_as_double(ok(&a, "-2.5"), &d) && d == -2.5);
    assert_false(json_as_double(ok(&a, "true"), &d));
    assert_true(json_as_bool(ok(&a, "true"), &b) && b);
    assert_true(json_as_bool(ok(&a, "false"), &b) && !b);
    assert_false(json_as_bool(ok(&a, "0"), &b));
    rouse_arena_fini(&a);
}

/* Every parsed double must equal strtod's correctly rounded value. */
static void numbers_round_correctly(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "0.1",
        "0.2",
        "0.3",
        "1.7976931348623157e308",
        "2.2250738585072014e-308",
        "4.9406564584124654e-324",
        "2.4703282292062327e-324",
        "1e-320",
        "123456789.123456789",
        "0.000001",
        "3.14159265358979323846264338327950288",
        "9007199254740993.0",
        "9007199254740992.5",
        "1e22",
        "1e23",
        "8.98846567431158e307",
        "-0.0",
        "5e-1",
        "0.00000000000000000000000000000001",
        "1.00000000000000011102230246251565404236316680908203125",
        "1.0000000000000001110223024625156540423631668090820312500001",
        "7.0e-10",
        "-12.5e+3",
        "0.1e-22",
        "1e-22",
        "4503599627370497.5",
        "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017"
        "977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273"
        "854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704"
        "342711559699508093042880177904174497791e-0",
    };
    rouse_arena a;
    rouse_arena_init(&a, 0);
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        json_value *v = ok(&a, cases[k]);
        double want = strtod(cases[k], NULL);
        if (memcmp(&v->u.num.d, &want, sizeof(want)) != 0)
            fail_msg("%s: got %.17g, want %.17g", cases[k], v->u.num.d, want);
    }
    /* Pseudo-random decimals of the shapes a tensor body holds. */
    uint64_t r = 88172645463325252ull;
    char text[64];
    for (int k = 0; k < 200000; k++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        /* Up to 17 significant digits, a decimal point somewhere, an exponent. */
        int digits = 1 + (int)(r % 17), exp = (int)((r >> 8) % 40) - 20;
        char m[24];
        int ml =
            snprintf(m, sizeof(m), "%llu", (unsigned long long)((r >> 16) % 100000000000000000ull));
        if (ml > digits) ml = digits;
        m[ml] = '\0';
        int point = 1 + (int)((r >> 40) % (unsigned)ml);
        snprintf(text, sizeof(text), "%s%.*s%s%s%s%d", (r >> 60) & 1 ? "-" : "", point, m,
                 point < ml ? "." : "", m + point, (r >> 59) & 1 ? "e" : "E", exp);
        json_value *v = ok(&a, text);
        double want = strtod(text, NULL);
        if (memcmp(&v->u.num.d, &want, sizeof(want)) != 0)
            fail_msg("%s: got %.17g, want %.17g", text, v->u.num.d, want);
        if ((k & 1023) == 0) rouse_arena_reset(&a);
    }
    rouse_arena_fini(&a);
}

static void strings_and_escapes(void **state)
{
    (void)state;
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v = ok(&a, "\"a\\u0000b\\n\\u00e9\\u20AC\\uD83D\\uDE00\\/\"");
    assert_int_equal(v->type, JSON_STRING);
    const char want[] = "a\0b\n\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80/";
    assert_int_equal(v->u.str.len, sizeof(want) - 1);
    assert_memory_equal(v->u.str.s, want, sizeof(want)); /* includes the terminator */
    assert_string_equal(json_as_string(ok(&a, "\"plain\"")), "plain");
    assert_null(json_as_string(ok(&a, "1")));
    /* Keys decode the same way; json_get takes the last of repeated keys. */
    v = ok(&a, "{\"k\\u00e9\":1,\"x\":2,\"x\":3,\"a\\u0000b\":4}");
    int64_t i;
    assert_true(json_as_int64(json_get(v, "k\xC3\xA9"), &i) && i == 1);
    assert_true(json_as_int64(json_get(v, "x"), &i) && i == 3);
    assert_null(json_get(v, "a")); /* "a\0b" is not "a" */
    assert_null(json_get(v, "missing"));
    assert_null(json_get(ok(&a, "[1]"), "x"));
    assert_null(json_get(NULL, "x"));
    assert_int_equal(v->u.obj.n, 4);
    assert_string_equal(v->u.obj.members[1].key, "x");
    assert_string_equal(json_type_name(JSON_OBJECT), "object");
    assert_string_equal(json_type_name(JSON_TRUE), "boolean");
    assert_string_equal(json_type_name(JSON_NUMBER), "number");
    rouse_arena_fini(&a);
}

static void tree_shape(void **state)
{
    (void)state;
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v = ok(&a, "{\"inputs\":[{\"n\":\"x\",\"d\":[[1,2],[3,4,5]]}],\"z\":null}");
    const json_value *in = json_get(v, "inputs");
    assert_int_equal(in->type, JSON_ARRAY);
    assert_int_equal(in->u.arr.n, 1);
    const json_value *d = json_get(in->u.arr.items[0], "d");
    assert_int_equal(d->u.arr.n, 2);
    assert_int_equal(d->u.arr.items[0]->u.arr.n, 2);
    assert_int_equal(d->u.arr.items[1]->u.arr.n, 3);
    assert_int_equal(d->u.arr.items[1]->u.arr.items[2]->u.num.i, 5);
    assert_int_equal(json_get(v, "z")->type, JSON_NULL);
    rouse_arena_fini(&a);
}

static void writer_escapes_strings(void **state)
{
    (void)state;
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(json_write_string(&b, "a\"b\\c\n\r\t\b\f\x01\x1f/\x7f", 14), 0);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f/\x7f\"");
    rouse_buf_clear(&b);
    assert_int_equal(json_write_string(&b, "x\0y", 3), 0);
    assert_string_equal(b.data, "\"x\\u0000y\"");
    rouse_buf_clear(&b);
    /* Valid UTF-8 passes; each invalid byte becomes U+FFFD. */
    assert_int_equal(json_write_string(&b, "\xC3\xA9|\xC3|\xED\xA0\x80|\xF0\x9F\x98\x80", 13), 0);
    assert_string_equal(b.data, "\"\xC3\xA9|\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|"
                                "\xF0\x9F\x98\x80\"");
    rouse_buf_clear(&b);
    assert_int_equal(json_write_string(&b, "", 0), 0);
    assert_string_equal(b.data, "\"\"");
    rouse_buf_fini(&b);
}

static void writer_numbers(void **state)
{
    (void)state;
    rouse_buf b;
    rouse_buf_init(&b);
    json_write_int64(&b, INT64_MIN);
    rouse_buf_append_byte(&b, ',');
    json_write_int64(&b, INT64_MAX);
    rouse_buf_append_byte(&b, ',');
    json_write_int64(&b, 0);
    rouse_buf_append_byte(&b, ',');
    json_write_uint64(&b, UINT64_MAX);
    rouse_buf_append_byte(&b, ',');
    json_write_float(&b, NAN);
    rouse_buf_append_byte(&b, ',');
    json_write_double(&b, -INFINITY);
    rouse_buf_append_byte(&b, ',');
    json_write_float(&b, 1.5f);
    rouse_buf_append_byte(&b, ',');
    json_write_float(&b, 3.0f);
    rouse_buf_append_byte(&b, ',');
    json_write_double(&b, 0.1);
    assert_string_equal(b.data, "-9223372036854775808,9223372036854775807,0,"
                                "18446744073709551615,null,null,1.5,3,0.10000000000000001");
    rouse_buf_fini(&b);
}

/* Everything the writer emits parses back to the same values. */
static void writer_parser_round_trip(void **state)
{
    (void)state;
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    uint64_t r = 0x2545F4914F6CDD1Dull;
    enum { N = 20000 };
    float *fs = malloc(sizeof(float) * N);
    double *ds = malloc(sizeof(double) * N);
    int64_t *is = malloc(sizeof(int64_t) * N);
    assert_true(fs && ds && is);
    rouse_buf_append_byte(&b, '[');
    for (int k = 0; k < N; k++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        uint32_t bits = (uint32_t)r;
        memcpy(&fs[k], &bits, 4);
        if (!isfinite(fs[k])) fs[k] = (float)k;
        memcpy(&ds[k], &r, 8);
        if (!isfinite(ds[k])) ds[k] = -(double)k;
        is[k] = (int64_t)(r * 0x9E3779B97F4A7C15ull);
        if (k) rouse_buf_append_byte(&b, ',');
        assert_int_equal(json_write_float(&b, fs[k]), 0);
        rouse_buf_append_byte(&b, ',');
        assert_int_equal(json_write_double(&b, ds[k]), 0);
        rouse_buf_append_byte(&b, ',');
        assert_int_equal(json_write_int64(&b, is[k]), 0);
    }
    rouse_buf_append_byte(&b, ']');
    json_value *v = parse_ok(&a, b.data, b.len);
    assert_int_equal(v->u.arr.n, 3 * N);
    for (int k = 0; k < N; k++) {
        float f = (float)v->u.arr.items[3 * k]->u.num.d;
        double d = v->u.arr.items[3 * k + 1]->u.num.d;
        if (memcmp(&f, &fs[k], 4) != 0) fail_msg("float %d: %.9g vs %.9g", k, f, fs[k]);
        if (memcmp(&d, &ds[k], 8) != 0) fail_msg("double %d: %.17g vs %.17g", k, d, ds[k]);
        int64_t i;
        assert_true(json_as_int64(v->u.arr.items[3 * k + 2], &i));
        assert_true(i == is[k]);
    }
    /* Strings: random bytes (valid or not) always write valid JSON that
     * parses back; valid UTF-8 comes back unchanged. */
    for (int k = 0; k < 2000; k++) {
        unsigned char raw[24];
        size_t len = (size_t)(k % 24);
        for (size_t j = 0; j < len; j++) {
            r ^= r << 13, r ^= r >> 7, r ^= r << 17;
            raw[j] = (unsigned char)(k & 1 ? r % 0x80 : r);
        }
        rouse_buf_clear(&b);
        assert_int_equal(json_write_string(&b, (const char *)raw, len), 0);
        json_value *s = parse_ok(&a, b.data, b.len);
        assert_int_equal(s->type, JSON_STRING);
        if (k & 1) {
            assert_int_equal(s->u.str.len, len);
            assert_memory_equal(s->u.str.s, raw, len);
        }
    }
    free(fs);
    free(ds);
    free(is);
    rouse_arena_fini(&a);
    rouse_buf_fini(&b);
}

/* A 224x224x3 image body: must parse, and must be exact. Timing is printed
 * for information only (no thresholds in pass/fail tests). */
static void large_numeric_body(void **state)
{
    (void)state;
    enum { N = 224 * 224 * 3 };
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_buf_append_str(&b, "{\"inputs\":[{\"name\":\"x\",\"data\":[");
    uint64_t r = 12345;
    for (int k = 0; k < N; k++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        if (k) rouse_buf_append_byte(&b, ',');
        json_write_float(&b, (float)(r % 100000) / 65536.0f - 0.7f);
    }
    rouse_buf_append_str(&b, "]}]}");
    rouse_arena a;
    rouse_arena_init(&a, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    json_value *v = parse_ok(&a, b.data, b.len);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    const json_value *d = json_get(json_get(v, "inputs")->u.arr.items[0], "data");
    assert_int_equal(d->u.arr.n, N);
    r = 12345;
    for (int k = 0; k < N; k++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        float want = (float)(r % 100000) / 65536.0f - 0.7f;
        assert_true((float)d->u.arr.items[k]->u.num.d == want);
    }
    print_message("parsed %zu bytes (%d numbers) in %.1f ms\n", b.len, N,
                  (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    rouse_arena_fini(&a);
    rouse_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepts_valid_documents),
        cmocka_unit_test(rejects_invalid_documents),
        cmocka_unit_test(rejects_invalid_utf8),
        cmocka_unit_test(reports_byte_offsets),
        cmocka_unit_test(limits_nesting_depth),
        cmocka_unit_test(numbers_exact_ints),
        cmocka_unit_test(numbers_round_correctly),
        cmocka_unit_test(strings_and_escapes),
        cmocka_unit_test(tree_shape),
        cmocka_unit_test(writer_escapes_strings),
        cmocka_unit_test(writer_numbers),
        cmocka_unit_test(writer_parser_round_trip),
        cmocka_unit_test(large_numeric_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
