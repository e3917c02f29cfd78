/*
 * Dynamic batching's decisions (see batch_policy.h): pure functions, no
 * clock, no I/O.
 */
#include "server/batch_policy.h"

#include <string.h>

int batch_decide(const batch_view *v, uint64_t *wait_ns)
{
    *wait_ns = 0;
    if (v->n_ready <= 0) return 0;
    int limit = v->limit > 0 ? v->limit : 1;
    int n = v->n_ready < limit ? v->n_ready : limit;
    if (n >= limit || v->pool_idle || v->waited_ns >= v->max_delay_ns) return n;
    uint64_t wait = v->max_delay_ns - v->waited_ns;
    if (v->n_ready >= 2) {
        uint64_t pause = BATCH_QUIET_GAPS * v->span_ns / (uint64_t)(v->n_ready - 1);
        if (pause < BATCH_QUIET_MIN_NS) pause = BATCH_QUIET_MIN_NS;
        if (v->quiet_ns >= pause) return n;
        if (pause - v->quiet_ns < wait) wait = pause - v->quiet_ns;
    }
    *wait_ns = wait;
    return 0;
}

void batch_aimd_init(batch_aimd *a, int max, uint64_t slo_ns)
{
    memset(a, 0, sizeof(*a));
    a->max = max > 0 ? max : 1;
    a->limit = a->max < 2 ? a->max : 2;
    a->slo_ns = slo_ns;
}

int batch_aimd_observe(batch_aimd *a, int size, uint64_t run_ns)
{
    a->run_ns[a->n++] = run_ns;
    if (size >= a->limit) a->n_full++;
    if (a->n < BATCH_AIMD_WINDOW) return a->limit;
    uint64_t p99 = 0;
    for (int i = 0; i < a->n; i++)
        if (a->run_ns[i] > p99) p99 = a->run_ns[i];
    if (p99 > a->slo_ns)
        a->limit = a->limit > 1 ? a->limit / 2 : 1;
    else if (a->n_full * 4 >= a->n && a->limit < a->max)
        a->limit++;
    a->n = a->n_full = 0;
    return a->limit;
}
