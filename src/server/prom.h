/*
 * The Prometheus text exposition format (version 0.0.4): family headers,
 * samples with escaped label values, and a fixed-bucket histogram cheap
 * enough to observe on every request (no allocation, a short scan over
 * constant bounds, plain integer adds: the loop thread owns it).
 */
#ifndef ROUSE_SERVER_PROM_H
#define ROUSE_SERVER_PROM_H

#include <stdint.h>

#include "common/buf.h"

/* Upper bounds in µs of the buckets every rouse histogram uses (seconds on
 * the wire): 100 µs to 60 s, roughly 1-2.5-5 per decade; +Inf is implied. */
#define PROM_N_BUCKETS 18

typedef struct prom_hist {
    uint64_t bucket[PROM_N_BUCKETS + 1]; /* per bucket, not cumulative; last = +Inf */
    uint64_t count;
    uint64_t sum_us;
} prom_hist;

/* Records one observation of `us` microseconds. */
void prom_hist_observe(prom_hist *h, uint64_t us);

/* "# HELP name help\n# TYPE name type\n". */
int prom_family(rouse_buf *b, const char *name, const char *type, const char *help);

/* A label set being written: `{a="x",b="y"}`. Values are escaped (\\, \",
 * \n). Keys must be valid label names (they are constants in our code). */
typedef struct prom_labels {
    char text[512];
    int len;
} prom_labels;

void prom_labels_init(prom_labels *l);
void prom_label(prom_labels *l, const char *key, const char *value);
void prom_label_int(prom_labels *l, const char *key, int64_t value);

/* One sample line: name{labels} value. */
int prom_sample(rouse_buf *b, const char *name, const prom_labels *l, double value);
int prom_sample_u64(rouse_buf *b, const char *name, const prom_labels *l, uint64_t value);

/* The _bucket (cumulative, with le), _sum (seconds) and _count lines of a
 * histogram under `name` with labels l. */
int prom_hist_write(rouse_buf *b, const char *name, const prom_labels *l, const prom_hist *h);

#endif
