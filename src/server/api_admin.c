/*
 * The management API (/v1): blobs, functions, versions, aliases, rollback.
 * Each write answers 2xx only after the store made it durable: the write
 * goes to a writer thread (durable.c) and the request stays suspended until
 * its completion, which runs on the loop, answers and resumes it; the loop
 * itself never waits for a disk. A deploy
 * that changes something first loads the model in a separate process
 * (pool_validate), so a bad model is a 400 with the engine's message and
 * never touches serve itself.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "server/fnlog.h"
#include "store/accuracy.h"
#include "server/http_int.h"
#include "store/blob_remote.h"

#define MOD "admin"

static void reply_rc(http_req *req, int rc, const rouse_errbuf *eb)
{
    http_reply_error(req, http_status_of(rc), "%s", eb->msg[0] ? eb->msg : rouse_strerror(rc));
}

static bool check_name(http_req *req, const char *what, const char *name, int status)
{
    /* A function's name is its key in the caller's tenant (auth.c). */
    bool fn = strcmp(what, "function") == 0;
    if (!req->r.param_too_long && (fn ? store_fn_key_valid(name) : store_name_valid(name)))
        return true;
    if (fn) name = auth_fn_name(name);
    if (status == 404)
        http_reply_error(req, 404, "no %s named '%s'", what, name);
    else
        http_reply_error(req, 400,
                         "%s name '%s' is invalid: use 1 to %d characters of a-z, 0-9, '_' and "
                         "'-', starting with a letter or digit",
                         what, name, STORE_NAME_MAX);
    return false;
}

/* --- blobs --------------------------------------------------------------------- */

/* A blob commit on the syncer thread: the writer is the job's from here. */
typedef struct blob_commit_arg {
    blob_writer *bw;
    char digest[BLOB_DIGEST_LEN + 1];
    uint64_t size;
} blob_commit_arg;

static int apply_blob_commit(store *st, void *p, rouse_errbuf *eb)
{
    (void)st;
    blob_commit_arg *a = p;
    return blob_write_commit(a->bw, a->digest, &a->size, eb);
}

/* With --auth: who uploaded a blob (store/keys.h), recorded once it is
 * durable, through the registry's writer. */
typedef struct blob_owner_arg {
    char tenant[STORE_NAME_MAX + 1];
    char digest[BLOB_DIGEST_LEN + 1];
    uint64_t size;
    int64_t now_ms;
} blob_owner_arg;

static int apply_blob_owner(store *st, void *p, rouse_errbuf *eb)
{
    blob_owner_arg *a = p;
    return store_blob_owner_add_tx(st, a->tenant, a->digest, a->now_ms, eb);
}

static void reply_blob_posted(http_req *req, const char *digest, uint64_t size)
{
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_buf_appendf(&b, "{\"digest\":\"%s\",\"size\":%" PRIu64 "}\n", digest, size);
    http_reply_json(req, 201, &b);
    rouse_buf_fini(&b);
}

static void blob_owned(void *user, int rc, const rouse_errbuf *eb, void *p)
{
    http_req *req = user;
    const blob_owner_arg *a = p;
    durable_done(req);
    if (rc < 0)
        reply_rc(req, rc, eb);
    else
        reply_blob_posted(req, a->digest, a->size);
    http_req_resume(req);
}

/* The upload is durable here and, with a bucket, there too: records its
 * owner (--auth) or answers. */
static void blob_stored(http_req *req, const char *digest, uint64_t size)
{
    if (req->srv->opts.auth) {
        blob_owner_arg o;
        memset(&o, 0, sizeof(o));
        snprintf(o.tenant, sizeof(o.tenant), "%s", req->who.tenant);
        snprintf(o.digest, sizeof(o.digest), "%s", digest);
        o.size = size;
        o.now_ms = rouse_wall_ms();
        if (durable_submit(req, req->srv->writer.w, apply_blob_owner, &o, sizeof(o),
                           blob_owned) == 0)
            return; /* still suspended: blob_owned answers */
        http_req_resume(req);
        return;
    }
    reply_blob_posted(req, digest, size);
    http_req_resume(req);
}

/* With --blobs s3://: the bucket has the upload (or already had it). */
static void blob_pushed(void *user, int rc, const char *msg)
{
    http_req *req = user;
    blob_fetch_done(req, rc, msg);
    uint64_t size = 0;
    if (rc == 0 && blob_stat(req->srv->blobs, req->fetch_digest, &size) == 0) {
        blob_stored(req, req->fetch_digest, size);
        return;
    }
    /* Not acknowledged: the client uploads again (the local copy makes the
     * commit a no-op, and the write-through is tried again). */
    http_reply_error(req, 502, "blob %s is stored on this node but not in the bucket: %s",
                     req->fetch_digest, rc == 0 ? "it went missing here" : msg);
    http_req_resume(req);
}

static void blob_committed(void *user, int rc, const rouse_errbuf *eb, void *p)
{
    http_req *req = user;
    const blob_commit_arg *a = p;
    durable_done(req);
    if (rc < 0) {
        reply_rc(req, rc, eb);
        http_req_resume(req);
        return;
    }
    /* Acknowledged only once the bucket has it too: a node that dies
     * after the answer loses nothing another node cannot fetch. */
    if (req->srv->remote && blob_remote_has_bucket(req->srv->remote)) {
        if (blob_fetch_req(req, BLOB_JOB_PUSH, a->digest, blob_pushed) == 0) return;
        http_req_resume(req);
        return;
    }
    blob_stored(req, a->digest, a->size);
}

static int blob_post(http_req *req)
{
    server *s = req->srv;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = 0;
    if (!req->blob) rc = blob_write_begin(s->blobs, req->body_limit, &req->blob, &eb);
    if (rc < 0) {
        reply_rc(req, rc, &eb);
        return 0;
    }
    blob_commit_arg a = {.bw = req->blob};
    if (durable_submit(req, s->syncer.w, apply_blob_commit, &a, sizeof(a), blob_committed) < 0)
        return 0; /* req->blob is still ours: freed with the request */
    req->blob = NULL;
    return 1;
}

static int blob_head(http_req *req)
{
    uint64_t size;
    int rc = blob_stat(req->srv->blobs, req->r.digest, &size);
    if (rc == ROUSE_EINVAL || req->r.param_too_long) {
        http_reply_error(req, 400, "'%s' is not a blob digest (sha256:<64 lower-case hex>)",
                         req->r.digest);
        return 0;
    }
    if (rc < 0 || !auth_blob_visible(req, req->r.digest)) {
        http_reply_error(req, 404, "no blob %s", req->r.digest);
        return 0;
    }
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_buf_appendf(&b, "{\"digest\":\"%s\",\"size\":%" PRIu64 "}\n", req->r.digest, size);
    http_reply_json(req, 200, &b);
    rouse_buf_fini(&b);
    return 0;
}

/* GET /v1/blobs/{digest}: the bytes, from the local store only (every
 * blob there was verified when it was committed). A blob this node lacks
 * is fetched first (peers, the bucket), except for another node's read:
 * asking back could go round in circles. */
static void blob_send(http_req *req, const char *digest)
{
    char path[PATH_MAX];
    int fd = -1;
    struct stat st;
    if (blob_path(req->srv->blobs, digest, path, sizeof(path)) < 0 ||
        (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
        if (fd >= 0) close(fd);
        http_reply_error(req, 404, "no blob %s", digest);
        return;
    }
    rouse_buf empty;
    rouse_buf_init(&empty);
    http_reply_json(req, 200, &empty);
    snprintf(req->reply.content_type, sizeof(req->reply.content_type), "application/octet-stream");
    req->reply.fd = fd;
    req->reply.fd_len = (uint64_t)st.st_size;
}

/* The blob's pages are in memory: the loop sends them without reading
 * the disk itself. */
static void blob_read_ahead_done(void *user, int rc, const char *msg)
{
    http_req *req = user;
    blob_fetch_done(req, rc, msg);
    if (rc == ROUSE_ENOTFOUND)
        http_reply_error(req, 404, "no blob %s", req->fetch_digest);
    else
        blob_send(req, req->fetch_digest);
    http_req_resume(req);
}

static void blob_fetched_for_get(void *user, int rc, const char *msg)
{
    http_req *req = user;
    blob_fetch_done(req, rc, msg);
    if (rc == 0)
        blob_send(req, req->fetch_digest); /* just written: in the page cache */
    else
        http_reply_error(req, rc == ROUSE_ENOTFOUND ? 404 : 502, "%s", msg);
    http_req_resume(req);
}

static int blob_get(http_req *req)
{
    const char *digest = req->r.digest;
    if (req->r.param_too_long || !blob_digest_valid(digest)) {
        http_reply_error(req, 400, "'%s' is not a blob digest (sha256:<64 lower-case hex>)",
                         digest);
        return 0;
    }
    if (!auth_blob_visible(req, digest)) {
        http_reply_error(req, 404, "no blob %s", digest);
        return 0;
    }
    int rc = blob_stat(req->srv->blobs, digest, NULL);
    if (rc == 0) return blob_fetch_req(req, BLOB_JOB_READ, digest, blob_read_ahead_done) == 0;
    if (rc != ROUSE_ENOTFOUND || req->who.peer || !blob_fetch_possible(req->srv)) {
        http_reply_error(req, 404, "no blob %s", digest);
        return 0;
    }
    return blob_fetch_req(req, BLOB_JOB_FETCH, digest, blob_fetched_for_get) == 0;
}

typedef struct blob_delete_arg {
    char tenant[STORE_NAME_MAX + 1]; /* with --auth, the caller's; else "" */
    blobstore *blobs;
    char plan_dir[PATH_MAX + 8];
    char digest[BLOB_DIGEST_LEN + 2]; /* as route.digest */
} blob_delete_arg;

/* On the writer: the reference count and the removal in one transaction. */
static int apply_blob_delete(store *st, void *p, rouse_errbuf *eb)
{
    blob_delete_arg *a = p;
    int64_t refs;
    int rc = blob_stat(a->blobs, a->digest, NULL);
    if (rc == ROUSE_ENOTFOUND) return rouse_err_set(eb, rc, "no blob %s", a->digest);
    if (a->tenant[0]) {
        /* The caller's upload is forgotten; the file stays while another
         * tenant's upload of the same bytes remains. */
        int64_t others;
        if ((rc = store_blob_owner_remove_tx(st, a->tenant, a->digest, &others, eb)) < 0)
            return rc;
        if (others > 0) return 0;
    }
    if ((rc = store_blob_refs_tx(st, a->digest, &refs, eb)) < 0) return rc;
    if (refs > 0)
        return rouse_err_set(eb, ROUSE_ESTATE,
                             "blob %s is in use: %lld function version(s) name it as their model",
                             a->digest, (long long)refs);
    if ((rc = blob_remove(a->blobs, a->digest, eb)) < 0) return rc;
    char plan[PATH_MAX + 96];
    if (gc_plan_path(a->plan_dir, a->digest, plan, sizeof(plan)) == 0) unlink(plan);
    return 0;
}

static void blob_deleted(void *user, int rc, const rouse_errbuf *eb, void *p)
{
    http_req *req = user;
    const blob_delete_arg *a = p;
    durable_done(req);
    if (rc < 0) {
        reply_rc(req, rc, eb);
    } else {
        rouse_buf b;
        rouse_buf_init(&b);
        rouse_buf_appendf(&b, "{\"digest\":\"%s\",\"deleted\":true}\n", a->digest);
        http_reply_json(req, 200, &b);
        rouse_buf_fini(&b);
    }
    http_req_resume(req);
}

static int blob_delete(http_req *req)
{
    if (req->r.param_too_long || !blob_digest_valid(req->r.digest)) {
        http_reply_error(req, 400, "'%s' is not a blob digest (sha256:<64 lower-case hex>)",
                         req->r.digest);
        return 0;
    }
    if (!auth_blob_visible(req, req->r.digest)) {
        http_reply_error(req, 404, "no blob %s", req->r.digest);
        return 0;
    }
    blob_delete_arg *a = calloc(1, sizeof(*a));
    if (!a) {
        http_reply_error(req, 500, "out of memory");
        return 0;
    }
    if (req->srv->opts.auth) snprintf(a->tenant, sizeof(a->tenant), "%s", req->who.tenant);
    a->blobs = req->srv->blobs;
    snprintf(a->plan_dir, sizeof(a->plan_dir), "%s", req->srv->plan_dir);
    snprintf(a->digest, sizeof(a->digest), "%s", req->r.digest);
    int rc =
        durable_submit(req, req->srv->writer.w, apply_blob_delete, a, sizeof(*a), blob_deleted);
    free(a);
    return rc < 0 ? 0 : 1;
}

/* --- functions ----------------------------------------------------------------- */

static int64_t latest_of(const store_function *f)
{
    for (int i = 0; i < f->n_aliases; i++)
        if (strcmp(f->aliases[i].name, STORE_DEFAULT_ALIAS) == 0 && f->aliases[i].n_routes > 0)
            return f->aliases[i].routes[0].version;
    return f->n_versions > 0 ? f->versions[f->n_versions - 1].version : 0;
}

static int write_routes(rouse_buf *b, const store_alias *a)
{
    int rc = rouse_buf_append_str(b, "[");
    for (int j = 0; rc == 0 && j < a->n_routes; j++)
        rc = rouse_buf_appendf(b, "%s{\"version\":%" PRId64 ",\"weight\":%d}", j ? "," : "",
                               a->routes[j].version, a->routes[j].weight);
    if (rc == 0) rc = rouse_buf_append_str(b, "]");
    return rc;
}

typedef struct list_ctx {
    rouse_buf *b;
    int n;
    const http_req *req;
} list_ctx;

/* Lists the caller's tenant's functions only, by their names in it. */
static int list_one(void *user, const store_function *f)
{
    list_ctx *ctx = user;
    if (!auth_owns_fn(ctx->req, f->name)) return 0;
    return rouse_buf_appendf(ctx->b,
                             "%s{\"name\":\"%s\",\"latest\":%" PRId64 ",\"versions\":%d,"
                             "\"created_ms\":%" PRId64 "}",
                             ctx->n++ ? "," : "", auth_fn_name(f->name), latest_of(f),
                             f->n_versions, f->created_ms) < 0;
}

static int fn_list(http_req *req)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    rouse_buf b;
    rouse_buf_init(&b);
    list_ctx ctx = {.b = &b, .req = req};
    rouse_buf_append_str(&b, "{\"functions\":[");
    int rc = store_function_list(req->srv->st, list_one, &ctx, &eb);
    if (rc < 0) {
        rouse_buf_fini(&b);
        reply_rc(req, rc, &eb);
        return 0;
    }
    rouse_buf_append_str(&b, "]}\n");
    http_reply_json(req, 200, &b);
    rouse_buf_fini(&b);
    return 0;
}

static int fn_get(http_req *req)
{
    if (!check_name(req, "function", req->r.name, 404)) return 0;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    store_function f;
    memset(&f, 0, sizeof(f));
    int rc = store_function_get(req->srv->st, req->r.name, &f, &eb);
    if (rc < 0) {
        reply_rc(req, rc, &eb);
        return 0;
    }
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_buf_appendf(
        &b, "{\"name\":\"%s\",\"created_ms\":%" PRId64 ",\"latest\":%" PRId64 ",\"versions\":[",
        auth_fn_name(f.name), f.created_ms, latest_of(&f));
    for (int i = 0; i < f.n_versions; i++) {
        const store_version *v = &f.versions[i];
        /* config_json is our own canonical JSON, the accuracy figures an
         * object checked when the deploy recorded them: embedded as they are. */
        char *acc = NULL;
        store_accuracy_get(req->srv->st, f.name, v->version, &acc, NULL);
        rouse_buf_appendf(&b,
                          "%s{\"version\":%" PRId64 ",\"model\":\"%s\",\"created_ms\":%" PRId64
                          ",\"config\":%s,\"accuracy\":%s}",
                          i ? "," : "", v->version, v->model_digest, v->created_ms,
                          v->config_json ? v->config_json : "null", acc ? acc : "null");
        free(acc);
    }
    rouse_buf_append_str(&b, "],\"aliases\":[");
    for (int i = 0; i < f.n_aliases; i++) {
        rouse_buf_appendf(&b, "%s{\"name\":\"%s\",\"routes\":", i ? "," : "", f.aliases[i].name);
        write_routes(&b, &f.aliases[i]);
        rouse_buf_append_str(&b, "}");
    }
    rouse_buf_append_str(&b, "],");
    pool_describe(req->srv->pool, f.name, &b);
    rouse_buf_append_str(&b, "}\n");
    store_function_fini(&f);
    http_reply_json(req, 200, &b);
    rouse_buf_fini(&b);
    return 0;
}

/* accuracy: the version's figures (a JSON object), or NULL to read them
 * from the registry. */
static void reply_deployed(http_req *req, int64_t version, bool created, const char *accuracy)
{
    char *stored = NULL;
    if (!accuracy) store_accuracy_get(req->srv->st, req->r.name, version, &stored, NULL);
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_buf_appendf(&b,
                      "{\"name\":\"%s\",\"version\":%" PRId64 ",\"created\":%s,\"accuracy\":%s}\n",
                      auth_fn_name(req->r.name), version, created ? "true" : "false",
                      accuracy ? accuracy : stored ? stored : "null");
    free(stored);
    http_reply_json(req, created ? 201 : 200, &b);
    rouse_buf_fini(&b);
    req->reply.version = version;
}

/* Whether the function's "latest" version already has this model and config. */
static bool unchanged(server *s, const char *name, const char *digest, const char *cfg,
                      int64_t *version)
{
    store_function f;
    memset(&f, 0, sizeof(f));
    if (store_function_get(s->st, name, &f, NULL) < 0) return false;
    int64_t latest = latest_of(&f);
    bool same = false;
    for (int i = 0; i < f.n_versions; i++) {
        const store_version *v = &f.versions[i];
        if (v->version == latest && strcmp(v->model_digest, digest) == 0 && v->config_json &&
            strcmp(v->config_json, cfg) == 0)
            same = true;
    }
    store_function_fini(&f);
    *version = latest;
    return same;
}

static void api_admin_validated(void *user, pool_result *res);
static int fn_put(http_req *req);

/* A blob a deploy names was fetched (or not): the deploy runs again. */
static void deploy_fetched(void *user, int rc, const char *msg)
{
    http_req *req = user;
    blob_fetch_done(req, rc, msg);
    if (fn_put(req) == 0) http_req_resume(req);
}

/* Whether the blobs a deploy names are here (and, with --auth, the
 * caller's): 0 yes; 1 when one is being fetched from another node or the
 * bucket (req waits; fn_put runs again once it is done); -1 when req has
 * its error reply. */
static int deploy_blobs_here(http_req *req, const fn_config *cfg)
{
    struct {
        const char *digest;
        char what[FN_CALIB_NAME_MAX + 16];
        const char *upload;
        bool owned; /* the caller's tenant must own it */
    } need[4 + FN_CALIB_MAX];
    int n = 0;
    need[n].digest = cfg->model;
    snprintf(need[n].what, sizeof(need[n].what), "model");
    need[n].upload = "upload the model with POST /v1/blobs first";
    need[n++].owned = true;
    const char *tok[3] = {cfg->tokenizer, cfg->vocab, cfg->merges};
    for (int i = 0; i < 3; i++) {
        if (!tok[i][0]) continue;
        need[n].digest = tok[i];
        snprintf(need[n].what, sizeof(need[n].what), "tokenizer");
        need[n].upload = "upload it with POST /v1/blobs first";
        need[n++].owned = false;
    }
    for (int i = 0; i < cfg->n_calibration; i++) {
        need[n].digest = cfg->calibration[i].digest;
        snprintf(need[n].what, sizeof(need[n].what), "calibration.%s", cfg->calibration[i].input);
        need[n].upload = "upload the .npy with POST /v1/blobs first";
        need[n++].owned = true;
    }
    server *s = req->srv;
    for (int i = 0; i < n; i++) {
        const char *d = need[i].digest;
        bool visible = !need[i].owned || auth_blob_visible(req, d);
        if (visible && blob_stat(s->blobs, d, NULL) == 0) continue;
        bool tried = req->fetch_msg && strcmp(req->fetch_digest, d) == 0;
        if (visible && tried && req->fetch_rc != 0 && req->fetch_rc != ROUSE_ENOTFOUND) {
            http_reply_error(req, 502, "%s: blob %s could not be fetched: %s", need[i].what, d,
                             req->fetch_msg);
            return -1;
        }
        if (visible && !tried && blob_fetch_possible(s))
            return blob_fetch_req(req, BLOB_JOB_FETCH, d, deploy_fetched) == 0 ? 1 : -1;
        http_reply_error(req, 400, "%s: no blob %s; %s%s%s%s", need[i].what, d, need[i].upload,
                         tried ? " (" : "", tried ? req->fetch_msg : "", tried ? ")" : "");
        return -1;
    }
    return 0;
}

static int fn_put(http_req *req)
{
    server *s = req->srv;
    if (!check_name(req, "function", req->r.name, 400)) return 0;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    fn_config *cfg = &req->pending_cfg;
    int rc = fn_config_parse(req->body.data ? req->body.data : "", req->body.len, cfg, &eb);
    if (rc < 0) {
        reply_rc(req, rc, &eb);
        return 0;
    }
    fn_config_set_tenant(cfg, req->r.name);
    const char *dry = http_req_query(req, "dry_run");
    bool dry_run = dry && strcmp(dry, "0") != 0 && strcmp(dry, "false") != 0;
    if (!dry_run && (rc = deploy_blobs_here(req, cfg)) != 0) return rc > 0 ? 1 : 0;
    rouse_buf canon;
    rouse_buf_init(&canon);
    if (fn_config_write(cfg, &canon) < 0) {
        rouse_buf_fini(&canon);
        http_reply_error(req, 500, "out of memory");
        return 0;
    }
    int64_t version = 0; /* 0: no such function yet */
    if (dry_run) {
        /* What a deploy would do, without doing it (rouse diff): the
         * canonical config and whether it differs from the latest. The
         * model is neither required nor loaded. */
        bool same = unchanged(s, req->r.name, cfg->model, canon.data, &version);
        rouse_buf b;
        rouse_buf_init(&b);
        rouse_buf_appendf(&b,
                          "{\"name\":\"%s\",\"dry_run\":true,\"changed\":%s,\"version\":%" PRId64
                          ",\"config\":%s}\n",
                          req->r.name, same ? "false" : "true", version, canon.data);
        rouse_buf_fini(&canon);
        http_reply_json(req, 200, &b);
        rouse_buf_fini(&b);
        return 0;
    }
    if (unchanged(s, req->r.name, cfg->model, canon.data, &version)) {
        rouse_buf_fini(&canon);
        reply_deployed(req, version, false, NULL);
        return 0;
    }
    /* min counts against the instance cap like every other instance. */
    if ((rc = pool_check_min(s->pool, req->r.name, cfg->scaling.min, &eb)) < 0) {
        rouse_buf_fini(&canon);
        reply_rc(req, rc, &eb);
        return 0;
    }
    req->pending_cfg_json = rouse_buf_detach(&canon, NULL);
    rouse_buf_fini(&canon);
    char path[PATH_MAX];
    if ((rc = blob_path(s->blobs, cfg->model, path, sizeof(path))) < 0 ||
        (rc = pool_validate(s->pool, req->r.name, path, cfg, api_admin_validated, req, &eb)) < 0) {
        reply_rc(req, rc, &eb);
        return 0;
    }
    return 1; /* api_admin_validated answers */
}

/* The registry writes of this file, as the writer thread runs them. */
typedef struct deploy_arg {
    blobstore *blobs;
    char name[STORE_NAME_MAX + 1];
    char digest[STORE_DIGEST_LEN + 1];
    int64_t version;
    bool created;
    size_t accuracy_off; /* the figures' offset in text, 0: none */
    char text[];         /* canonical config JSON, NUL, accuracy figures, NUL */
} deploy_arg;

static int apply_deploy(store *st, void *p, rouse_errbuf *eb)
{
    deploy_arg *a = p;
    /* In the writer's transaction, the blob cannot be collected between
     * this check and the commit (gc.c). */
    if (blob_stat(a->blobs, a->digest, NULL) < 0)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "model: no blob %s; upload the model with POST /v1/blobs first",
                             a->digest);
    int rc = store_deploy_tx(st, a->name, a->digest, a->text, &a->version, &a->created, eb);
    if (rc < 0 || !a->created || !a->accuracy_off) return rc;
    return store_accuracy_set_tx(st, a->name, a->version, a->text + a->accuracy_off, eb);
}

static void deployed(void *user, int rc, const rouse_errbuf *eb, void *p)
{
    http_req *req = user;
    const deploy_arg *a = p;
    durable_done(req);
    route_cache_clear(req->srv);
    if (rc < 0) {
        reply_rc(req, rc, eb);
    } else {
        LOG_INFO(MOD, "function %s: version %" PRId64 "%s", a->name, a->version,
                 a->created ? " created" : " unchanged");
        reply_deployed(req, a->version, a->created,
                       a->accuracy_off ? a->text + a->accuracy_off : NULL);
        if (a->created) pool_deployed(req->srv->pool, a->name, a->version);
    }
    http_req_resume(req);
}

/* The completion of fn_put's model check. */
static void api_admin_validated(void *user, pool_result *res)
{
    http_req *req = user;
    int status = res->status;
    const char *msg = res->error ? res->error : "";
    if (status != 0) {
        if (status == 400)
            http_reply_error(req, 400, "model: %s cannot be loaded: %s", req->pending_cfg.model,
                             msg);
        else if (status == 507)
            http_reply_error(req, 507, "storage: %s", msg);
        else
            http_reply_error(req, status, "%s", msg);
        http_req_resume(req);
        gc_request(req->srv); /* the model's blob may be unused now */
        return;
    }
    size_t cfg_len = strlen(req->pending_cfg_json);
    size_t acc_len = res->body ? strlen(res->body) : 0; /* a JSON object (pool_ipc.h) */
    size_t size = sizeof(deploy_arg) + cfg_len + 1 + (acc_len ? acc_len + 1 : 0);
    deploy_arg *a = calloc(1, size);
    if (!a) {
        http_reply_error(req, 500, "out of memory");
        http_req_resume(req);
        return;
    }
    a->blobs = req->srv->blobs;
    snprintf(a->name, sizeof(a->name), "%s", req->r.name);
    snprintf(a->digest, sizeof(a->digest), "%s", req->pending_cfg.model);
    memcpy(a->text, req->pending_cfg_json, cfg_len + 1);
    if (acc_len) {
        a->accuracy_off = cfg_len + 1;
        memcpy(a->text + a->accuracy_off, res->body, acc_len + 1);
    }
    int rc = durable_submit(req, req->srv->writer.w, apply_deploy, a, size, deployed);
    free(a);
    if (rc < 0) http_req_resume(req); /* the error reply is set */
}

typedef struct name_arg {
    char name[STORE_NAME_MAX + 1];
    int64_t version; /* rollback: the version "latest" routes to now */
} name_arg;

static int apply_delete(store *st, void *p, rouse_errbuf *eb)
{
    return store_function_delete_tx(st, ((name_arg *)p)->name, eb);
}

static void deleted(void *user, int rc, const rouse_errbuf *eb, void *p)
{
    http_req *req = user;
    const name_arg *a = p;
    durable_done(req);
    route_cache_clear(req->srv);
    if (rc < 0) {
        reply_rc(req, rc, eb);
    } else {
        pool_forget_function(req->srv->pool, a->name);
        fnlog_forget(req->srv->logs, a->name);
        gc_request(req->srv); /* its blobs and plans, unless others use them */
        rouse_buf b;
        rouse_buf_init(&b);
        rouse_buf_appendf(&b, "{\"name\":\"%s\",\"deleted\":true}\n", a->name);
        http_reply_json(req, 200, &b);
        rouse_buf_fini(&b);
    }
    http_req_resume(req);
}

static int fn_delete(http_req *req)
{
    if (!check_name(req, "function", req->r.name, 404)) return 0;
    name_arg a = {.version = 0};
    snprintf(a.name, sizeof(a.name), "%s", req->r.name);
    return durable_submit(req, req->srv->writer.w, apply_delete, &a, sizeof(a), deleted) < 0 ? 0
                                                                                             : 1;
}

static int apply_rollback(store *st, void *p, rouse_errbuf *eb)
{
    name_arg *a = p;
    return store_rollback_tx(st, a->name, &a->version, eb);
}

static void rolled_back(void *user, int rc, const rouse_errbuf *eb, void *p)
{
    http_req *req = user;
    const name_arg *a = p;
    durable_done(req);
    route_cache_clear(req->srv);
    if (rc < 0) {
        reply_rc(req, rc, eb);
    } else {
        pool_routes_changed(req->srv->pool, a->name);
        rouse_buf b;
        rouse_buf_init(&b);
        rouse_buf_appendf(&b, "{\"name\":\"%s\",\"version\":%" PRId64 "}\n", a->name, a->version);
        http_reply_json(req, 200, &b);
        rouse_buf_fini(&b);
        req->reply.version = a->version;
    }
    http_req_resume(req);
}

static int fn_rollback(http_req *req)
{
    if (!check_name(req, "function", req->r.name, 404)) return 0;
    name_arg a = {.version = 0};
    snprintf(a.name, sizeof(a.name), "%s", req->r.name);
    return durable_submit(req, req->srv->writer.w, apply_rollback, &a, sizeof(a), rolled_back) < 0
               ? 0
               : 1;
}

/* {"version":N} or {"routes":[{"version":N,"weight":W},...]} into a. */
static int parse_alias(const char *text, size_t len, store_alias *a, rouse_errbuf *eb)
{
    rouse_arena arena;
    rouse_arena_init(&arena, 0);
    json_value *root;
    int rc = json_parse(text, len, &arena, &root, eb);
    if (rc < 0) {
        rc = rouse_err_wrap(eb, ROUSE_EINVAL, "alias is not valid JSON");
        goto out_arena;
    }
    rc = ROUSE_EINVAL;
    if (root->type != JSON_OBJECT) {
        rouse_err_set(eb, rc, "alias must be a JSON object");
        goto out_arena;
    }
    const json_value *v = json_get(root, "version");
    const json_value *routes = json_get(root, "routes");
    for (size_t i = 0; i < root->u.obj.n; i++) {
        const char *k = root->u.obj.members[i].key;
        if (strcmp(k, "version") != 0 && strcmp(k, "routes") != 0) {
            rouse_err_set(eb, rc, "%s: unknown field (expected \"version\" or \"routes\")", k);
            goto out_arena;
        }
    }
    if ((v != NULL) == (routes != NULL)) {
        rouse_err_set(eb, rc, "give either \"version\" or \"routes\"");
        goto out_arena;
    }
    a->n_routes = 0;
    if (v) {
        if (!json_as_int64(v, &a->routes[0].version) || a->routes[0].version < 1) {
            rouse_err_set(eb, rc, "version: must be a positive integer");
            goto out_arena;
        }
        a->routes[0].weight = 100;
        a->n_routes = 1;
        rc = 0;
        goto out_arena;
    }
    if (routes->type != JSON_ARRAY || routes->u.arr.n == 0 || routes->u.arr.n > STORE_MAX_ROUTES) {
        rouse_err_set(eb, rc, "routes: must be an array of 1 to %d routes", STORE_MAX_ROUTES);
        goto out_arena;
    }
    for (size_t i = 0; i < routes->u.arr.n; i++) {
        const json_value *r = routes->u.arr.items[i];
        int64_t ver, w;
        if (!json_as_int64(json_get(r, "version"), &ver) || ver < 1) {
            rouse_err_set(eb, rc, "routes[%zu].version: must be a positive integer", i);
            goto out_arena;
        }
        if (!json_as_int64(json_get(r, "weight"), &w) || w < 1 || w > 1000000) {
            rouse_err_set(eb, rc, "routes[%zu].weight: must be an integer from 1 to 1000000", i);
            goto out_arena;
        }
        a->routes[a->n_routes].version = ver;
        a->routes[a->n_routes].weight = (int)w;
        a->n_routes++;
    }
    rc = 0;
out_arena:
    rouse_arena_fini(&arena);
    return rc;
}

typedef struct alias_arg {
    char name[STORE_NAME_MAX + 1];
    store_alias alias;
} alias_arg;

static int apply_alias(store *st, void *p, rouse_errbuf *eb)
{
    alias_arg *a = p;
    return store_alias_set_tx(st, a->name, &a->alias, eb);
}

static void alias_written(void *user, int rc, const rouse_errbuf *eb, void *p)
{
    http_req *req = user;
    const alias_arg *a = p;
    durable_done(req);
    route_cache_clear(req->srv);
    if (rc < 0) {
        reply_rc(req, rc, eb);
    } else {
        pool_routes_changed(req->srv->pool, a->name);
        rouse_buf b;
        rouse_buf_init(&b);
        rouse_buf_appendf(&b, "{\"name\":\"%s\",\"alias\":\"%s\",\"routes\":", a->name,
                          a->alias.name);
        write_routes(&b, &a->alias);
        rouse_buf_append_str(&b, "}\n");
        http_reply_json(req, 200, &b);
        rouse_buf_fini(&b);
    }
    http_req_resume(req);
}

static int alias_put(http_req *req)
{
    if (!check_name(req, "function", req->r.name, 404)) return 0;
    if (!check_name(req, "alias", req->r.alias, 400)) return 0;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    alias_arg a;
    memset(&a, 0, sizeof(a));
    snprintf(a.name, sizeof(a.name), "%s", req->r.name);
    snprintf(a.alias.name, sizeof(a.alias.name), "%s", req->r.alias);
    int rc = parse_alias(req->body.data ? req->body.data : "", req->body.len, &a.alias, &eb);
    if (rc < 0) {
        reply_rc(req, rc, &eb);
        return 0;
    }
    return durable_submit(req, req->srv->writer.w, apply_alias, &a, sizeof(a), alias_written) < 0
               ? 0
               : 1;
}

/* Stops the function's idle instances and templates: its next request
 * starts from zero (rouse bench --cold; draining a function). */
static int fn_scale_to_zero(http_req *req)
{
    if (!check_name(req, "function", req->r.name, 404)) return 0;
    store_function f;
    memset(&f, 0, sizeof(f));
    if (store_function_get(req->srv->st, req->r.name, &f, NULL) < 0) {
        http_reply_error(req, 404, "no function named '%s'", auth_fn_name(req->r.name));
        return 0;
    }
    store_function_fini(&f);
    int n = pool_scale_to_zero(req->srv->pool, req->r.name);
    rouse_buf b;
    rouse_buf_init(&b);
    rouse_buf_appendf(&b, "{\"name\":\"%s\",\"stopped\":%d}\n", req->r.name, n);
    http_reply_json(req, 200, &b);
    rouse_buf_fini(&b);
    return 0;
}

int api_admin_handle(http_req *req)
{
    switch (req->r.id) {
    case R_BLOB_POST:
        return blob_post(req);
    case R_BLOB_HEAD:
        return blob_head(req);
    case R_BLOB_GET:
        return blob_get(req);
    case R_BLOB_DELETE:
        return blob_delete(req);
    case R_FN_LIST:
        return fn_list(req);
    case R_FN_PUT:
        return fn_put(req);
    case R_FN_GET:
        return fn_get(req);
    case R_FN_DELETE:
        return fn_delete(req);
    case R_FN_ROLLBACK:
        return fn_rollback(req);
    case R_ALIAS_PUT:
        return alias_put(req);
    case R_FN_SCALE_ZERO:
        return fn_scale_to_zero(req);
    default:
        http_reply_error(req, 404, "no such endpoint");
        return 0;
    }
}
