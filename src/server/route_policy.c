/*
 * The routing policy of several nodes (route_policy.h): pure, no state.
 */
#include "server/route_policy.h"

static bool fresh(const route_input *in, int i)
{
    return in->peers[i].age_ms >= 0 && in->peers[i].age_ms <= in->max_age_ms;
}

static route_decision here(route_why why)
{
    return (route_decision){.peer = -1, .why = why};
}

route_decision route_decide(const route_input *in)
{
    if (in->forwarded) return here(ROUTE_FORWARDED);
    int n_fresh = 0;
    bool anywhere = in->local.known && in->local.instances > 0;
    for (int i = 0; i < in->n_peers; i++) {
        if (!fresh(in, i)) continue;
        n_fresh++;
        if (in->peers[i].v.known && in->peers[i].v.instances > 0) anywhere = true;
    }
    if (n_fresh == 0) return here(ROUTE_ALONE);
    if (!anywhere) {
        int best = -1, best_free = in->slots_free;
        for (int i = 0; i < in->n_peers; i++)
            if (fresh(in, i) && in->peers[i].slots_free > best_free) {
                best = i;
                best_free = in->peers[i].slots_free;
            }
        return (route_decision){.peer = best, .why = ROUTE_FROM_ZERO};
    }
    if (in->local.known && in->local.idle > 0) return here(ROUTE_WARM);
    int local_startable = in->local.known ? in->local.startable : in->slots_free;
    int local_queued = in->local.known ? in->local.queued : 0;
    if (local_startable > 0 && local_queued == 0) return here(ROUTE_START);
    int best = -1, best_n = 0;
    for (int i = 0; i < in->n_peers; i++)
        if (fresh(in, i) && in->peers[i].v.known && in->peers[i].v.idle > best_n) {
            best = i;
            best_n = in->peers[i].v.idle;
        }
    if (best >= 0) return (route_decision){.peer = best, .why = ROUTE_WARM};
    for (int i = 0; i < in->n_peers; i++) {
        if (!fresh(in, i)) continue;
        /* A node without a pool of the version takes one call: it starts it. */
        int free = in->peers[i].v.known ? in->peers[i].v.free : in->peers[i].slots_free > 0;
        if (free > best_n) {
            best = i;
            best_n = free;
        }
    }
    if (best >= 0) return (route_decision){.peer = best, .why = ROUTE_CAPACITY};
    /* Nowhere free: wait where an instance runs, here first. */
    if (in->local.known && in->local.instances > 0) return here(ROUTE_QUEUE);
    double best_q = 0;
    for (int i = 0; i < in->n_peers; i++) {
        const route_load *l = &in->peers[i].v;
        if (!fresh(in, i) || !l->known || l->instances <= 0) continue;
        double q = (double)l->queued / l->instances;
        if (best < 0 || q < best_q) {
            best = i;
            best_q = q;
        }
    }
    if (best >= 0) return (route_decision){.peer = best, .why = ROUTE_QUEUE};
    return here(ROUTE_QUEUE);
}

const char *route_why_name(route_why w)
{
    switch (w) {
    case ROUTE_FORWARDED: return "forwarded";
    case ROUTE_ALONE: return "alone";
    case ROUTE_FROM_ZERO: return "from-zero";
    case ROUTE_WARM: return "warm";
    case ROUTE_START: return "start";
    case ROUTE_CAPACITY: return "capacity";
    case ROUTE_QUEUE: return "queue";
    }
    return "?";
}

int route_min_share(int min, int rank, int n_nodes)
{
    if (n_nodes <= 1 || min <= 0) return min > 0 ? min : 0;
    if (rank < 0) rank = 0;
    if (rank >= n_nodes) rank = n_nodes - 1;
    return min / n_nodes + (rank < min % n_nodes ? 1 : 0);
}
