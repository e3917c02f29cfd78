/*
 * Scheduling policy of one function version's instance pool, as a pure
 * function of a snapshot of its state, so that it can be tested from
 * tables and grown (templates, scale-to-zero, batching) without touching
 * the mechanics in pool_sched.c, its only caller.
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

/* Whether an idle instance should stop at once because the pool has more
 * instances than scaling.max (max was lowered by a live change). */
bool pool_over_max(int n_instances, int max);

/* How many instances to start now so that `min` stay warm (provisioned
 * concurrency), within what the global cap leaves free. */
int pool_missing_warm(int n_instances, int min, int global_instances, int global_max);

/* The fair share of the global cap for each of n_active pools (pools with
 * instances or waiting requests): an equal split, at least 1. */
int pool_fair_share(int global_max, int n_active);

/* Whether a pool is starved: it would start an instance but the global cap
 * stops it, and it holds less than its fair share. */
bool pool_is_starved(const pool_view *v, int fair_share);

/* Whether an instance of a pool holding n_instances (scaling.min `min`) that
 * just became idle should stop instead of taking more work, because another
 * pool is starved and this one holds more than its fair share. This is what
 * keeps a hot function from holding the whole cap forever; a min above the
 * fair share does not either (min counts against the cap like any
 * instance; serve refuses mins that do not fit under it together). */
bool pool_should_yield(int n_instances, int min, int fair_share, int n_starved_others);

/* Whether a pool asking for room (holding req_n, share req_share) may stop
 * an idle instance of a victim pool (victim_n, victim_min, victim_share):
 * never below the victim's min or its share, whichever is smaller, and only
 * when the asker is below its share or the victim above its own, so two
 * pools cannot evict each other back and forth below their shares. */
bool pool_may_evict(int req_n, int req_share, int victim_n, int victim_min, int victim_share);

/* Whether an idle instance of a pool holding victim_n instances (its min
 * victim_min) may stop to make room under the global cap for another pool's
 * `min`: min is a reservation and wins over instances kept only because they
 * have not timed out yet, never over another pool's own min (so two pools
 * whose mins do not both fit cannot take instances from each other back and
 * forth). */
bool pool_may_evict_for_min(int victim_n, int victim_min);

/* Whether a ready template should stop: nothing waits on it and it has been
 * unused (no spawn, no request to its pool) for template_ttl_ms. */
bool pool_should_stop_template(int n_waiting_spawns, long long unused_ms, long long ttl_ms);

/* Retry-After for a request rejected with a full queue, in whole seconds:
 * the time the `queued` requests ahead need on `slots` parallel slots
 * (instances x concurrency at the pool's max) at `service_ns` each (the
 * smoothed reply time; 0 when unknown), rounded up, from 1 to 60. */
int pool_retry_after_s(int queued, unsigned long long service_ns, int slots);

/* Whether a request enqueued with a deadline has run out of time. */
bool pool_deadline_passed(unsigned long long now_ns, unsigned long long deadline_ns);

#endif
