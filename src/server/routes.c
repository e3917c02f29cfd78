/*
 * Path and method dispatch (docs/architecture.md, "HTTP API"). Matching happens on the first
 * handler call, before the body arrives, so that the body goes straight to
 * the right sink (a blob file, memory bound for an instance's shared
 * region, or memory).
 * Path parameters are copied into fixed fields; a parameter too long for
 * its field can name nothing that exists, so the request is answered 404.
 */
#include <stdio.h>
#include <string.h>

#include "server/auth.h"
#include "server/http_int.h"

#define MAX_SEGS 8

/* The roles (auth.h): health stays open; calling a function and reading
 * one's jobs needs invoke; managing functions, blobs and jobs deploy;
 * the daemon's own state (stats, metrics, usage of every tenant) and keys
 * admin. */
const route_spec route_specs[R_COUNT] = {
    [R_NONE] = {NULL, NULL, AUTH_INVOKE},
    [R_HEALTH_LIVE] = {"GET", "/v2/health/live", AUTH_OPEN},
    [R_HEALTH_READY] = {"GET", "/v2/health/ready", AUTH_OPEN},
    [R_SERVER_META] = {"GET", "/v2", AUTH_INVOKE},
    [R_MODEL_META] = {"GET", "/v2/models/{name}", AUTH_INVOKE},
    [R_MODEL_READY] = {"GET", "/v2/models/{name}/ready", AUTH_INVOKE},
    [R_INFER] = {"POST", "/v2/models/{name}/infer", AUTH_INVOKE},
    [R_BLOB_POST] = {"POST", "/v1/blobs", AUTH_DEPLOY},
    [R_BLOB_HEAD] = {"HEAD", "/v1/blobs/{digest}", AUTH_DEPLOY},
    [R_BLOB_DELETE] = {"DELETE", "/v1/blobs/{digest}", AUTH_DEPLOY},
    [R_FN_LIST] = {"GET", "/v1/functions", AUTH_DEPLOY},
    [R_FN_PUT] = {"PUT", "/v1/functions/{name}", AUTH_DEPLOY},
    [R_FN_GET] = {"GET", "/v1/functions/{name}", AUTH_DEPLOY},
    [R_FN_DELETE] = {"DELETE", "/v1/functions/{name}", AUTH_DEPLOY},
    [R_FN_ROLLBACK] = {"POST", "/v1/functions/{name}/rollback", AUTH_DEPLOY},
    [R_ALIAS_PUT] = {"PUT", "/v1/functions/{name}/aliases/{alias}", AUTH_DEPLOY},
    [R_STATS] = {"GET", "/v1/stats", AUTH_ADMIN},
    [R_STATS_RESET] = {"POST", "/v1/stats/reset", AUTH_ADMIN},
    [R_METRICS] = {"GET", "/metrics", AUTH_ADMIN},
    [R_USAGE] = {"GET", "/v1/usage", AUTH_ADMIN},
    [R_FN_LOGS] = {"GET", "/v1/functions/{name}/logs", AUTH_DEPLOY},
    [R_FN_SCALE_ZERO] = {"POST", "/v1/functions/{name}/scale-to-zero", AUTH_DEPLOY},
    [R_JOB_LIST] = {"GET", "/v1/jobs", AUTH_INVOKE},
    [R_JOB_GET] = {"GET", "/v1/jobs/{id}", AUTH_INVOKE},
    [R_JOB_DELETE] = {"DELETE", "/v1/jobs/{id}", AUTH_DEPLOY},
    [R_JOB_RETRY] = {"POST", "/v1/jobs/{id}/retry", AUTH_DEPLOY},
    [R_JOB_RESULT] = {"GET", "/v1/jobs/{id}/result", AUTH_INVOKE},
    [R_BATCH_POST] = {"POST", "/v1/batches", AUTH_DEPLOY},
    [R_BATCH_GET] = {"GET", "/v1/batches/{id}", AUTH_INVOKE},
    [R_BATCH_OUTPUT] = {"GET", "/v1/batches/{id}/output", AUTH_INVOKE},
    [R_OAI_MODELS] = {"GET", "/openai/v1/models", AUTH_INVOKE},
    [R_OAI_COMPLETIONS] = {"POST", "/openai/v1/completions", AUTH_INVOKE},
    [R_OAI_CHAT] = {"POST", "/openai/v1/chat/completions", AUTH_INVOKE},
    [R_KEY_SELF] = {"GET", "/v1/keys/self", AUTH_INVOKE},
    [R_KEY_CREATE] = {"POST", "/v1/keys", AUTH_ADMIN},
    [R_KEY_LIST] = {"GET", "/v1/keys", AUTH_ADMIN},
    [R_KEY_DELETE] = {"DELETE", "/v1/keys/{id}", AUTH_ADMIN},
    [R_CONSOLE] = {"GET", "/", AUTH_OPEN},
    [R_RECENT] = {"GET", "/v1/recent", AUTH_DEPLOY},
    /* Other nodes read blobs with the cluster key instead (auth.c). */
    [R_BLOB_GET] = {"GET", "/v1/blobs/{digest}", AUTH_DEPLOY},
    [R_CLUSTER] = {"GET", "/v1/cluster", AUTH_ADMIN},
    [R_NOT_ALLOWED] = {NULL, NULL, AUTH_INVOKE},
};

/* Splits "/a/b/c" into segments (no empty ones; a trailing slash is ignored). */
static int split(const char *url, char segs[MAX_SEGS][96], bool *too_long)
{
    int n = 0;
    const char *p = url;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p) break;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (n == MAX_SEGS) return -1;
        if (len >= 96) {
            *too_long = true;
            len = 95;
        }
        memcpy(segs[n], p, len);
        segs[n][len] = '\0';
        n++;
        p += e ? (size_t)(e - p) : len;
        if (!e) break;
    }
    return n;
}

static void copy_param(char *dst, size_t cap, const char *src, route *out)
{
    size_t n = strlen(src);
    if (n >= cap) {
        out->param_too_long = true;
        n = cap - 1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

#define IS(m) (strcmp(method, m) == 0)
#define SEG(i, s) (strcmp(segs[i], s) == 0)

static route_id pick(const char *method, const char *want, route_id id)
{
    if (strcmp(method, want) == 0) return id;
    if (strcmp(want, "GET") == 0 && strcmp(method, "HEAD") == 0) return id;
    return R_NOT_ALLOWED;
}

void route_match(const char *method, const char *url, route *out)
{
    memset(out, 0, sizeof(*out));
    char segs[MAX_SEGS][96];
    bool too_long = false;
    int n = split(url, segs, &too_long);
    out->param_too_long = too_long;
    if (n == 0 && url[0] == '/') {
        out->id = pick(method, "GET", R_CONSOLE);
        return;
    }
    if (n < 1) return;
    if (n == 2 && SEG(0, "console")) {
        copy_param(out->alias, sizeof(out->alias), segs[1], out);
        out->id = pick(method, "GET", R_CONSOLE);
        return;
    }
    if (n == 1 && SEG(0, "metrics")) {
        out->id = pick(method, "GET", R_METRICS);
        return;
    }
    if (SEG(0, "v2")) {
        if (n == 1) {
            out->id = pick(method, "GET", R_SERVER_META);
        } else if (n == 3 && SEG(1, "health") && SEG(2, "live")) {
            out->id = pick(method, "GET", R_HEALTH_LIVE);
        } else if (n == 3 && SEG(1, "health") && SEG(2, "ready")) {
            out->id = pick(method, "GET", R_HEALTH_READY);
        } else if (n >= 3 && SEG(1, "models")) {
            copy_param(out->name, sizeof(out->name), segs[2], out);
            int rest = 3;
            if (n >= 5 && SEG(3, "versions")) {
                copy_param(out->ver, sizeof(out->ver), segs[4], out);
                rest = 5;
            }
            if (n == rest)
                out->id = pick(method, "GET", R_MODEL_META);
            else if (n == rest + 1 && SEG(rest, "ready"))
                out->id = pick(method, "GET", R_MODEL_READY);
            else if (n == rest + 1 && SEG(rest, "infer"))
                out->id = pick(method, "POST", R_INFER);
        }
        return;
    }
    if (SEG(0, "openai")) {
        /* The OpenAI-style text endpoints (api_openai.c), apart from
         * rouse's own /v1/ so that the two never collide. */
        if (n == 3 && SEG(1, "v1") && SEG(2, "models"))
            out->id = pick(method, "GET", R_OAI_MODELS);
        else if (n == 3 && SEG(1, "v1") && SEG(2, "completions"))
            out->id = pick(method, "POST", R_OAI_COMPLETIONS);
        else if (n == 4 && SEG(1, "v1") && SEG(2, "chat") && SEG(3, "completions"))
            out->id = pick(method, "POST", R_OAI_CHAT);
        return;
    }
    if (!SEG(0, "v1") || n < 2) return;
    if (SEG(1, "stats")) {
        if (n == 2)
            out->id = pick(method, "GET", R_STATS);
        else if (n == 3 && SEG(2, "reset"))
            out->id = pick(method, "POST", R_STATS_RESET);
        return;
    }
    if (SEG(1, "keys")) {
        if (n == 2) {
            out->id = pick(method, "GET", R_KEY_LIST);
            if (IS("POST")) out->id = R_KEY_CREATE;
        } else if (n == 3 && SEG(2, "self")) {
            out->id = pick(method, "GET", R_KEY_SELF);
        } else if (n == 3) {
            copy_param(out->ref, sizeof(out->ref), segs[2], out);
            out->id = pick(method, "DELETE", R_KEY_DELETE);
        }
        return;
    }
    if (SEG(1, "recent")) {
        if (n == 2) out->id = pick(method, "GET", R_RECENT);
        return;
    }
    if (SEG(1, "cluster")) {
        if (n == 2) out->id = pick(method, "GET", R_CLUSTER);
        return;
    }
    if (SEG(1, "usage")) {
        if (n == 2) out->id = pick(method, "GET", R_USAGE);
        return;
    }
    if (SEG(1, "jobs")) {
        if (n == 2) {
            out->id = pick(method, "GET", R_JOB_LIST);
            return;
        }
        copy_param(out->ref, sizeof(out->ref), segs[2], out);
        if (n == 3) {
            out->id = pick(method, "GET", R_JOB_GET);
            if (IS("DELETE")) out->id = R_JOB_DELETE;
        } else if (n == 4 && SEG(3, "retry")) {
            out->id = pick(method, "POST", R_JOB_RETRY);
        } else if (n == 4 && SEG(3, "result")) {
            out->id = pick(method, "GET", R_JOB_RESULT);
        }
        return;
    }
    if (SEG(1, "batches")) {
        if (n == 2) {
            out->id = pick(method, "POST", R_BATCH_POST);
            return;
        }
        copy_param(out->ref, sizeof(out->ref), segs[2], out);
        if (n == 3) {
            out->id = pick(method, "GET", R_BATCH_GET);
        } else if (n == 4 && (SEG(3, "output") || SEG(3, "errors"))) {
            copy_param(out->alias, sizeof(out->alias), segs[3], out);
            out->id = pick(method, "GET", R_BATCH_OUTPUT);
        }
        return;
    }
    if (SEG(1, "blobs")) {
        if (n == 2)
            out->id = pick(method, "POST", R_BLOB_POST);
        else if (n == 3) {
            copy_param(out->digest, sizeof(out->digest), segs[2], out);
            out->id = pick(method, "HEAD", R_BLOB_HEAD);
            if (IS("GET")) out->id = R_BLOB_GET;
            if (IS("DELETE")) out->id = R_BLOB_DELETE;
        }
        return;
    }
    if (!SEG(1, "functions")) return;
    if (n == 2) {
        out->id = pick(method, "GET", R_FN_LIST);
        return;
    }
    copy_param(out->name, sizeof(out->name), segs[2], out);
    if (n == 3) {
        if (IS("PUT"))
            out->id = R_FN_PUT;
        else if (IS("GET") || IS("HEAD"))
            out->id = R_FN_GET;
        else if (IS("DELETE"))
            out->id = R_FN_DELETE;
        else
            out->id = R_NOT_ALLOWED;
    } else if (n == 4 && SEG(3, "rollback")) {
        out->id = pick(method, "POST", R_FN_ROLLBACK);
    } else if (n == 4 && SEG(3, "logs")) {
        out->id = pick(method, "GET", R_FN_LOGS);
    } else if (n == 4 && SEG(3, "scale-to-zero")) {
        out->id = pick(method, "POST", R_FN_SCALE_ZERO);
    } else if (n == 5 && SEG(3, "aliases")) {
        copy_param(out->alias, sizeof(out->alias), segs[4], out);
        out->id = pick(method, "PUT", R_ALIAS_PUT);
    }
}

body_sink route_sink(route_id id)
{
    switch (id) {
    case R_INFER:
        return BODY_INSTANCE;
    case R_BLOB_POST:
        return BODY_BLOB;
    default:
        return BODY_BUF;
    }
}

uint64_t route_body_limit(route_id id, uint64_t max_body_bytes, uint64_t max_blob_bytes)
{
    /* An OpenAI request is an inference: its prompt or messages may be as
     * long as the function's context, so it takes what inference takes. */
    if (id == R_OAI_COMPLETIONS || id == R_OAI_CHAT) return max_body_bytes;
    switch (route_sink(id)) {
    case BODY_INSTANCE:
        return max_body_bytes;
    case BODY_BLOB:
        return max_blob_bytes;
    default:
        return max_body_bytes < ROUTE_DOC_BODY_MAX ? max_body_bytes : ROUTE_DOC_BODY_MAX;
    }
}

int route_handle(http_req *req)
{
    switch (req->r.id) {
    case R_NONE:
        http_reply_error(req, 404, "no such endpoint");
        return 0;
    case R_NOT_ALLOWED:
        http_reply_error(req, 405, "method %s is not allowed here", req->method);
        return 0;
    case R_HEALTH_LIVE:
    case R_HEALTH_READY:
    case R_SERVER_META:
    case R_MODEL_META:
    case R_MODEL_READY:
    case R_INFER:
        return api_oip_handle(req);
    case R_STATS:
    case R_STATS_RESET:
        return api_stats_handle(req);
    case R_METRICS:
        return api_metrics_handle(req);
    case R_USAGE:
        return api_usage_handle(req);
    case R_FN_LOGS:
        return api_logs_handle(req);
    case R_KEY_SELF:
    case R_KEY_CREATE:
    case R_KEY_LIST:
    case R_KEY_DELETE:
        return api_keys_handle(req);
    case R_CONSOLE:
        return api_console_handle(req);
    case R_RECENT:
        return api_recent_handle(req);
    case R_CLUSTER:
        return api_cluster_handle(req);
    case R_JOB_LIST:
    case R_JOB_GET:
    case R_JOB_DELETE:
    case R_JOB_RETRY:
    case R_JOB_RESULT:
    case R_BATCH_POST:
    case R_BATCH_GET:
    case R_BATCH_OUTPUT:
        return api_jobs_handle(req);
    case R_OAI_MODELS:
    case R_OAI_COMPLETIONS:
    case R_OAI_CHAT:
        return api_openai_handle(req);
    default:
        return api_admin_handle(req);
    }
}
