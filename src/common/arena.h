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

#include <stdbool.h>
#include <stddef.h>

struct arena_block;

typedef struct rouse_arena {
    struct arena_block *head;  /* current block, chained to older ones */
    struct arena_block *spare; /* blocks kept by reset for reuse */
    size_t block_size;         /* payload size of a regular block */
    size_t total;              /* bytes handed out, for statistics */
    size_t keep;               /* block bytes reset may keep (rouse_arena_keep) */
    size_t kept;               /* block bytes on the spare list */
    size_t limit;              /* most bytes handed out between resets; 0: no limit */
    bool over;                 /* an allocation failed on the limit since the last reset */
} rouse_arena;

/* Caller-owned struct. block_size 0 selects 64 KiB. Never fails: blocks are
 * allocated lazily. */
void rouse_arena_init(rouse_arena *a, size_t block_size);

/* Frees every block. */
void rouse_arena_fini(rouse_arena *a);

/* Frees everything but the newest block, which is reused from its start;
 * with rouse_arena_keep, older blocks up to that many bytes are kept for
 * later allocations instead of being freed. */
void rouse_arena_reset(rouse_arena *a);

/* Lets reset keep up to `bytes` of blocks (0, the default, keeps none). For
 * an arena reset after every request: a large request's memory is then
 * reused by the next one instead of being returned to the system and faulted
 * in again, page by page (a 1.8 MB JSON body builds 9 MB of values). */
void rouse_arena_keep(rouse_arena *a, size_t bytes);

/* Bounds the bytes handed out between two resets (0, the default: no
 * bound): an allocation past it returns NULL and sets a->over, so that a
 * caller can tell a budget spent (a JSON body that decodes into more
 * values than the instance may hold) from the system's memory running out. */
void rouse_arena_set_limit(rouse_arena *a, size_t bytes);

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
