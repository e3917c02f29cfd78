/*
 * Summing usage into a query's answer (store/usage.h), the part that the
 * SQLite store (usage_sqlite.c) and the PostgreSQL store (usage_pg.c)
 * share: groups found by their key through a hash, records added one by
 * one (each hour's peak concurrency computed as the next hour begins, when
 * records come in time order), hourly aggregates added as sums, and the
 * result sorted and its peaks merged at the end.
 *
 * Private to src/store.
 */
#ifndef ROUSE_STORE_USAGE_AGG_H
#define ROUSE_STORE_USAGE_AGG_H

#include <stdbool.h>
#include <stdint.h>

#include "store/usage.h"

/* Peaks collected, merged and sorted by usage_acc_result. */
typedef struct usage_peaks {
    int n, cap;
    usage_peak *v;
} usage_peaks;

/* Adds a peak (a repeat of the last entry merges into it). 0 or
 * ROUSE_ENOMEM. */
int usage_peaks_add(usage_peaks *p, const char *function, int64_t hour_us, int64_t peak);

/* The runs of one hour's calls, per function, while a pass over records
 * in time order computes each hour's peaks. */
typedef struct usage_fn_runs {
    char name[STORE_NAME_MAX + 1];
    int64_t *s, *e;
    int n, cap;
} usage_fn_runs;

typedef struct usage_hour_runs {
    usage_fn_runs *v;
    int n, cap, last;
    int64_t hour; /* -1 before the first record */
} usage_hour_runs;

/* Adds a run [start, end) of fn to the hour being collected. */
int usage_runs_add(usage_hour_runs *h, const char *fn, int64_t start, int64_t end);
/* Adds each function's peak of the hour to pk and empties the hour. */
int usage_runs_flush(usage_hour_runs *h, usage_peaks *pk);
void usage_runs_fini(usage_hour_runs *h);

/* The start of the hour of t (µs), and the billed ms of a run. */
int64_t usage_hour_of(int64_t t);
int64_t usage_billed_of(int64_t run_us);

/* The groups being summed, by (text key, integer key). */
typedef struct usage_groups {
    int n, cap, last;
    usage_group *v;
    int *slots; /* index + 1, 0 when free; n_slots a power of two > 2n */
    int n_slots;
} usage_groups;

/* One record as a store reads it. node: the node that recorded it (NULL:
 * the query's own, q->node). wait_us: queue + start µs. */
typedef struct usage_row {
    const char *function, *node;
    int64_t version, ts_us, total_us, run_us, memory_mb, bytes_in, bytes_out, wait_us;
    int start, status;
} usage_row;

/* A query's answer being collected. */
typedef struct usage_acc {
    const usage_query *q;
    usage_groups g;
    usage_peaks pk;
    usage_hour_runs hr;
    bool stream_peaks; /* records come in time order: their runs make the peaks */
    int64_t first;     /* the earliest record or aggregate hour found, or 0 */
} usage_acc;

void usage_acc_init(usage_acc *a, const usage_query *q, bool stream_peaks);
/* Adds a record: its group's sums and, with stream_peaks, its run. */
int usage_acc_record(usage_acc *a, const usage_row *r);
/* Ends the records (the last hour's peaks). */
int usage_acc_end_records(usage_acc *a);
/* The group of an hourly aggregate row: text is its text key (function,
 * node, or "" for a time grouping), key its integer key (version or the
 * period's start); NULL when out of memory. */
usage_group *usage_acc_group(usage_acc *a, const char *text, int64_t key);
/* Moves the groups and peaks into out, sorted, peaks of one function and
 * hour merged (the larger counts); a keeps nothing. */
void usage_acc_result(usage_acc *a, usage_result *out);
/* Frees what a holds (after an error). */
void usage_acc_fini(usage_acc *a);

#endif
