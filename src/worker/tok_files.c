/*
 * Reading a tokenizer's files (tok_files.h): each read whole into memory,
 * parsed by src/text, freed.
 */
#include "worker/tok_files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int slurp(const char *what, const char *path, char **buf, size_t *len, rouse_errbuf *eb)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return rouse_err_set(eb, ROUSE_EIO, "%s: cannot open: %s", what, strerror(errno));
    size_t cap = 1 << 16;
    char *b = malloc(cap);
    size_t n = 0, got;
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    }
    int err = ferror(f);
    fclose(f);
    if (!b) return rouse_err_set(eb, ROUSE_ENOMEM, "%s: out of memory", what);
    if (err) {
        free(b);
        return rouse_err_set(eb, ROUSE_EIO, "%s: cannot read", what);
    }
    *buf = b;
    *len = n;
    return 0;
}

int worker_tok_load(const worker_tok_paths *p, tok_tokenizer **out, rouse_errbuf *eb)
{
    *out = NULL;
    char *a = NULL, *b = NULL;
    size_t al, bl;
    int rc = 0;
    if (p->json) {
        if ((rc = slurp("tokenizer", p->json, &a, &al, eb)) == 0 &&
            (rc = tok_load_hf_json(a, al, out, eb)) < 0)
            rc = rouse_err_wrap(eb, rc, "tokenizer");
    } else if (p->vocab || p->merges) {
        if (!p->vocab || !p->merges)
            return rouse_err_set(eb, ROUSE_EINVAL, "tokenizer: needs both vocab and merges");
        if ((rc = slurp("tokenizer.vocab", p->vocab, &a, &al, eb)) == 0 &&
            (rc = slurp("tokenizer.merges", p->merges, &b, &bl, eb)) == 0 &&
            (rc = tok_load_gpt2(a, al, b, bl, out, eb)) < 0)
            rc = rouse_err_wrap(eb, rc, "tokenizer");
    }
    free(a);
    free(b);
    return rc;
}
