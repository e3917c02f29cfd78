/*
 * Arena allocator: many small allocations freed in one call.
 *
 * Memory comes from a chain of blocks; an allocation larger than the block
 * size gets a block of its own. Pointers stay valid until rouse_arena_reset()
 * or rouse_arena_fini(). Used for per-request memory and for everything a
 * loaded model owns (names, attributes, node lists).
 */
#ifndef ROUSE_COMMON_ARENA_H
#define ROUSE_COMMON_ARENA_H

#include <stddef.h>

struct arena_block;

typedef struct rouse_arena {
    struct arena_block *head; /* current block, chained to older ones */
    size_t block_size;        /* payload size of a regular block */
    size_t total;             /* bytes handed out, for statistics */
} rouse_arena;

/* Caller-owned struct. block_size 0 selects 64 KiB. Never fails: blocks are
 * allocated lazily. */
void rouse_arena_init(rouse_arena *a, size_t block_size);

/* Frees every block. */
void rouse_arena_fini(rouse_arena *a);

/* Frees everything but the newest block, which is reused from its start. */
void rouse_arena_reset(rouse_arena *a);

/* size bytes aligned to `align` (a power of two, at most 4096); NULL when out of
 * memory or on overflow. Borrowed: valid until reset/fini. size 0 returns a
 * unique non-NULL pointer. */
void *rouse_arena_alloc(rouse_arena *a, size_t size, size_t align);

/* Zeroed array of n elements of `size` bytes; NULL on overflow of n * size. */
void *rouse_arena_calloc(rouse_arena *a, size_t n, size_t size, size_t align);

/* NUL-terminated copy of s[0..len) (s need not be terminated). */
char *rouse_arena_strndup(rouse_arena *a, const char *s, size_t len);
char *rouse_arena_strdup(rouse_arena *a, const char *s);

#endif
