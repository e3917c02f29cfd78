/*
 * Routing of inference calls between nodes (docs/architecture.md, "Several
 * nodes"): asks route_policy where a call runs, sends it to the chosen
 * peer through the forwarder (forward.h) and turns the peer's answer into
 * the reply. A peer that failed before it can have started the call (no
 * connection, or its queue answered 503) gets the call tried once more,
 * on another node or here; one that failed after it started it is a 502
 * naming the node.
 *
 * What is forwarded: OIP inference (POST /v2/models/{name}[/versions/{v}]/infer)
 * with a body held in memory, and model metadata (GET /v2/models/{name}
 * [/versions/{v}], which an instance answers: the inputs and outputs are
 * the model's), to the version this node resolved, with the caller's
 * tenant (Rouse-Tenant) and the cluster key instead of the caller's
 * Authorization. Not forwarded (run here): generations of the
 * OpenAI-style endpoints (streamed or not), asynchronous jobs, bodies
 * spilled to a memfd (over 32 MiB), calls another node forwarded.
 *
 * Runs on the loop.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fmt.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "server/bus.h"
#include "server/cluster_key.h"
#include "server/forward.h"
#include "server/http_int.h"
#include "server/membership.h"
#include "server/route_policy.h"

#define MOD "cluster"
#define FORWARDED_BY_HEADER "Rouse-Forwarded-By"

typedef struct fwd_pending {
    struct fwd_pending *next;
    uint64_t id;
    http_req *req;
} fwd_pending;

struct cluster_route {
    fwd_pending *head;
    uint64_t next_id;
    /* Calls sent to peers (retries included), tried again after a peer
     * did not take them, and failed after a peer started them (502). */
    uint64_t n_sent, n_retried, n_failed;
};

void cluster_route_counts(const server *s, uint64_t *sent, uint64_t *retried, uint64_t *failed)
{
    const struct cluster_route *r = s->croute;
    *sent = r ? r->n_sent : 0;
    *retried = r ? r->n_retried : 0;
    *failed = r ? r->n_failed : 0;
}

typedef struct local_ctx {
    const char *name;
    int64_t version;
    route_load load;
} local_ctx;

static void local_row(void *user, const pool_load_row *r)
{
    local_ctx *c = user;
    if (r->version != c->version || strcmp(r->name, c->name) != 0) return;
    c->load = (route_load){.known = true,
                           .instances = r->instances,
                           .idle = r->idle,
                           .startable = r->startable,
                           .free = r->free_capacity,
                           .queued = r->queued};
}

/* Where req runs: -1 here, else an index into the peers (excluding `not`). */
static int decide(http_req *req, int64_t version, const char *not, member **peers_out)
{
    server *s = req->srv;
    if (!s->fwd || !s->bus || !bus_connected(s->bus)) {
        LOG_DEBUG(MOD, "%s v%" PRId64 ": here (no bus)", req->r.name, version);
        return -1;
    }
    member *peers;
    int n = membership_peers(s->members, &peers);
    if (n == 0) {
        LOG_DEBUG(MOD, "%s v%" PRId64 ": here (no other node)", req->r.name, version);
        return -1;
    }
    route_peer rp[64];
    if (n > 64) n = 64;
    uint64_t now = rouse_now_ns();
    for (int i = 0; i < n; i++) {
        rp[i].age_ms = (int64_t)((now - peers[i].heard_ns) / 1000000ull);
        if (not && strcmp(peers[i].name, not) == 0) rp[i].age_ms = -1;
        rp[i].slots_free = peers[i].slots_free > peers[i].pending_new
                               ? peers[i].slots_free - peers[i].pending_new
                               : 0;
        rp[i].v = member_load(&peers[i], req->r.name, version);
    }
    local_ctx lc = {.name = req->r.name, .version = version};
    int slots = pool_load(s->pool, local_row, &lc);
    route_input in = {.forwarded = http_req_header(req, FORWARDED_BY_HEADER) != NULL,
                      .slots_free = slots,
                      .local = lc.load,
                      .peers = rp,
                      .n_peers = n,
                      .max_age_ms = MEMBERSHIP_FRESH_MS};
    route_decision d = route_decide(&in);
    LOG_DEBUG(MOD, "%s v%" PRId64 ": %s (%s)", req->r.name, version,
              d.peer < 0 ? "here" : peers[d.peer].name, route_why_name(d.why));
    *peers_out = peers;
    return d.peer;
}

static int send_to(http_req *req, member *peer)
{
    server *s = req->srv;
    if (!s->croute && !(s->croute = calloc(1, sizeof(*s->croute)))) return ROUSE_ENOMEM;
    fwd_pending *p = calloc(1, sizeof(*p));
    if (!p) return ROUSE_ENOMEM;
    char url[MEMBER_URL_MAX + 2 * STORE_NAME_MAX + 64];
    snprintf(url, sizeof(url), "%s/v2/models/%s/versions/%" PRId64 "%s", peer->url,
             auth_fn_name(req->r.name), req->fwd_version, req->fwd_meta ? "" : "/infer");
    char ct[160], key[256], tenant[96], by[96], ihcl[64];
    snprintf(key, sizeof(key), CLUSTER_KEY_HEADER ": %s", cluster_key_secret(s->cluster_key));
    snprintf(tenant, sizeof(tenant), "Rouse-Tenant: %s", req->who.tenant);
    snprintf(by, sizeof(by), FORWARDED_BY_HEADER ": %s", s->node_name);
    forward_send_req rq = {.url = url, .headers = {key, tenant, by}, .get = req->fwd_meta};
    if (!req->fwd_meta) {
        const char *cth = http_req_header(req, "Content-Type");
        snprintf(ct, sizeof(ct), "Content-Type: %s", cth ? cth : "application/json");
        rq.headers[3] = ct;
        if (req->json_len >= 0) {
            snprintf(ihcl, sizeof(ihcl), "Inference-Header-Content-Length: %" PRId64,
                     req->json_len);
            rq.headers[4] = ihcl;
        }
        /* The body stays in req: a retry here still has it. */
        rq.len = req->body.len;
        rq.body = malloc(rq.len ? rq.len : 1);
        if (!rq.body) {
            free(p);
            return ROUSE_ENOMEM;
        }
        if (rq.len) memcpy(rq.body, req->body.data, rq.len);
    }
    rq.id = ++s->croute->next_id;
    int rc = forward_send(s->fwd, &rq);
    if (rc < 0) {
        free(p);
        return rc;
    }
    p->id = rq.id;
    p->req = req;
    p->next = s->croute->head;
    s->croute->head = p;
    s->croute->n_sent++;
    req->fwd_id = rq.id;
    fmt_copy(req->fwd_peer, sizeof(req->fwd_peer), peer->name);
    req->fwd_gen = member_note_sent(peer, req->r.name, req->fwd_version);
    return 0;
}

int cluster_route_infer(http_req *req, int64_t version)
{
    if (!req->srv->fwd || req->body_fd >= 0) return -1;
    member *peers = NULL;
    int i = decide(req, version, NULL, &peers);
    if (i < 0) return -1;
    req->fwd_version = version;
    if (send_to(req, &peers[i]) < 0) return -1; /* out of memory: here, then */
    return 1;
}

int cluster_route_meta(http_req *req, int64_t version)
{
    if (!req->srv->fwd) return -1;
    member *peers = NULL;
    int i = decide(req, version, NULL, &peers);
    if (i < 0) return -1;
    req->fwd_version = version;
    req->fwd_meta = true;
    if (send_to(req, &peers[i]) < 0) return -1; /* out of memory: here, then */
    return 1;
}

static void forget(server *s, uint64_t id)
{
    for (fwd_pending **pp = &s->croute->head; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            fwd_pending *p = *pp;
            *pp = p->next;
            free(p);
            return;
        }
}

void cluster_route_req_end(http_req *req)
{
    membership_note_done(req->srv->members, req->fwd_peer, req->fwd_gen, req->r.name,
                         req->fwd_version);
    if (req->srv->croute) forget(req->srv, req->fwd_id);
    req->fwd_id = 0;
}

/* The peer failed before it can have started the call: once more, on
 * another node or here. */
static void retry(http_req *req, const char *why)
{
    LOG_INFO(MOD, "node %s did not take a call of %s (%s): trying %s", req->fwd_peer,
             req->r.name, why, req->fwd_retried ? "here" : "again");
    req->srv->croute->n_retried++;
    if (!req->fwd_retried) {
        req->fwd_retried = true;
        member *peers = NULL;
        int i = decide(req, req->fwd_version, req->fwd_peer, &peers);
        if (i >= 0 && send_to(req, &peers[i]) == 0) return;
    }
    int rc = req->fwd_meta ? api_oip_meta_local(req, req->fwd_version)
                           : api_oip_infer_local(req, req->fwd_version);
    if (rc == 0) http_req_resume(req);
}

static void relay(http_req *req, forward_result *r)
{
    http_reply *rp = &req->reply;
    free(rp->body);
    rp->body = r->body;
    rp->len = r->len;
    r->body = NULL;
    rp->status = r->status;
    fmt_copy(rp->content_type, sizeof(rp->content_type),
             r->content_type[0] ? r->content_type : "application/json");
    rp->json_len = r->json_len;
    if (r->version > 0) rp->version = r->version;
    if (r->retry_after > 0) rp->retry_after = r->retry_after;
    fmt_copy(rp->timing, sizeof(rp->timing), r->timing);
    fmt_copy(rp->start, sizeof(rp->start), r->start);
    fmt_copy(rp->node, sizeof(rp->node), r->node[0] ? r->node : req->fwd_peer);
    if (r->request_id[0]) fmt_copy(req->request_id, sizeof(req->request_id), r->request_id);
    req->have_reply = true;
    req->forwarded_out = true;
}

void cluster_route_on_results(server *s)
{
    forward_result res[16];
    int n;
    while ((n = forward_take(s->fwd, res, 16)) > 0) {
        for (int i = 0; i < n; i++) {
            forward_result *r = &res[i];
            http_req *req = NULL;
            if (s->croute)
                for (fwd_pending *p = s->croute->head; p; p = p->next)
                    if (p->id == r->id) req = p->req;
            if (req) {
                forget(s, r->id);
                req->fwd_id = 0;
                membership_note_done(s->members, req->fwd_peer, req->fwd_gen, req->r.name,
                                     req->fwd_version);
                if (r->status == 503 || (r->status == 0 && !r->started)) {
                    char why[300];
                    if (r->status == 503)
                        snprintf(why, sizeof(why), "503");
                    else
                        snprintf(why, sizeof(why), "%s", r->error);
                    retry(req, why);
                } else if (r->status == 0) {
                    s->croute->n_failed++;
                    http_reply_error(req, 502, "node %s failed while running the request: %s",
                                     req->fwd_peer, r->error);
                    req->forwarded_out = true;
                    http_req_resume(req);
                } else {
                    relay(req, r);
                    http_req_resume(req);
                }
            }
            free(r->body);
        }
        if (n < 16) break;
    }
}

void cluster_route_free(struct cluster_route *r)
{
    if (!r) return;
    while (r->head) {
        fwd_pending *p = r->head;
        r->head = p->next;
        free(p);
    }
    free(r);
}
