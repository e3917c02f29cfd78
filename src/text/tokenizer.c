/*
 * Encoding and decoding with a loaded tokenizer (tokenizer_int.h).
 *
 * Encoding: validate the UTF-8, split it into pieces (pretok.h), and within
 * each piece start from one token per byte and merge the adjacent pair of
 * lowest rank until no pair has a merge. The pairs wait in a binary heap
 * ordered by (rank, position), so a piece of n bytes costs O(n log n) however
 * it is built, and among equal ranks the leftmost merges first, which is what
 * GPT-2's loop (merge every occurrence of the best pair, left to right) does.
 * A heap entry is checked when it is taken: it is stale when its left symbol
 * has been merged away or has changed, or its right neighbour has; a merge
 * always makes a longer token (tokenizer_int.h), so a symbol never gets an
 * id back that it had before and the check by ids is exact.
 */
#include "text/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "text/pretok.h"
#include "text/tokenizer_int.h"
#include "text/utf8.h"

uint64_t tok_merge_hash(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

const tok_merge *tok_merge_find(const tok_tokenizer *t, int32_t left, int32_t right)
{
    if (!t->merges) return NULL;
    uint64_t key = ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
    for (size_t h = tok_merge_hash(key) & t->merge_mask;; h = (h + 1) & t->merge_mask) {
        const tok_merge *m = &t->merges[h];
        if (m->key == key) return m;
        if (m->key == UINT64_MAX) return NULL;
    }
}

/* --- BPE within one piece ------------------------------------------------- */

typedef struct sym {
    int32_t id;
    int32_t prev, next; /* -1 at the ends; a merged-away symbol has id -1 */
} sym;

typedef struct pair {
    int32_t rank;
    int32_t pos; /* the left symbol */
    int32_t left, right;
} pair;

typedef struct scratch {
    sym *syms;
    pair *heap;
    size_t cap; /* symbols; the heap holds 3 * cap */
} scratch;

static bool pair_less(const pair *a, const pair *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(pair *h, size_t *n, pair p)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_less(&p, &h[up])) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = p;
}

static pair heap_pop(pair *h, size_t *n)
{
    pair top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && pair_less(&h[c + 1], &h[c])) c++;
        if (!pair_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

static void push_if_merge(const tok_tokenizer *t, const sym *s, pair *h, size_t *nh, int32_t pos)
{
    int32_t r = s[pos].next;
    if (r < 0) return;
    const tok_merge *m = tok_merge_find(t, s[pos].id, s[r].id);
    if (m) heap_push(h, nh, (pair){m->rank, pos, s[pos].id, s[r].id});
}

typedef struct idvec {
    int32_t *v;
    size_t n, cap;
} idvec;

static int idvec_push(idvec *o, int32_t id)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 64;
        int32_t *v = realloc(o->v, cap * sizeof(*v));
        if (!v) return ROUSE_ENOMEM;
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = id;
    return 0;
}

static int bpe_piece(const tok_tokenizer *t, const unsigned char *p, size_t n, scratch *sc,
                     idvec *out)
{
    if (n == 1) return idvec_push(out, t->byte_id[p[0]]);
    if (n > sc->cap) {
        size_t cap = n > 2 * sc->cap ? n : 2 * sc->cap;
        sym *s = malloc(cap * sizeof(*s));
        pair *h = malloc(3 * cap * sizeof(*h));
        if (!s || !h) {
            free(s);
            free(h);
            return ROUSE_ENOMEM;
        }
        free(sc->syms);
        free(sc->heap);
        sc->syms = s;
        sc->heap = h;
        sc->cap = cap;
    }
    sym *s = sc->syms;
    pair *h = sc->heap;
    size_t nh = 0;
    for (size_t i = 0; i < n; i++)
        s[i] = (sym){t->byte_id[p[i]], (int32_t)i - 1, i + 1 < n ? (int32_t)i + 1 : -1};
    for (size_t i = 0; i + 1 < n; i++)
        push_if_merge(t, s, h, &nh, (int32_t)i);

    /* Each merge removes a symbol and pushes at most two pairs: the heap
     * never holds more than (n - 1) + 2 * (n - 1) entries. */
    while (nh > 0) {
        pair top = heap_pop(h, &nh);
        sym *l = &s[top.pos];
        if (l->id != top.left || l->next < 0) continue;
        sym *r = &s[l->next];
        if (r->id != top.right) continue;
        l->id = tok_merge_find(t, top.left, top.right)->id;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = top.pos;
        r->id = -1;
        if (l->prev >= 0) push_if_merge(t, s, h, &nh, l->prev);
        push_if_merge(t, s, h, &nh, top.pos);
    }
    for (int32_t i = 0; i >= 0; i = s[i].next) {
        int rc = idvec_push(out, s[i].id);
        if (rc < 0) return rc;
    }
    return 0;
}

int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int32_t **ids, size_t *n_ids,
               rouse_errbuf *eb)
{
    size_t bad;
    *ids = NULL;
    *n_ids = 0;
    if (len > INT32_MAX)
        return rouse_err_set(eb, ROUSE_ETOOBIG, "text of %zu bytes: at most %d", len, INT32_MAX);
    if (len && !tok_utf8_valid(text, len, &bad))
        return rouse_err_set(eb, ROUSE_EINVAL, "invalid UTF-8 at byte %zu", bad);

    char *prefixed = NULL;
    if (t->add_prefix_space && len > 0 && text[0] != ' ') {
        prefixed = malloc(len + 1);
        if (!prefixed) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory encoding text");
        prefixed[0] = ' ';
        memcpy(prefixed + 1, text, len);
        text = prefixed;
        len++;
    }

    int rc = 0;
    idvec out = {0};
    scratch sc = {0};
    /* A non-NULL result even for empty text, so callers need not tell an
     * empty encoding from a failure by the pointer. */
    rc = idvec_push(&out, 0);
    out.n = 0;
    for (size_t i = 0; rc == 0 && i < len;) {
        size_t end = tok_pretok_next(text, len, i);
        rc = bpe_piece(t, (const unsigned char *)text + i, end - i, &sc, &out);
        i = end;
    }
    free(sc.syms);
    free(sc.heap);
    free(prefixed);
    if (rc < 0) {
        free(out.v);
        return rouse_err_set(eb, rc, "out of memory encoding %zu bytes of text", len);
    }
    *ids = out.v;
    *n_ids = out.n;
    return 0;
}

/* --- decoding and accessors ----------------------------------------------- */

const char *tok_token_bytes(const tok_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= t->n_vocab || t->tok_len[id] == TOK_ABSENT) return NULL;
    *len = t->tok_len[id];
    return t->bytes + t->tok_off[id];
}

int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n_ids, char **text, size_t *len,
               rouse_errbuf *eb)
{
    size_t total = 0, l;
    *text = NULL;
    *len = 0;
    for (size_t i = 0; i < n_ids; i++) {
        if (!tok_token_bytes(t, ids[i], &l))
            return rouse_err_set(eb, ROUSE_EINVAL, "token %zu: id %d is not in the vocabulary", i,
                                 (int)ids[i]);
        if (total > SIZE_MAX - 1 - l)
            return rouse_err_set(eb, ROUSE_ETOOBIG, "decoded text too large");
        total += l;
    }
    char *o = malloc(total + 1);
    if (!o) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory decoding %zu tokens", n_ids);
    size_t at = 0;
    for (size_t i = 0; i < n_ids; i++) {
        const char *b = tok_token_bytes(t, ids[i], &l);
        memcpy(o + at, b, l);
        at += l;
    }
    o[at] = '\0';
    *text = o;
    *len = at;
    return 0;
}

int32_t tok_eos(const tok_tokenizer *t)
{
    return t->eos;
}

size_t tok_vocab_size(const tok_tokenizer *t)
{
    return t->n_vocab;
}

void tok_free(tok_tokenizer *t)
{
    if (!t) return;
    free(t->tok_off);
    free(t->tok_len);
    free(t->bytes);
    free(t->merges);
    free(t);
}
