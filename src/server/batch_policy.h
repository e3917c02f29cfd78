/*
 * Dynamic batching's decisions, as pure functions of a snapshot (like
 * pool_policy.h), tested from tables: when the calls waiting in a version's
 * queue go to an instance as one batch, and auto mode's batch size limit
 * (additive increase, multiplicative decrease against scaling's SLO).
 * pool_sched.c is the only caller.
 */
#ifndef ROUSE_SERVER_BATCH_POLICY_H
#define ROUSE_SERVER_BATCH_POLICY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct batch_view {
    int n_ready;           /* calls at the head of the queue that may join a batch */
    int limit;             /* the batch size limit now */
    bool pool_idle;        /* nothing of the version is in flight */
    uint64_t waited_ns;    /* how long the oldest of them has waited */
    uint64_t max_delay_ns; /* batching.max_delay_us */
    uint64_t span_ns;      /* from the oldest's arrival to the newest's */
    uint64_t quiet_ns;     /* since the newest of them arrived */
} batch_view;

/* The arrivals of the ready calls have paused when nothing came for
 * BATCH_QUIET_GAPS times their mean gap, and never sooner than
 * BATCH_QUIET_MIN_NS after the newest. */
#define BATCH_QUIET_GAPS 4
#define BATCH_QUIET_MIN_NS (100ull * 1000ull)

/* How many of the ready calls to send now as one batch (an instance has a
 * free slot): all of them, up to the limit, when the limit is reached, when
 * the function was idle (a lone request is never held back), when the
 * oldest has waited max_delay, or when two or more are ready and their
 * arrivals have paused (a burst that ended: more waiting would keep the
 * free instance idle for calls that are not coming; closed-loop clients
 * send their next requests only when these are answered); else 0, and
 * *wait_ns says how much longer they may wait (the earlier of the oldest's
 * max_delay and the pause). */
int batch_decide(const batch_view *v, uint64_t *wait_ns);

#define BATCH_AIMD_WINDOW 8

/* Auto mode's state: the limit, and the run times of the batches since it
 * last changed. */
typedef struct batch_aimd {
    int limit, max;
    uint64_t slo_ns;
    uint64_t run_ns[BATCH_AIMD_WINDOW];
    int n, n_full; /* batches in the window, and those that reached the limit */
} batch_aimd;

/* Starts at a limit of 2 (1 when max is 1). */
void batch_aimd_init(batch_aimd *a, int max, uint64_t slo_ns);

/* A batch of `size` calls ran in run_ns (in the instance). Every
 * BATCH_AIMD_WINDOW batches, the window's p99 run time (its slowest, at
 * this window size) decides: above the SLO the limit halves; within it,
 * and when a quarter of the window's batches were full (there is demand
 * for more), the limit grows by one, up to max. Returns the limit. */
int batch_aimd_observe(batch_aimd *a, int size, uint64_t run_ns);

#endif
