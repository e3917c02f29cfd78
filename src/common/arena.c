/*
 * Arena allocator. Invariant: head->used <= head->cap, and every pointer handed
 * out lies inside a block of the chain.
 */
#include "common/arena.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
    struct arena_block *prev;
    size_t cap;
    size_t used;
    /* Payload follows, aligned to max_align_t. */
    _Alignas(max_align_t) unsigned char data[];
};

void rouse_arena_init(rouse_arena *a, size_t block_size)
{
    a->head = NULL;
    a->spare = NULL;
    a->block_size = block_size ? block_size : 64 * 1024;
    a->total = 0;
    a->keep = 0;
    a->kept = 0;
    a->limit = 0;
    a->over = false;
}

void rouse_arena_set_limit(rouse_arena *a, size_t bytes)
{
    a->limit = bytes;
}

static void free_chain(struct arena_block *b)
{
    while (b) {
        struct arena_block *prev = b->prev;
        free(b);
        b = prev;
    }
}

void rouse_arena_fini(rouse_arena *a)
{
    free_chain(a->head);
    free_chain(a->spare);
    a->head = NULL;
    a->spare = NULL;
    a->total = 0;
    a->kept = 0;
}

void rouse_arena_keep(rouse_arena *a, size_t bytes)
{
    a->keep = bytes;
}

void rouse_arena_reset(rouse_arena *a)
{
    a->over = false;
    if (!a->head) return;
    struct arena_block *b = a->head->prev;
    while (b) {
        struct arena_block *prev = b->prev;
        if (a->kept <= a->keep && b->cap <= a->keep - a->kept) {
            b->prev = a->spare;
            a->spare = b;
            a->kept += b->cap;
        } else {
            free(b);
        }
        b = prev;
    }
    a->head->prev = NULL;
    a->head->used = 0;
    a->total = 0;
    a->over = false;
}

/* A kept block of at least cap bytes, unlinked from the spare list, or NULL.
 * The first that fits: most are regular blocks, all the same size. */
static struct arena_block *take_spare(rouse_arena *a, size_t cap)
{
    for (struct arena_block **link = &a->spare; *link; link = &(*link)->prev) {
        struct arena_block *b = *link;
        if (b->cap < cap) continue;
        *link = b->prev;
        a->kept -= b->cap;
        return b;
    }
    return NULL;
}

static uintptr_t align_up(uintptr_t p, size_t align)
{
    return (p + (align - 1)) & ~(uintptr_t)(align - 1);
}

void *rouse_arena_alloc(rouse_arena *a, size_t size, size_t align)
{
    assert(align && (align & (align - 1)) == 0 && align <= 4096);
    if (size == 0) size = 1;
    if (a->limit && (size > a->limit || a->total > a->limit - size)) {
        a->over = true;
        return NULL;
    }
    struct arena_block *b = a->head;
    if (b) {
        uintptr_t base = (uintptr_t)b->data;
        uintptr_t p = align_up(base + b->used, align);
        if (p >= base && p - base <= b->cap && size <= b->cap - (p - base)) {
            b->used = (size_t)(p - base) + size;
            a->total += size;
            return (void *)p;
        }
    }
    /* New block: room for the request plus worst-case alignment padding. */
    if (size > SIZE_MAX - align - sizeof(struct arena_block)) return NULL;
    size_t cap = size + align;
    if (cap < a->block_size) cap = a->block_size;
    struct arena_block *nb = take_spare(a, cap);
    if (nb) {
        cap = nb->cap;
    } else {
        if (!(nb = malloc(sizeof(*nb) + cap))) return NULL;
        nb->cap = cap;
    }
    nb->used = 0;
    /* A big one-off block goes behind the current head so that the head's free
     * space stays usable for later small allocations. */
    if (b && cap > a->block_size && b->used < b->cap) {
        nb->prev = b->prev;
        b->prev = nb;
    } else {
        nb->prev = b;
        a->head = nb;
    }
    uintptr_t base = (uintptr_t)nb->data;
    uintptr_t p = align_up(base, align);
    nb->used = (size_t)(p - base) + size;
    a->total += size;
    return (void *)p;
}

void *rouse_arena_calloc(rouse_arena *a, size_t n, size_t size, size_t align)
{
    if (size && n > SIZE_MAX / size) return NULL;
    size_t bytes = n * size;
    void *p = rouse_arena_alloc(a, bytes, align);
    if (p && bytes) memset(p, 0, bytes);
    return p;
}

char *rouse_arena_strndup(rouse_arena *a, const char *s, size_t len)
{
    if (len == SIZE_MAX) return NULL;
    char *p = rouse_arena_alloc(a, len + 1, 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *rouse_arena_strdup(rouse_arena *a, const char *s)
{
    return rouse_arena_strndup(a, s, strlen(s));
}
