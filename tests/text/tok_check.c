/*
 * Checks the tokenizer against a reference's cases:
 *   tok_check DIR CASES VOCAB_SIZE EOS
 * loads DIR/vocab.json + DIR/merges.txt, and DIR/tokenizer.json and
 * DIR/tokenizer_pairs.json when they exist, checks the vocabulary size and
 * the end-of-text id, and for every case of CASES ([{"text", "ids"}]) checks
 * that each tokenizer encodes the text to the reference's ids, that decoding
 * those ids gives the text back, and that streaming the ids one by one
 * through tok_utf8_complete sends the same bytes in valid UTF-8 pieces.
 * Prints the first mismatches in full and a summary; exits 1 on any.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/json.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

static char *slurp(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s%s%s", dir, dir[0] ? "/" : "", name);
    FILE *f = fopen(path, "rb");
    if (!f && strncmp(name, "tokenizer", 9) == 0) return NULL; /* optional */
    if (!f) {
        fprintf(stderr, "tok_check: cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) exit(1);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void print_ids(const char *label, const int32_t *ids, size_t n)
{
    fprintf(stderr, "  %s (%zu):", label, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %d", (int)ids[i]);
    fprintf(stderr, "\n");
}

/* Streams ids one at a time as a generator would; returns 0 when the pieces
 * sent are valid UTF-8 each and add up to the text. */
static int check_stream(const tok_tokenizer *t, const int32_t *ids, size_t n, const char *text,
                        size_t len)
{
    char held[8 + 4096];
    size_t n_held = 0, sent = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l;
        const char *b = tok_token_bytes(t, ids[i], &l);
        if (!b || n_held + l > sizeof(held)) return -1;
        memcpy(held + n_held, b, l);
        n_held += l;
        size_t k = tok_utf8_complete(held, n_held);
        if (!tok_utf8_valid(held, k, NULL)) return -1;
        if (sent + k > len || memcmp(text + sent, held, k) != 0) return -1;
        sent += k;
        memmove(held, held + k, n_held - k);
        n_held -= k;
        if (n_held > 3) return -1;
    }
    return n_held == 0 && sent == len ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: tok_check DIR CASES VOCAB_SIZE EOS\n");
        return 2;
    }
    const char *dir = argv[1];
    size_t want_vocab = strtoul(argv[3], NULL, 10);
    int want_eos = atoi(argv[4]);
    size_t vl, ml, jl = 0, pl = 0, cl;
    char *vocab = slurp(dir, "vocab.json", &vl), *merges = slurp(dir, "merges.txt", &ml);
    char *hf = slurp(dir, "tokenizer.json", &jl), *hfp = slurp(dir, "tokenizer_pairs.json", &pl);
    char *cases_text = slurp("", argv[2], &cl);
    rouse_errbuf eb = {0};
    tok_tokenizer *t[3] = {NULL, NULL, NULL};
    static const char *const names[3] = {"vocab.json+merges.txt", "tokenizer.json",
                                         "tokenizer.json (pairs)"};
    if (tok_load_gpt2(vocab, vl, merges, ml, &t[0], &eb) < 0 ||
        (hf && tok_load_hf_json(hf, jl, &t[1], &eb) < 0) ||
        (hfp && tok_load_hf_json(hfp, pl, &t[2], &eb) < 0)) {
        fprintf(stderr, "tok_check: load: %s\n", eb.msg);
        return 1;
    }
    int n_tok = hf && hfp ? 3 : 1;
    for (int k = 0; k < n_tok; k++) {
        if (tok_vocab_size(t[k]) != want_vocab || tok_eos(t[k]) != want_eos) {
            fprintf(stderr, "tok_check: %s: vocabulary %zu, eos %d (expected %zu, %d)\n", names[k],
                    tok_vocab_size(t[k]), (int)tok_eos(t[k]), want_vocab, want_eos);
            return 1;
        }
    }

    rouse_arena arena;
    rouse_arena_init(&arena, 0);
    json_value *root;
    if (json_parse(cases_text, cl, &arena, &root, &eb) < 0 || root->type != JSON_ARRAY) {
        fprintf(stderr, "tok_check: cases.json: %s\n", eb.msg);
        return 1;
    }
    size_t n_cases = root->u.arr.n, n_tokens = 0, n_bad = 0, n_bytes = 0;
    int32_t *want = NULL;
    for (size_t c = 0; c < n_cases; c++) {
        const json_value *cs = root->u.arr.items[c], *tv = json_get(cs, "text"),
                         *iv = json_get(cs, "ids");
        const char *text = tv->u.str.s;
        size_t len = tv->u.str.len, n_want = iv->u.arr.n;
        want = realloc(want, (n_want + 1) * sizeof(*want));
        for (size_t i = 0; i < n_want; i++) {
            int64_t v = 0;
            json_as_int64(iv->u.arr.items[i], &v);
            want[i] = (int32_t)v;
        }
        n_tokens += n_want;
        n_bytes += len;
        bool bad = false;
        for (int k = 0; k < n_tok; k++) {
            int32_t *ids;
            size_t n;
            if (tok_encode(t[k], text, len, &ids, &n, &eb) < 0) {
                fprintf(stderr, "case %zu: %s: encode: %s\n", c, names[k], eb.msg);
                bad = true;
                continue;
            }
            if (n != n_want || memcmp(ids, want, n * sizeof(*ids)) != 0) {
                if (n_bad < 10) {
                    fprintf(stderr, "case %zu (%s): ids differ for the text:\n  \"", c, names[k]);
                    for (size_t i = 0; i < len; i++) {
                        unsigned char ch = (unsigned char)text[i];
                        if (ch < 0x20 || ch == '"' || ch == '\\')
                            fprintf(stderr, "\\x%02x", ch);
                        else
                            fputc(ch, stderr);
                    }
                    fprintf(stderr, "\"\n");
                    print_ids("reference", want, n_want);
                    print_ids("rouse    ", ids, n);
                }
                bad = true;
            }
            free(ids);
        }
        char *back;
        size_t back_len;
        if (tok_decode(t[0], want, n_want, &back, &back_len, &eb) < 0 || back_len != len ||
            memcmp(back, text, len) != 0) {
            fprintf(stderr, "case %zu: decoding the reference's ids does not give the text back\n",
                    c);
            bad = true;
        }
        free(back);
        if (check_stream(t[0], want, n_want, text, len) < 0) {
            fprintf(
                stderr,
                "case %zu: streaming the ids one by one does not give the text in valid pieces\n",
                c);
            bad = true;
        }
        n_bad += bad;
    }
    printf("tok_check: %zu cases (%zu bytes, %zu tokens), %d loader%s: %zu mismatched\n", n_cases,
           n_bytes, n_tokens, n_tok, n_tok > 1 ? "s" : "", n_bad);
    free(want);
    rouse_arena_fini(&arena);
    for (int k = 0; k < 3; k++)
        tok_free(t[k]);
    free(vocab);
    free(merges);
    free(hf);
    free(hfp);
    free(cases_text);
    return n_bad ? 1 : 0;
}
