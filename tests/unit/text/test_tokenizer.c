/*
 * The tokenizer on small hand-made vocabularies: GPT-2's pre-tokenizer split
 * (expected pieces from the regex itself), merges by rank with ties to the
 * left, decoding, the streaming helper, invalid UTF-8 with its offset, and
 * every loader error a broken tokenizer.json, vocab.json or merges.txt
 * meets. The comparison with GPT-2's real tokenizer is tests/text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "text/pretok.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

/* --- pre-tokenizer ----------------------------------------------------------- */

typedef struct split_case {
    const char *text;
    const char *pieces[10];
} split_case;

/* The pieces JavaScript's /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
 * ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu gives, but for the last two cases,
 * where JavaScript's \s differs from Unicode's White_Space (U+0085 is white
 * space, U+FEFF is not). */
static const split_case splits[] = {
    {"Hello world", {"Hello", " world"}},
    {"I'll  go\n\nnow  ", {"I", "'ll", " ", " go", "\n", "\n", "now", "  "}},
    {"a   b", {"a", "  ", " b"}},
    {"a\t\tb", {"a", "\t", "\t", "b"}},
    {"x \n y", {"x", " \n", " y"}},
    {"   ", {"   "}},
    {"'s'S", {"'s", "'", "S"}},
    {"it's!'s", {"it", "'s", "!'", "s"}},
    {"12abc 34.5", {"12", "abc", " 34", ".", "5"}},
    {" \xf0\x9f\x98\x80\xf0\x9f\x98\x80 x", {" \xf0\x9f\x98\x80\xf0\x9f\x98\x80", " x"}},
    {"e\xcc\x81t\xc3\xa9", {"e", "\xcc\x81", "t\xc3\xa9"}},
    {"\xe4\xb8\xad\xe6\x96\x87 \xe5\xad\x97", {"\xe4\xb8\xad\xe6\x96\x87", " \xe5\xad\x97"}},
    {"a\xc2\xa0"
     "b",
     {"a", "\xc2\xa0", "b"}},
    {"a\xe3\x80\x80\xe3\x80\x80"
     "b",
     {"a", "\xe3\x80\x80", "\xe3\x80\x80", "b"}},
    {"\ta", {"\t", "a"}},
    {" \tb", {" ", "\t", "b"}},
    {"a\r\n\r\nb", {"a", "\r\n\r", "\n", "b"}},
    {"x 2nd", {"x", " 2", "nd"}},
    {"don't", {"don", "'t"}},
    {"'ll've", {"'ll", "'ve"}},
    {"'", {"'"}},
    {"'r", {"'", "r"}},
    {"x\xc2\x85\xc2\x85y", {"x", "\xc2\x85", "\xc2\x85", "y"}},
    {"a\xef\xbb\xbf\xef\xbb\xbf"
     "b",
     {"a", "\xef\xbb\xbf\xef\xbb\xbf", "b"}},
};

static void pretok_splits_like_the_regex(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(splits) / sizeof(splits[0]); c++) {
        const char *s = splits[c].text;
        size_t len = strlen(s), i = 0, k = 0;
        while (i < len) {
            size_t end = tok_pretok_next(s, len, i);
            assert_true(end > i && end <= len);
            const char *want = splits[c].pieces[k++];
            if (!want || strlen(want) != end - i || memcmp(want, s + i, end - i) != 0)
                fail_msg("case %zu: piece %zu is '%.*s', expected '%s'", c, k - 1, (int)(end - i),
                         s + i, want ? want : "(none)");
            i = end;
        }
        if (splits[c].pieces[k])
            fail_msg("case %zu: piece %zu '%s' missing", c, k, splits[c].pieces[k]);
    }
}

/* --- UTF-8 --------------------------------------------------------------------- */

static void utf8_validation_names_the_byte(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t bad;
    } cases[] = {
        {"ab\xff", 2},           {"\xc0\x80", 0},
        {"x\xed\xa0\x80", 1},    {"xy\xe2\x82", 2},
        {"\xf4\x90\x80\x80", 0}, {"a\x80", 1},
        {"\xe2\x82\xac\xc3", 3}, {"ok\xf8\x88\x80\x80\x80", 2},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t bad = 999;
        assert_false(tok_utf8_valid(cases[c].s, strlen(cases[c].s), &bad));
        assert_int_equal(bad, cases[c].bad);
    }
    assert_true(tok_utf8_valid("\xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", 13, NULL));
}

static void utf8_complete_holds_back_a_cut_character(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t keep; /* bytes held back */
    } cases[] = {
        {"", 0},
        {"abc", 0},
        {"a\xe2", 1},
        {"a\xe2\x82", 2},
        {"a\xe2\x82\xac", 0},
        {"\xf0\x9f\x98", 3},
        {"\xf0\x9f\x98\x80", 0},
        {"\xc3", 1},
        {"a\x80", 0},            /* a stray continuation byte: sent */
        {"\x80\x80\x80\x80", 0}, /* only continuation bytes */
        {"a\xe0\x80", 0},        /* can never become valid (overlong): sent */
        {"a\xff", 0},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t len = strlen(cases[c].s);
        assert_int_equal(tok_utf8_complete(cases[c].s, len), len - cases[c].keep);
    }
}

/* --- a small vocabulary ---------------------------------------------------------- */

/* GPT-2's byte alphabet: byte b's spelling in vocab.json. */
static void spell_byte(int b, rouse_buf *out)
{
    static int cps[256];
    static int init;
    if (!init) {
        int next = 256;
        for (int c = 0; c < 256; c++) {
            int self = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174;
            cps[c] = self ? c : next++;
        }
        init = 1;
    }
    char u[4];
    size_t n = tok_utf8_put((uint32_t)cps[b], u);
    rouse_buf_append(out, u, n);
}

/* vocab.json with the 256 bytes (id = byte) and then the extra tokens (ids
 * 256...), spelled in the byte alphabet from their bytes. */
static char *vocab_json(const char *const *extra, size_t n_extra, const char *tail)
{
    rouse_buf b, tok;
    rouse_buf_init(&b);
    rouse_buf_init(&tok);
    rouse_buf_append_str(&b, "{");
    for (size_t i = 0; i < 256 + n_extra; i++) {
        tok.len = 0;
        if (i < 256)
            spell_byte((int)i, &tok);
        else
            for (const char *p = extra[i - 256]; *p; p++)
                spell_byte((unsigned char)*p, &tok);
        if (i) rouse_buf_append_str(&b, ",");
        json_write_string(&b, (const char *)tok.data, tok.len);
        rouse_buf_appendf(&b, ":%zu", i);
    }
    rouse_buf_append_str(&b, tail ? tail : "");
    rouse_buf_append_str(&b, "}");
    rouse_buf_append_byte(&b, 0);
    rouse_buf_fini(&tok);
    return (char *)b.data;
}

static tok_tokenizer *load(const char *const *extra, size_t n_extra, const char *merges)
{
    char *v = vocab_json(extra, n_extra, ",\"<|endoftext|>\":999");
    tok_tokenizer *t = NULL;
    rouse_errbuf eb = {0};
    int rc = tok_load_gpt2(v, strlen(v), merges, strlen(merges), &t, &eb);
    if (rc < 0) fail_msg("load: %s", eb.msg);
    free(v);
    return t;
}

static void expect_ids(const tok_tokenizer *t, const char *text, const int32_t *want, size_t n_want)
{
    int32_t *ids;
    size_t n;
    rouse_errbuf eb = {0};
    assert_int_equal(tok_encode(t, text, strlen(text), &ids, &n, &eb), 0);
    if (n != n_want || (n && memcmp(ids, want, n * sizeof(*ids)) != 0)) {
        char got[256] = "";
        for (size_t i = 0; i < n && strlen(got) < 200; i++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), " %d", (int)ids[i]);
        fail_msg("'%s' encodes to%s", text, got);
    }
    char *back;
    size_t len;
    assert_int_equal(tok_decode(t, ids, n, &back, &len, &eb), 0);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(back, text, len);
    free(back);
    free(ids);
}

static void merges_by_rank_ties_to_the_left(void **state)
{
    (void)state;
    /* 256 "aa", 257 "ab", 258 "aab", 259 " a", 260 " aa" */
    static const char *const extra[] = {"aa", "ab", "aab", " a", " aa"};
    tok_tokenizer *t = load(extra, 5,
                            "#version: 0.2\r\na b\na a\naa b\n\xc4\xa0 a\r\n\xc4\xa0"
                            "a a\n\n");
    assert_int_equal(tok_vocab_size(t), 1000);
    assert_int_equal(tok_eos(t), 999);
    /* "a b" ranks before "a a": "aab" -> a + ab, never aa + b */
    expect_ids(t, "aab", (int32_t[]){'a', 257}, 2);
    /* ties go left: aaa -> aa a */
    expect_ids(t, "aaa", (int32_t[]){256, 'a'}, 2);
    expect_ids(t, "aaaa", (int32_t[]){256, 256}, 2);
    /* "a a" ranks before "\xc4\xa0 a": " aa" -> " " + "aa", and " aa" (260) is never made */
    expect_ids(t, "a aa", (int32_t[]){'a', ' ', 256}, 3);
    expect_ids(t, "a a", (int32_t[]){'a', 259}, 2);
    expect_ids(t, "", NULL, 0);
    expect_ids(t, "z", (int32_t[]){'z'}, 1);
    /* special tokens in text are text */
    int32_t *ids;
    size_t n;
    rouse_errbuf eb = {0};
    assert_int_equal(tok_encode(t, "<|endoftext|>", 13, &ids, &n, &eb), 0);
    assert_int_equal(n, 13); /* no merges apply: one token per byte, never 999 */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], (unsigned char)"<|endoftext|>"[i]);
    free(ids);
    /* bytes of one token, and a cut character */
    size_t len;
    assert_non_null(tok_token_bytes(t, 0xe2, &len));
    assert_int_equal(len, 1);
    assert_null(tok_token_bytes(t, 500, &len));
    assert_null(tok_token_bytes(t, -1, &len));
    assert_null(tok_token_bytes(t, 1000, &len));
    char *text;
    assert_int_equal(tok_decode(t, (int32_t[]){0xe2, 0x82}, 2, &text, &len, &eb), 0);
    assert_int_equal(len, 2);
    assert_int_equal(tok_utf8_complete(text, len), 0);
    free(text);
    assert_int_equal(tok_decode(t, (int32_t[]){'a', 500}, 2, &text, &len, &eb), ROUSE_EINVAL);
    assert_non_null(strstr(eb.msg, "id 500"));
    assert_int_equal(tok_decode(t, (int32_t[]){1000}, 1, &text, &len, &eb), ROUSE_EINVAL);
    tok_free(t);
    tok_free(NULL);
}

static void invalid_utf8_is_refused(void **state)
{
    (void)state;
    tok_tokenizer *t = load(NULL, 0, "");
    int32_t *ids = (int32_t *)1;
    size_t n = 7;
    rouse_errbuf eb = {0};
    assert_int_equal(tok_encode(t, "ok \xc3\x28", 5, &ids, &n, &eb), ROUSE_EINVAL);
    assert_string_equal(eb.msg, "invalid UTF-8 at byte 3");
    assert_null(ids);
    assert_int_equal(n, 0);
    /* a NUL is a character like any other */
    assert_int_equal(tok_encode(t, "a\0b", 3, &ids, &n, &eb), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[1], 0);
    free(ids);
    tok_free(t);
}

/* --- tokenizer.json ------------------------------------------------------------- */

/* A tokenizer.json around the small vocabulary, with the given pre_tokenizer
 * and model extras and merges. */
static char *hf_json(const char *pre, const char *model_extra, const char *merges, const char *top)
{
    static const char *const extra[] = {"ab", " ab"};
    char *v = vocab_json(extra, 2, "");
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_buf_appendf(
        &b,
        "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":300,\"content\":\"<|endoftext|>\","
        "\"special\":true},{\"id\":301,\"content\":\"\xc3\xa9t\xc3\xa9\",\"special\":false}],"
        "\"normalizer\":null,\"pre_tokenizer\":%s,%s\"model\":{\"type\":\"BPE\",%s\"vocab\":%s,"
        "\"merges\":%s}}",
        pre, top, model_extra, v, merges);
    rouse_buf_append_byte(&b, 0);
    free(v);
    return (char *)b.data;
}

static const char *const bytelevel =
    "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true}";

static void hf_json_loads(void **state)
{
    (void)state;
    rouse_errbuf eb = {0};
    tok_tokenizer *t;
    static const char *const merge_forms[] = {"[\"a b\",\"\xc4\xa0 ab\"]",
                                              "[[\"a\",\"b\"],[\"\xc4\xa0\",\"ab\"]]"};
    for (int f = 0; f < 2; f++) {
        char *j = hf_json(bytelevel, "\"dropout\":null,\"continuing_subword_prefix\":\"\",",
                          merge_forms[f], "");
        if (tok_load_hf_json(j, strlen(j), &t, &eb) < 0) fail_msg("%s", eb.msg);
        free(j);
        assert_int_equal(tok_vocab_size(t), 302);
        assert_int_equal(tok_eos(t), 300);
        expect_ids(t, "ab ab", (int32_t[]){256, 257}, 2);
        /* an added token outside the byte alphabet decodes to its own text */
        size_t len;
        const char *b = tok_token_bytes(t, 301, &len);
        assert_int_equal(len, 5);
        assert_memory_equal(b, "\xc3\xa9t\xc3\xa9", 5);
        tok_free(t);
    }
    /* add_prefix_space */
    char *j = hf_json("{\"type\":\"ByteLevel\",\"add_prefix_space\":true}", "",
                      "[\"a b\",\"\xc4\xa0 ab\"]", "");
    assert_int_equal(tok_load_hf_json(j, strlen(j), &t, &eb), 0);
    free(j);
    expect_ids(t, " ab", (int32_t[]){257}, 1);
    int32_t *ids;
    size_t n;
    assert_int_equal(tok_encode(t, "ab", 2, &ids, &n, &eb), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 257);
    free(ids);
    tok_free(t);
}

typedef struct bad_case {
    const char *pre, *model_extra, *merges, *top;
    int rc;
    const char *msg; /* a part of the message */
} bad_case;

static void hf_json_errors_name_the_field(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        {"{\"type\":\"Whitespace\"}", "", "[]", "", ROUSE_EUNSUPPORTED,
         "pre_tokenizer: only type \"ByteLevel\""},
        {"null", "", "[]", "", ROUSE_EUNSUPPORTED, "pre_tokenizer"},
        {"{\"type\":\"ByteLevel\",\"use_regex\":false}", "", "[]", "", ROUSE_EUNSUPPORTED,
         "use_regex"},
        {"{\"type\":\"ByteLevel\",\"add_prefix_space\":1}", "", "[]", "", ROUSE_EFORMAT,
         "add_prefix_space"},
        {NULL, "", "[]", "\"normalizer\":{\"type\":\"NFC\"},", ROUSE_EUNSUPPORTED, "normalizer"},
        {NULL, "\"byte_fallback\":true,", "[]", "", ROUSE_EUNSUPPORTED, "model.byte_fallback"},
        {NULL, "\"continuing_subword_prefix\":\"##\",", "[]", "", ROUSE_EUNSUPPORTED,
         "continuing_subword_prefix"},
        {NULL, "\"dropout\":0.1,", "[]", "", ROUSE_EUNSUPPORTED, "dropout"},
        {NULL, "", "[\"a\"]", "", ROUSE_EFORMAT, "model.merges[0]: expected two tokens"},
        {NULL, "", "[\"a b c\"]", "", ROUSE_EFORMAT, "model.merges[0]: expected two tokens"},
        {NULL, "", "[\"a b\",[\"a\"]]", "", ROUSE_EFORMAT, "model.merges[1]"},
        {NULL, "", "[\"a q\u00e9\"]", "", ROUSE_EFORMAT,
         "model.merges[0]: token 'q\xc3\xa9' is not in the vocabulary"},
        {NULL, "", "[\"b a\"]", "", ROUSE_EFORMAT,
         "model.merges[0]: the merged token 'ba' is not in the vocabulary"},
        {NULL, "", "{}", "", ROUSE_EFORMAT, "model.merges: expected an array"},
        {NULL, "", "[]", "\"added_tokens\":{},", ROUSE_EFORMAT, "added_tokens: expected an array"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char *j = hf_json(cases[c].pre ? cases[c].pre : bytelevel, cases[c].model_extra,
                          cases[c].merges, cases[c].top);
        /* a repeated key: the later one wins (json_get), so "added_tokens"
         * or "normalizer" in top override the defaults before it */
        rouse_errbuf eb = {0};
        tok_tokenizer *t = (tok_tokenizer *)1;
        int rc = tok_load_hf_json(j, strlen(j), &t, &eb);
        free(j);
        if (rc != cases[c].rc || !strstr(eb.msg, cases[c].msg))
            fail_msg("case %zu: rc %d '%s', expected %d '%s'", c, rc, eb.msg, cases[c].rc,
                     cases[c].msg);
        assert_null(t);
    }
    rouse_errbuf eb = {0};
    tok_tokenizer *t;
    assert_int_equal(tok_load_hf_json("[1]", 3, &t, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "expected a JSON object"));
    assert_int_equal(tok_load_hf_json("{\"model\":", 9, &t, &eb), ROUSE_EFORMAT);
    assert_int_equal(tok_load_hf_json("", 0, &t, &eb), ROUSE_EFORMAT);
}

static void gpt2_files_errors(void **state)
{
    (void)state;
    rouse_errbuf eb = {0};
    tok_tokenizer *t;
    /* a vocabulary without every byte */
    const char *v = "{\"a\":0,\"b\":1}";
    assert_int_equal(tok_load_gpt2(v, strlen(v), "", 0, &t, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "no token for byte 0x00"));
    v = "{}";
    assert_int_equal(tok_load_gpt2(v, strlen(v), "", 0, &t, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "empty"));
    char *full = vocab_json(NULL, 0, ",\"xq\":-1");
    assert_int_equal(tok_load_gpt2(full, strlen(full), "", 0, &t, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "id -1 out of range"));
    free(full);
    full = vocab_json(NULL, 0, ",\"xq\":1.5");
    assert_int_equal(tok_load_gpt2(full, strlen(full), "", 0, &t, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "not an integer"));
    free(full);
    full = vocab_json(NULL, 0, ",\"xy\":7");
    assert_int_equal(tok_load_gpt2(full, strlen(full), "", 0, &t, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "id 7 is given to two tokens"));
    free(full);
    full = vocab_json(NULL, 0, ",\"a\":300");
    assert_int_equal(tok_load_gpt2(full, strlen(full), "", 0, &t, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "appears twice"));
    free(full);
    assert_int_equal(tok_load_gpt2("{", 1, "", 0, &t, &eb), ROUSE_EFORMAT);
    assert_non_null(strstr(eb.msg, "vocab.json"));
    full = vocab_json(NULL, 0, "");
    static const struct {
        const char *merges, *msg;
    } m[] = {
        {"a b c\n", "merges.txt line 1: expected two tokens"},
        {"#version: 0.2\nab\n", "merges.txt line 2: expected two tokens"},
        {"\n\n a\n", "merges.txt line 3"},
        {"a b\n", "the merged token 'ab' is not in the vocabulary"},
        {"a xyz\n", "token 'xyz' is not in the vocabulary"},
    };
    for (size_t c = 0; c < sizeof(m) / sizeof(m[0]); c++) {
        int rc = tok_load_gpt2(full, strlen(full), m[c].merges, strlen(m[c].merges), &t, &eb);
        if (rc != ROUSE_EFORMAT || !strstr(eb.msg, m[c].msg))
            fail_msg("merges case %zu: rc %d '%s'", c, rc, eb.msg);
    }
    free(full);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pretok_splits_like_the_regex),
        cmocka_unit_test(utf8_validation_names_the_byte),
        cmocka_unit_test(utf8_complete_holds_back_a_cut_character),
        cmocka_unit_test(merges_by_rank_ties_to_the_left),
        cmocka_unit_test(invalid_utf8_is_refused),
        cmocka_unit_test(hf_json_loads),
        cmocka_unit_test(hf_json_errors_name_the_field),
        cmocka_unit_test(gpt2_files_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
