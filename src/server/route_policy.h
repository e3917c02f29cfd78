/*
 * Where a call runs when several nodes serve (docs/architecture.md,
 * "Several nodes"): a pure function of this node's load, the other nodes'
 * load as membership last heard it, and the call itself, tested from
 * tables like pool_policy. At most one hop: a call another node forwarded
 * always runs where it landed.
 *
 * The rules, in order:
 * 1. a forwarded call, or no fresh peer (data older than max_age_ms, or
 *    none): here;
 * 2. no instance of the version anywhere (scale from zero): the node with
 *    the most free instance slots, this one on a tie;
 * 3. a ready instance here has a free slot: here (warm);
 * 4. an instance can start here and nothing waits: here (start);
 * 5. a fresh peer has a ready instance with a free slot: the one with the
 *    most (warm there);
 * 6. a fresh peer has free capacity for the version: the one with the
 *    most;
 * 7. nowhere free: the call waits where an instance of the version runs,
 *    here when one does, else at the fresh peer with the fewest calls
 *    waiting per instance, else here.
 */
#ifndef ROUTE_POLICY_H
#define ROUTE_POLICY_H

#include <stdbool.h>
#include <stdint.h>

/* One node's load for one function version (pool_load_row's numbers);
 * known false when the node has no pool of it (never called there, or
 * scaled to zero and forgotten). */
typedef struct route_load {
    bool known;
    int instances; /* starting or ready */
    int idle;      /* free slots of ready instances */
    int startable; /* instances scaling.max and the global cap still allow */
    int free;      /* pool_free_capacity */
    int queued;
} route_load;

typedef struct route_peer {
    int64_t age_ms; /* since membership last heard from it */
    int slots_free; /* instance slots its global cap leaves free */
    route_load v;   /* its load for the version */
} route_peer;

typedef struct route_input {
    bool forwarded; /* the call came from another node */
    int slots_free; /* this node's */
    route_load local;
    const route_peer *peers;
    int n_peers;
    int64_t max_age_ms;
} route_input;

typedef enum route_why {
    ROUTE_FORWARDED,   /* here: another node sent it */
    ROUTE_ALONE,       /* here: no fresh peer */
    ROUTE_FROM_ZERO,   /* no instance anywhere: the least loaded node */
    ROUTE_WARM,        /* a free slot of a ready instance */
    ROUTE_START,       /* an instance can start without waiting */
    ROUTE_CAPACITY,    /* a peer's free capacity */
    ROUTE_QUEUE,       /* nowhere free: the call waits where an instance runs */
} route_why;

typedef struct route_decision {
    int peer; /* index into peers, or -1: here */
    route_why why;
} route_decision;

route_decision route_decide(const route_input *in);
const char *route_why_name(route_why w);

/* `min` warm instances of a version spread over n_nodes live nodes: the
 * share of the node of rank `rank` (0-based, in the byte order of the
 * live nodes' names), the first min % n_nodes nodes keeping one more.
 * n_nodes <= 1 keeps min. */
int route_min_share(int min, int rank, int n_nodes);

#endif
