/*
 * Open Inference Protocol v2 endpoints: health, server and model metadata,
 * readiness and inference with version routing. Inference bodies are never
 * parsed here: the bytes received go to an instance (through its shared
 * region, or the memfd they spilled into), which decodes them and encodes
 * the response (worker/instance.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rouse/weight_pages.h"
#include "server/http_int.h"
#include "worker/ipc.h"

static int reply_text(http_req *req, int status, const char *json)
{
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_buf_append_str(&b, json);
    http_reply_json(req, status, &b);
    rouse_buf_fini(&b);
    return 0;
}

/* The version a request for req->r goes to: explicit, through an alias, or
 * through "latest". Sets a 404/400 reply and returns < 0 when there is none. */
static int resolve(http_req *req, int64_t *version)
{
    server *s = req->srv;
    const route *r = &req->r;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (r->param_too_long || !store_fn_key_valid(r->name)) {
        http_reply_error(req, 404, "no function named '%s'", auth_fn_name(r->name));
        return ROUSE_ENOTFOUND;
    }
    if (route_cache_resolve(s, r->name, r->ver, version) == 0) return 0;
    int rc;
    if (store_version_parse(r->ver, version)) {
        store_version sv;
        memset(&sv, 0, sizeof(sv));
        rc = store_version_get(s->st, r->name, *version, &sv, &eb);
        free(sv.config_json);
    } else {
        rc = store_resolve(s->st, r->name, r->ver[0] ? r->ver : NULL, server_random(s), version,
                           &eb);
    }
    if (rc < 0) http_reply_error(req, http_status_of(rc), "%s", eb.msg);
    return rc;
}

/* Metadata names the inputs and outputs of the model, which only an
 * instance has loaded: the first request of a version goes where an
 * inference of it would (here or, with several nodes, a node that can run
 * it), and the document it answered is kept in the routing cache, which
 * answers the next ones without any instance. */
static int model_meta(http_req *req)
{
    server *s = req->srv;
    int64_t version;
    if (resolve(req, &version) < 0) return 0;
    if (!route_cache_function(s, req->r.name)) {
        http_reply_error(req, 404, "no function named '%s'", auth_fn_name(req->r.name));
        return 0;
    }
    size_t len;
    const char *doc = route_cache_meta(s, req->r.name, version, &len);
    if (doc) {
        rouse_buf b;
        rouse_buf_init(&b);
        int rc = rouse_buf_append(&b, doc, len);
        http_reply_built(req, 200, &b, rc);
        req->reply.version = version;
        return 0;
    }
    req->meta_version = version;
    req->meta_gen = route_cache_gen(s);
    int routed = cluster_route_meta(req, version);
    if (routed >= 0) return routed;
    return api_oip_meta_local(req, version);
}

int api_oip_meta_local(http_req *req, int64_t version)
{
    server *s = req->srv;
    /* The version list from the routing cache: no database read per call. */
    const store_function *f = route_cache_function(s, req->r.name);
    if (!f) {
        http_reply_error(req, 404, "no function named '%s'", auth_fn_name(req->r.name));
        return 0;
    }
    int64_t *versions = calloc((size_t)f->n_versions + 1, sizeof(int64_t));
    for (int i = 0; versions && i < f->n_versions; i++)
        versions[i] = f->versions[i].version;
    uint64_t len = (uint64_t)f->n_versions * sizeof(int64_t);
    if (!versions) {
        http_reply_error(req, 500, "out of memory");
        return 0;
    }
    pool_request rq = {.name = req->r.name,
                       .version = version,
                       .type = IPC_META,
                       .body = (char *)versions,
                       .body_fd = -1,
                       .body_len = len,
                       .json_len = -1};
    return http_req_submit(req, &rq);
}

void api_oip_meta_reply(http_req *req)
{
    const http_reply *r = &req->reply;
    if (req->meta_version <= 0 || r->status != 200 || !r->body || r->len == 0 || r->fd >= 0) return;
    route_cache_meta_put(req->srv, req->meta_gen, req->r.name, req->meta_version, r->body, r->len);
}

static int infer(http_req *req)
{
    int64_t version;
    if (resolve(req, &version) < 0) return 0;
    if (req->body_len == 0) {
        http_reply_error(req, 400, "empty request body: expected an inference request");
        req->reply.version = version;
        return 0;
    }
    if (api_jobs_wants_async(req)) return api_jobs_enqueue(req, version);
    int routed = cluster_route_infer(req, version);
    if (routed >= 0) return routed;
    return api_oip_infer_local(req, version);
}

int api_oip_infer_local(http_req *req, int64_t version)
{
    /* The call owns the body from here: in memory, or spilled to a memfd. */
    int fd = req->body_fd;
    req->body_fd = -1;
    char *body = NULL;
    if (fd < 0) {
        size_t len;
        body = rouse_buf_detach(&req->body, &len);
        if (!body) {
            http_reply_error(req, 500, "out of memory");
            return 0;
        }
    }
    pool_request rq = {.name = req->r.name,
                       .version = version,
                       .type = IPC_INFER,
                       .body = body,
                       .body_fd = fd,
                       .body_len = req->body_len,
                       .json_len = req->json_len};
    return http_req_submit(req, &rq);
}

int api_oip_handle(http_req *req)
{
    switch (req->r.id) {
    case R_HEALTH_LIVE:
        return reply_text(req, 200, "{\"live\":true}\n");
    case R_HEALTH_READY: {
        if (req->srv->stopping) return reply_text(req, 503, "{\"ready\":false}\n");
        if (!req->srv->regsync && !cluster_bus_configured(req->srv))
            return reply_text(req, 200, "{\"ready\":true}\n");
        /* With --state: ready also while stale (functions known are
         * served); with --bus: whether NATS is reachable (without it this
         * node serves on alone: still ready). */
        rouse_buf b;
        rouse_buf_init(&b);
        int rc = rouse_buf_append_str(&b, "{\"ready\":true");
        if (rc == 0 && req->srv->regsync) rc = shared_state_write_json(req->srv, &b);
        if (rc == 0 && cluster_bus_configured(req->srv))
            rc = rouse_buf_append_str(&b, cluster_bus_connected(req->srv) ? ",\"bus\":\"connected\""
                                                                          : ",\"bus\":\"disconnected\"");
        if (rc == 0) rc = rouse_buf_append_str(&b, "}\n");
        http_reply_built(req, 200, &b, rc);
        return 0;
    }
    case R_SERVER_META: {
        rouse_buf b;
        rouse_buf_init(&b);
        int rc = rouse_buf_appendf(
            &b,
            "{\"name\":\"rouse\",\"version\":\"" ROUSE_VERSION
            "\",\"extensions\":[\"binary_tensor_data\"],\"rouse\":{\"weight_pages\":\"%s\",",
            rouse_weight_pages_name((rouse_weight_pages)req->srv->weight_pages));
        if (rc == 0) rc = isolation_write_json(&req->srv->iso, &b);
        if (rc == 0) rc = shared_state_write_json(req->srv, &b);
        if (rc == 0) rc = rouse_buf_append_str(&b, "}}\n");
        http_reply_built(req, 200, &b, rc);
        return 0;
    }
    case R_MODEL_READY: {
        int64_t version;
        if (resolve(req, &version) < 0) return 0;
        rouse_buf b;
        rouse_buf_init(&b);
        rouse_buf_appendf(&b, "{\"name\":\"%s\",\"version\":\"%" PRId64 "\",\"ready\":true}\n",
                          req->r.name, version);
        http_reply_json(req, 200, &b);
        rouse_buf_fini(&b);
        req->reply.version = version;
        return 0;
    }
    case R_MODEL_META:
        return model_meta(req);
    case R_INFER:
        return infer(req);
    default:
        http_reply_error(req, 404, "no such endpoint");
        return 0;
    }
}
