/*
 * Tokenizers kept for forked processes (tok_keep.h). Invariant: each slot
 * holds a tokenizer and the identity of the files it was read from, or
 * nothing.
 */
#include "worker/tok_keep.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct tok_file_id {
    char path[512];
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} tok_file_id;

typedef struct tok_slot {
    tok_tokenizer *tok;
    tok_file_id id[3]; /* json, vocab, merges (path "" when not named) */
    unsigned long age;
} tok_slot;

static tok_slot kept[TOK_KEPT];
static unsigned long clock_;

/* The identity of p's files; false when one cannot be seen or its path
 * does not fit. */
static bool files_id(const worker_tok_paths *p, tok_file_id id[3])
{
    const char *paths[3] = {p->json, p->vocab, p->merges};
    memset(id, 0, 3 * sizeof(*id));
    for (int i = 0; i < 3; i++) {
        if (!paths[i]) continue;
        struct stat st;
        if (stat(paths[i], &st) < 0 ||
            (size_t)snprintf(id[i].path, sizeof(id[i].path), "%s", paths[i]) >= sizeof(id[i].path))
            return false;
        id[i].dev = st.st_dev;
        id[i].ino = st.st_ino;
        id[i].size = st.st_size;
        id[i].mtime = st.st_mtim;
    }
    return true;
}

static bool same(const tok_file_id *a, const tok_file_id *b)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(a[i].path, b[i].path) || a[i].dev != b[i].dev || a[i].ino != b[i].ino ||
            a[i].size != b[i].size || a[i].mtime.tv_sec != b[i].mtime.tv_sec ||
            a[i].mtime.tv_nsec != b[i].mtime.tv_nsec)
            return false;
    return true;
}

static tok_slot *find(const tok_file_id id[3])
{
    for (int i = 0; i < TOK_KEPT; i++)
        if (kept[i].tok && same(kept[i].id, id)) return &kept[i];
    return NULL;
}

int worker_tok_keep(const worker_tok_paths *p, rouse_errbuf *eb)
{
    if (!p->json && !p->vocab && !p->merges) return 0;
    tok_file_id id[3];
    if (!files_id(p, id)) return 0; /* the load would fail: nothing to keep */
    if (find(id)) return 0;
    tok_tokenizer *t = NULL;
    int rc = worker_tok_load(p, &t, eb);
    if (rc < 0) return rc;
    tok_slot *s = &kept[0];
    for (int i = 1; i < TOK_KEPT; i++)
        if (!kept[i].tok || (s->tok && kept[i].age < s->age)) s = &kept[i];
    tok_free(s->tok);
    s->tok = t;
    memcpy(s->id, id, sizeof(s->id));
    s->age = ++clock_;
    return 1;
}

int worker_tok_take(const worker_tok_paths *p, tok_tokenizer **out, rouse_errbuf *eb)
{
    tok_file_id id[3];
    tok_slot *s = (p->json || p->vocab || p->merges) && files_id(p, id) ? find(id) : NULL;
    if (!s) return worker_tok_load(p, out, eb);
    *out = s->tok;
    s->tok = NULL;
    return 0;
}
