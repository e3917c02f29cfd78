/*
 * Scheduling policy of one function version's instance pool, as a pure
 * function of a snapshot of its state, so that it can be tested from
 * tables and grown (templates, scale-to-zero, batching) without touching
 * the mechanics in pool.c.
 */
#ifndef ROUSE_SERVER_POOL_POLICY_H
#define ROUSE_SERVER_POOL_POLICY_H

#include <stdbool.h>

typedef struct pool_view {
    int n_instances; /* starting or ready, not stopping */
    int n_starting;
    int free_slots; /* sum over ready instances of concurrency - in flight */
    int concurrency;
    int max;         /* scaling.max */
    int n_queued;    /* requests already waiting (not counting the new one) */
    int queue_depth; /* scaling.queue_depth */
    int global_instances, global_max;
} pool_view;

typedef enum pool_decision {
    POOL_DISPATCH,    /* a ready instance has a free slot: send it now */
    POOL_START_QUEUE, /* start one more instance and queue the request */
    POOL_QUEUE,       /* queue: capacity (running or starting) will free up */
    POOL_REJECT,      /* queue full: 429 */
} pool_decision;

/* What to do with one new request. */
pool_decision pool_decide(const pool_view *v);

/* Whether the pool would start an instance for its newest waiting request
 * if only the global cap allowed it (then an idle instance of another pool
 * may make room). */
bool pool_blocked_by_global_cap(const pool_view *v);

/* Whether a ready instance idle for idle_ms should stop, given the pool's
 * instance count, scaling.min and scaling.idle_timeout_ms. */
bool pool_should_stop_idle(int n_instances, int min, long long idle_ms, long long idle_timeout_ms);

#endif
