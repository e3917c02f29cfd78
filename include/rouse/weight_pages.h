/*
 * Weights in 2 MiB pages. A process that forks many children running the
 * same compiled plan (rouse serve's zygote) may keep a copy of the plan in
 * huge pages; rouse_model_open_plan of that file in the process, or in any
 * child forked after the copy was made, then reads the copy instead of
 * mapping the file. A forked child running the model takes a handful of
 * page faults on its weights, or none, instead of one per 4 KiB page of the
 * file mapping (which fork does not carry over).
 *
 * Two kinds of copy: a hugetlbfs-backed memfd (MFD_HUGETLB, shared, from
 * the pool the administrator reserved in vm.nr_hugepages), or a private
 * anonymous mapping advised MADV_HUGEPAGE (transparent huge pages; fork
 * copies its page tables, so children fault on none of it). The copy is
 * read-only once made and is never written, so every child shares the
 * same physical pages.
 */
#ifndef ROUSE_WEIGHT_PAGES_H
#define ROUSE_WEIGHT_PAGES_H

#include <stddef.h>

#include "rouse/err.h"

typedef enum rouse_weight_pages {
    ROUSE_WEIGHT_PAGES_4K = 0,  /* the plain file mapping: no copy */
    ROUSE_WEIGHT_PAGES_THP,     /* anonymous copy, MADV_HUGEPAGE */
    ROUSE_WEIGHT_PAGES_HUGETLB, /* hugetlbfs memfd copy */
} rouse_weight_pages;

/* "4k", "thp" or "hugetlb". */
const char *rouse_weight_pages_name(rouse_weight_pages k);

/* Parses "4k", "thp", "hugetlb" (0) or "auto" (1, *out untouched); < 0 for
 * anything else. */
int rouse_weight_pages_parse(const char *s, rouse_weight_pages *out);

/* Decides what this machine gives for `want` ("auto", "hugetlb", "thp" or
 * "4k"): auto takes hugetlb when a huge page can be reserved, else 4k
 * (thp only when asked for: it measured slower than 4k from zero). A kind asked for by name
 * that the machine cannot give is an error naming the setting that stops
 * it (ROUSE_EUNSUPPORTED), never a silent fallback. */
int rouse_weight_pages_choose(const char *want, rouse_weight_pages *out, rouse_errbuf *eb);

/* Copies the plan file at path into pages of kind `k` and keeps the copy
 * in this process (children forked afterwards inherit it): later opens of
 * the same file (same device, inode, size and modification time) read it.
 * A hugetlb copy that the reserved pool cannot hold falls back to a thp
 * copy (*got says which was made). 1 when a copy was made, 0 when one was
 * kept already (or k is 4k), < 0 when none could be made. Copies beyond
 * ROUSE_WEIGHT_PAGES_MAX_BYTES in all drop the oldest unused first. */
int rouse_weight_pages_keep(const char *path, rouse_weight_pages k, rouse_weight_pages *got,
                            rouse_errbuf *eb);

/* The copy kept for the open file fd (fstat'd by the caller into the four
 * keys), or NULL; *len its length, *kind its kind. Counted as in use until
 * rouse_weight_pages_release(buf). */
const void *rouse_weight_pages_find(unsigned long dev, unsigned long ino, long long size,
                                    long long mtime_ns, size_t *len, rouse_weight_pages *kind);
void rouse_weight_pages_release(const void *buf);

struct rouse_model;
/* What the model's weights are read from: the kind of the kept copy it
 * opened, or 4k for the file mapping. */
rouse_weight_pages rouse_model_weight_pages(const struct rouse_model *m);

/* Bytes of copies kept in this process, by all kinds. */
size_t rouse_weight_pages_kept_bytes(void);

#define ROUSE_WEIGHT_PAGES_MAX_BYTES ((size_t)4 << 30)

#endif
