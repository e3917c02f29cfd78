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

bool pool_over_max(int n_instances, int max)
{
    return n_instances > max;
}

int pool_missing_warm(int n_instances, int min, int global_instances, int global_max)
{
    int want = min - n_instances;
    int room = global_max - global_instances;
    if (want > room) want = room;
    return want > 0 ? want : 0;
}

int pool_fair_share(int global_max, int n_active)
{
    if (n_active < 1) n_active = 1;
    int share = global_max / n_active;
    return share > 0 ? share : 1;
}

bool pool_is_starved(const pool_view *v, int fair_share)
{
    return pool_blocked_by_global_cap(v) && v->n_instances < fair_share;
}

bool pool_should_yield(int n_instances, int min, int fair_share, int n_starved_others)
{
    /* min counts against the cap like any instance: above the fair share it
     * holds no starving pool off. */
    (void)min;
    return n_starved_others > 0 && n_instances > fair_share;
}

bool pool_may_evict(int req_n, int req_share, int victim_n, int victim_min, int victim_share)
{
    int keep = victim_min < victim_share ? victim_min : victim_share;
    if (victim_n <= keep) return false;
    return req_n < req_share || victim_n > victim_share;
}

bool pool_should_stop_template(int n_waiting_spawns, long long unused_ms, long long ttl_ms)
{
    return n_waiting_spawns == 0 && unused_ms >= ttl_ms;
}

bool pool_deadline_passed(unsigned long long now_ns, unsigned long long deadline_ns)
{
    return now_ns >= deadline_ns;
}

int pool_retry_after_s(int queued, unsigned long long service_ns, int slots)
{
    const unsigned long long sec = 1000000000ull, most = 60;
    if (queued < 1) queued = 1;
    if (slots < 1) slots = 1;
    if (service_ns > most * sec) service_ns = most * sec;
    /* queued is bounded by a queue depth; the product stays far below 2^64. */
    unsigned long long wait = (unsigned long long)queued * service_ns / (unsigned long long)slots;
    unsigned long long s = (wait + sec - 1) / sec;
    return s < 1 ? 1 : s > most ? (int)most : (int)s;
}

bool pool_may_evict_for_min(int victim_n, int victim_min)
{
    return victim_n > victim_min;
}
