/*
 * libFuzzer target for the tokenizer: its two loaders and its encoder and
 * decoder. Every input is
 *   - loaded as a tokenizer.json; one that loads encodes and decodes the
 *     input itself, and must give it back when it is valid UTF-8;
 *   - split at its first NUL into a vocab.json and a merges.txt and loaded;
 *   - encoded as text by a fixed tokenizer with many merges (every pair of
 *     lower-case letters and of digits, and a space before each, in a
 *     shuffled rank order): invalid UTF-8 must be refused with its offset
 *     inside the input; valid text must decode back to itself byte for
 *     byte, and streaming its tokens through tok_utf8_complete must send it
 *     in valid UTF-8 pieces with at most 3 bytes held back.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

static tok_tokenizer *fixed;

static void spell(rouse_buf *b, const char *s)
{
    static uint32_t cps[256];
    if (!cps['a']) {
        uint32_t next = 256;
        for (int c = 0; c < 256; c++) {
            int self = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174;
            cps[c] = self ? (uint32_t)c : next++;
        }
    }
    for (; *s; s++) {
        char u[4];
        rouse_buf_append(b, u, tok_utf8_put(cps[(unsigned char)*s], u));
    }
}

/* Adds token s (its bytes) to the vocabulary object being written. */
static void vocab_add(rouse_buf *v, const char *s, int *id)
{
    rouse_buf t;
    rouse_buf_init(&t);
    spell(&t, s);
    rouse_buf_append_byte(v, ',');
    json_write_string(v, (const char *)t.data, t.len);
    rouse_buf_appendf(v, ":%d", (*id)++);
    rouse_buf_fini(&t);
}

static void merge_add(rouse_buf *m, const char *l, const char *r)
{
    spell(m, l);
    rouse_buf_append_byte(m, ' ');
    spell(m, r);
    rouse_buf_append_byte(m, '\n');
}

static void build_fixed(void)
{
    rouse_buf v, m;
    rouse_buf_init(&v);
    rouse_buf_init(&m);
    int id = 0;
    char s[4] = {0};
    /* The 256 bytes first; byte 0 is spelled U+0100, never a NUL. */
    rouse_buf_append_str(&v, "{\"\xc4\x80\":0");
    id = 1;
    for (int c = 1; c < 256; c++) {
        char b[2] = {(char)c, 0};
        vocab_add(&v, b, &id);
    }
    /* Pairs of letters and of digits, "x y" -> "xy", and " " + "xy". */
    static const char *const sets[] = {"abcdefghijklmnopqrstuvwxyz", "0123456789"};
    unsigned seed = 7;
    typedef struct {
        char l[3], r[3];
    } pm;
    pm *all = NULL;
    size_t n = 0;
    for (int k = 0; k < 2; k++)
        for (const char *a = sets[k]; *a; a++)
            for (const char *b = sets[k]; *b; b++) {
                all = realloc(all, (n + 2) * sizeof(*all));
                all[n++] = (pm){{*a, 0}, {*b, 0}};
                all[n++] = (pm){{' ', 0}, {*a, *b, 0}};
            }
    /* Shuffled ranks, but a pair's "xy" merge always before its " xy". */
    for (size_t i = n / 2; i > 1; i--) {
        seed = seed * 1103515245u + 12345u;
        size_t j = (seed >> 8) % i;
        pm t0 = all[2 * (i - 1)], t1 = all[2 * (i - 1) + 1];
        all[2 * (i - 1)] = all[2 * j];
        all[2 * (i - 1) + 1] = all[2 * j + 1];
        all[2 * j] = t0;
        all[2 * j + 1] = t1;
    }
    for (size_t i = 0; i < n; i += 2) {
        snprintf(s, sizeof(s), "%s%s", all[i].l, all[i].r);
        vocab_add(&v, s, &id);
        merge_add(&m, all[i].l, all[i].r);
    }
    for (size_t i = 1; i < n; i += 2) {
        char t[5];
        snprintf(t, sizeof(t), " %s", all[i].r);
        vocab_add(&v, t, &id);
        merge_add(&m, all[i].l, all[i].r);
    }
    rouse_buf_append_str(&v, ",\"<|endoftext|>\":");
    rouse_buf_appendf(&v, "%d}", id);
    free(all);
    rouse_errbuf eb = {0};
    if (tok_load_gpt2((const char *)v.data, v.len, (const char *)m.data, m.len, &fixed, &eb) < 0) {
        fprintf(stderr, "fuzz_tokenizer: the fixed tokenizer does not load: %s\n", eb.msg);
        abort();
    }
    rouse_buf_fini(&v);
    rouse_buf_fini(&m);
}

static void round_trip(const tok_tokenizer *t, const uint8_t *data, size_t size)
{
    rouse_errbuf eb = {0};
    int32_t *ids;
    size_t n;
    size_t bad;
    bool valid = tok_utf8_valid((const char *)data, size, &bad);
    int rc = tok_encode(t, (const char *)data, size, &ids, &n, &eb);
    if (!valid) {
        if (rc != ROUSE_EINVAL || ids || n) abort();
        char want[64];
        snprintf(want, sizeof(want), "invalid UTF-8 at byte %zu", bad);
        if (bad >= size || strcmp(eb.msg, want) != 0) abort();
        return;
    }
    if (rc == ROUSE_ENOMEM) return;
    if (rc != 0 || !ids) abort();
    char *text;
    size_t len;
    rc = tok_decode(t, ids, n, &text, &len, &eb);
    if (rc == 0) {
        /* With a prefix space the decoded text has one more byte in front. */
        size_t skip = len > size ? len - size : 0;
        if (len - skip != size || memcmp(text + skip, data, size) != 0) abort();
        free(text);
    }
    /* Streaming: pieces of valid UTF-8, at most 3 bytes held back. */
    char held[4 + 1024];
    size_t n_held = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const char *b = tok_token_bytes(t, ids[i], &l);
        if (!b) abort();
        if (n_held + l > sizeof(held)) {
            n_held = 0; /* a long token (an added one): start over */
            continue;
        }
        memcpy(held + n_held, b, l);
        n_held += l;
        size_t k = tok_utf8_complete(held, n_held);
        if (n_held - k > 3) abort();
        memmove(held, held + k, n_held - k);
        n_held -= k;
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!fixed) build_fixed();
    rouse_errbuf eb = {0};
    tok_tokenizer *t = NULL;

    if (tok_load_hf_json((const char *)data, size, &t, &eb) == 0) {
        if (tok_vocab_size(t) == 0 || tok_vocab_size(t) > TOK_MAX_VOCAB) abort();
        round_trip(t, data, size);
        tok_free(t);
    } else if (t || eb.msg[0] == '\0') {
        abort();
    }

    const uint8_t *nul = memchr(data, 0, size);
    if (nul) {
        size_t vl = (size_t)(nul - data);
        if (tok_load_gpt2((const char *)data, vl, (const char *)nul + 1, size - vl - 1, &t, &eb) ==
            0) {
            round_trip(t, nul + 1, size - vl - 1);
            tok_free(t);
        } else if (t) {
            abort();
        }
    }

    round_trip(fixed, data, size);
    return 0;
}
