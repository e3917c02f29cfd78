/*
 * Writing and reading compiled plan files (format: plan_format.h).
 */
#ifndef ROUSE_ENGINE_PLAN_FILE_H
#define ROUSE_ENGINE_PLAN_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/exec.h"
#include "engine/graph.h"
#include "rouse/engine.h"
#include "rouse/err.h"

/* Writes the optimized graph g, its live constants and the packed weights to
 * path: into a temporary file in the same directory, fsynced, then renamed,
 * so a reader never sees half a plan. Each constant is stored once, and
 * each (constant, layout) pair of `packed` once. A plan larger than
 * max_ratio x model_bytes + PLAN_SIZE_SLACK is refused (ROUSE_ETOOBIG,
 * nothing written); max_ratio <= 0 means no limit. */
/* g->precision is recorded; `acc` (may be NULL: nothing measured) is the
 * accuracy section. */
int eng_plan_file_write(const char *path, const eng_graph *g, const uint8_t model_sha256[32],
                        const eng_packed_set *packed, const rouse_accuracy *acc,
                        uint64_t model_bytes, double max_ratio, rouse_errbuf *eb);

/* A plan read from memory (normally an mmap of the file). The graph's names
 * and constants point into buf, which must outlive it. */
typedef struct eng_plan_file {
    eng_graph graph;
    eng_packed *packed; /* layouts copied into the graph's arena, data in buf */
    int n_packed;
    uint8_t model_sha256[32];
    rouse_accuracy accuracy; /* names and arrays in the graph's arena or buf */
} eng_plan_file;

/* Checks the header against this build and machine (ROUSE_EMISMATCH: made
 * elsewhere, recompile) and the metadata (ROUSE_EFORMAT: damaged or hostile),
 * then builds the graph. Touches no constant data. */
int eng_plan_file_read(const void *buf, size_t len, eng_plan_file *pf, rouse_errbuf *eb);
void eng_plan_file_fini(eng_plan_file *pf);

#endif
