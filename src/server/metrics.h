/*
 * serve's Prometheus metrics (GET /metrics): counters and histograms per
 * function, updated by an invocation sink (server/invocation.h) on the loop
 * thread, and written out with the gauges read at scrape time (the pool's
 * instances and queues, the instances' memory, the process itself).
 *
 * Updating is cheap and lock-free because only the loop thread touches the
 * registry: a function's series are allocated once, when the function is
 * first seen (a hash of its name finds them afterwards), and an invocation
 * adds to integers in place. Only a new (version, status) pair of a
 * function grows its small table.
 *
 * Series exist only for functions that resolved to a version: a request
 * for a name that does not exist makes no series (so that unknown names
 * cannot grow the registry).
 */
#ifndef ROUSE_SERVER_METRICS_H
#define ROUSE_SERVER_METRICS_H

#include <stdint.h>

#include "common/buf.h"
#include "server/invocation.h"

typedef struct metrics metrics;

/* Owned: free with metrics_destroy. NULL when out of memory. */
metrics *metrics_create(void);
void metrics_destroy(metrics *m);

/* The invocation sink (invocation_sink_fn) that counts inv; user is the
 * metrics. */
void metrics_on_invocation(void *user, const invocation *inv);

/* What the scrape reads besides the registry. */
typedef struct metrics_extra {
    const struct pool *pool;    /* instances, queues, instance memory */
    double loop_lag_max_s;      /* the longest loop iteration since the last scrape */
    uint64_t spans_exported;    /* OTLP */
    uint64_t spans_dropped;     /* OTLP: queue full or collector failing */
    uint64_t log_lines_dropped; /* access log: queue full */
    uint64_t instance_oom_kills; /* instances killed by their memory limit */
    int state_stale;             /* --state: -1 none, 0 shared, 1 PostgreSQL unreachable */
} metrics_extra;

/* Appends the whole exposition (every family, with HELP and TYPE). */
int metrics_write(metrics *m, const metrics_extra *x, rouse_buf *out);

#endif

/* --- what /proc says (metrics_proc.c) -------------------------------------- */

/* The process families of the Prometheus client libraries for serve
 * itself: process_resident_memory_bytes, process_cpu_seconds_total,
 * process_open_fds, process_max_fds, process_start_time_seconds. */
int metrics_write_process(rouse_buf *out);
/* A process's proportional set size in bytes (shared pages divided among
 * the processes sharing them, so that instances forked from one template
 * are not each charged its whole model), from /proc/PID/smaps_rollup, or
 * its resident set from /proc/PID/statm where that is missing; 0 when the
 * process is gone. */
uint64_t metrics_pid_memory(int pid);
