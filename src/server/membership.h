/*
 * Membership and load of several nodes: every node puts, every
 * MEMBERSHIP_PUT_MS, one document into the bus's key-value bucket under
 * "node.<name>" (its name, advertise URL and load: instance slots free, and
 * per function version its instances, free slots, busy ones, how many more
 * may start, free capacity and queue), and learns every node's from the
 * bucket's puts. A node last heard more than MEMBERSHIP_FRESH_MS ago is not
 * routed to; one not heard for MEMBERSHIP_GONE_MS is forgotten.
 *
 * The table belongs to serve's loop. Ages come from this node's monotonic
 * clock at arrival, so clocks of different machines never compare.
 */
#ifndef ROUSE_SERVER_MEMBERSHIP_H
#define ROUSE_SERVER_MEMBERSHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "rouse/err.h"
#include "server/pool.h"
#include "server/route_policy.h"

#define MEMBERSHIP_PUT_MS 300
#define MEMBERSHIP_FRESH_MS 1000
#define MEMBERSHIP_GONE_MS 3000
#define MEMBERSHIP_KEY_PREFIX "node."
#define MEMBER_NAME_MAX 63
#define MEMBER_URL_MAX 255
#define MEMBER_FNS_MAX 1024

typedef struct member_fn {
    char *fn; /* function key */
    int64_t version;
    route_load load;
    int pending; /* calls this node sent it since the document, not answered yet */
} member_fn;

typedef struct member {
    char name[MEMBER_NAME_MAX + 1];
    char url[MEMBER_URL_MAX + 1];
    int slots_free;
    int n_fns;
    member_fn *fns;
    uint64_t heard_ns; /* when its last document arrived */
    uint64_t gen;      /* which document (this node's count of arrivals) */
    int pending_new;   /* calls sent since for versions it had no pool of */
} member;

typedef struct membership membership;

/* Owned: free with membership_destroy. */
int membership_create(const char *self, membership **out, rouse_errbuf *eb);
void membership_destroy(membership *m);

/* Parses one node's document (untrusted bytes) into out (out->fns
 * malloc'd: free with member_fini); ROUSE_EFORMAT with the reason. */
int member_parse(const char *data, size_t len, member *out, rouse_errbuf *eb);
void member_fini(member *mb);

/* This node's document, from the pool's load. */
int membership_self_doc(const pool *p, const char *name, const char *url, rouse_buf *out);

/* A put of key (without the bucket's prefix) arrived at now_ns. */
int membership_on_put(membership *m, const char *key, const char *data, size_t len,
                      uint64_t now_ns, rouse_errbuf *eb);
/* Forgets nodes not heard for MEMBERSHIP_GONE_MS. */
void membership_expire(membership *m, uint64_t now_ns);

/* The other nodes (not this one), in name order. Borrowed: valid until the
 * next membership_on_put or membership_expire. */
int membership_peers(membership *m, member **out);
/* The load of version `version` of fn at mb (known false when it has none),
 * less the calls this node sent it since its document and that are still
 * running there (so that a burst does not all go to one idle slot). */
route_load member_load(const member *mb, const char *fn, int64_t version);
/* A call was sent to mb; returns the document it counts against. */
uint64_t member_note_sent(member *mb, const char *fn, int64_t version);
/* The call sent to node `name` against document gen ended. */
void membership_note_done(membership *m, const char *name, uint64_t gen, const char *fn,
                          int64_t version);
/* This node's rank among the nodes heard within MEMBERSHIP_FRESH_MS
 * (itself counted as live) and how many there are. */
void membership_rank(const membership *m, uint64_t now_ns, int *rank, int *n);

/* GET /v1/cluster's "nodes": [{name, url, age_ms, fresh, slots_free,
 * functions: [...]}], this node among them (as the bucket gave its
 * document back), in name order. */
int membership_write_json(const membership *m, uint64_t now_ns, rouse_buf *out);

#endif
