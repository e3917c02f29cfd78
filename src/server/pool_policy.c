/*
 * The pool's decisions (see pool_policy.h). Pure: no I/O, no clocks.
 */
#include "server/pool_policy.h"

pool_decision pool_decide(const pool_view *v)
{
    if (v->free_slots > 0 && v->n_queued == 0) return POOL_DISPATCH;
    /* Capacity already on its way: starting instances will take this many. */
    int incoming = v->n_starting * v->concurrency;
    bool can_start = v->n_instances < v->max && v->global_instances < v->global_max;
    if (v->n_queued + 1 > incoming + v->free_slots && can_start) return POOL_START_QUEUE;
    if (v->n_queued >= v->queue_depth) return POOL_REJECT;
    return POOL_QUEUE;
}

bool pool_blocked_by_global_cap(const pool_view *v)
{
    int incoming = v->n_starting * v->concurrency;
    return v->n_queued + 1 > incoming + v->free_slots && v->n_instances < v->max &&
           v->global_instances >= v->global_max;
}

bool pool_should_stop_idle(int n_instances, int min, long long idle_ms, long long idle_timeout_ms)
{
    return n_instances > min && idle_ms >= idle_timeout_ms;
}
