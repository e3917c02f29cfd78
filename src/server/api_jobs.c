/*
 * The asynchronous API: inference accepted as a job (Prefer:
 * respond-async), /v1/jobs (status, result, cancel, re-drive, dead
 * letters) and /v1/batches (JSONL batch files). Changes go through the job
 * queue (jobq.h), whose completion answers the suspended request: a 202
 * is sent only once the job is durable.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/json.h"
#include "common/sha256.h"
#include "common/timeutil.h"
#include "server/async_dispatch.h"
#include "server/callback.h"
#include "server/http_int.h"
#include "server/job_json.h"
#include "server/jobq.h"

/* An Idempotency-Key names the same job for this long. */
#define IDEM_WINDOW_MS (24ll * 3600 * 1000)
#define LIST_DEFAULT 100
#define LIST_MAX 1000

bool api_jobs_wants_async(http_req *req)
{
    const char *p = http_req_header(req, "Prefer");
    if (!p) return false;
    /* A list of preferences: respond-async as one token of it. */
    const char *q = p;
    while ((q = strcasestr(q, "respond-async"))) {
        bool start = q == p || q[-1] == ',' || q[-1] == ' ' || q[-1] == ';';
        char after = q[13];
        if (start && (after == '\0' || after == ',' || after == ' ' || after == ';')) return true;
        q += 13;
    }
    return false;
}

static int reply_buf(http_req *req, int status, rouse_buf *b, int rc)
{
    if (rc == 0) rc = rouse_buf_append_str(b, "\n");
    http_reply_built(req, status, b, rc);
    return 0;
}

static bool parse_ref(http_req *req, const char *what, int64_t *id)
{
    if (req->r.param_too_long || !store_version_parse(req->r.ref, id) || *id <= 0) {
        http_reply_error(req, 404, "no %s '%s'", what, req->r.ref);
        return false;
    }
    return true;
}

/* The HTTP status of a queue's error: a store that cannot be reached
 * (PostgreSQL or NATS, with several nodes) is a 503. */
static int status_of(http_req *req, int rc)
{
    if (rc == ROUSE_EIO && !jobq_caps_of(req->srv->jobq)->sync_reads) return 503;
    return http_status_of(rc);
}

/* --- accepting a job --------------------------------------------------------------- */

static void accepted(http_req *req, int64_t id, int status)
{
    rouse_buf b;
    rouse_buf_init(&b);
    int rc = rouse_buf_appendf(&b, "{\"id\":\"%" PRId64 "\",\"status\":\"queued\"}", id);
    reply_buf(req, status, &b, rc);
    rouse_buf_fini(&b);
    snprintf(req->reply.location, sizeof(req->reply.location), "/v1/jobs/%" PRId64, id);
}

static void enqueue_done(void *user, int rc, const rouse_errbuf *eb, const jobq_reply *r)
{
    http_req *req = user;
    server *s = req->srv;
    req->jobq_ticket = 0;
    if (rc < 0) {
        async_unadmit(s->ad, req->r.name, 1);
        http_reply_error(req, rc == ROUSE_ESTATE ? 409 : status_of(req, rc), "%s", eb->msg);
    } else if (r->existed) {
        async_unadmit(s->ad, req->r.name, 1);
        accepted(req, r->id, 202);
        req->job_accepted = true;
    } else {
        async_queued(s->ad, req->r.name, 0);
        accepted(req, r->id, 202);
        req->job_accepted = true;
    }
    http_req_resume(req);
}

int api_jobs_enqueue(http_req *req, int64_t version)
{
    server *s = req->srv;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    req->reply.version = version;
    if (req->body_fd >= 0) {
        http_reply_error(req, 413,
                         "an asynchronous request body may hold at most %u bytes (send larger "
                         "inputs as a batch)",
                         POOL_BODY_INLINE_MAX);
        return 0;
    }
    fn_config cfg;
    int rc = async_config(s->ad, req->r.name, version, &cfg, &eb);
    if (rc < 0) {
        http_reply_error(req, http_status_of(rc), "%s", eb.msg);
        return 0;
    }
    const char *key = http_req_header(req, "Idempotency-Key");
    if (key && (!*key || strlen(key) > JOB_IDEM_KEY_MAX)) {
        http_reply_error(req, 400, "Idempotency-Key: must be 1 to %d characters", JOB_IDEM_KEY_MAX);
        return 0;
    }
    const char *cb = http_req_header(req, "Callback-Url");
    if (cb && strlen(cb) > JOB_CALLBACK_MAX) {
        http_reply_error(req, 400, "Callback-Url: longer than %d characters", JOB_CALLBACK_MAX);
        return 0;
    }
    if (cb && callback_url_check(cb, s->opts.callback_allow, &eb) < 0) {
        http_reply_error(req, 400, "%s", eb.msg);
        return 0;
    }
    int retry_after = 0;
    if ((rc = async_admit(s->ad, req->r.name, &cfg, 1, &retry_after, &eb)) < 0) {
        http_reply_error(req, http_status_of(rc), "%s", eb.msg);
        req->reply.retry_after = retry_after;
        return 0;
    }
    char sha[ROUSE_SHA256_HEX_LEN + 1] = "";
    if (key) {
        uint8_t d[ROUSE_SHA256_LEN];
        rouse_sha256_digest(req->body.data, req->body.len, d);
        rouse_sha256_hex(d, sha);
    }
    job_new j = {.function = req->r.name,
                 .version = version,
                 .body = req->body.data,
                 .body_len = req->body.len,
                 .json_len = req->json_len,
                 .idem_key = key,
                 .body_sha = sha,
                 .callback = cb,
                 .now_ms = rouse_wall_ms(),
                 .idem_window_ms = IDEM_WINDOW_MS};
    rc = jobq_enqueue(s->jobq, &j, enqueue_done, req, &req->jobq_ticket);
    if (rc < 0) {
        req->jobq_ticket = 0;
        async_unadmit(s->ad, req->r.name, 1);
        http_reply_error(req, rc == ROUSE_ENOMEM ? 500 : 503, "%s",
                         rc == ROUSE_ENOMEM ? "out of memory" : "server is shutting down");
        return 0;
    }
    return 1;
}

/* --- jobs ---------------------------------------------------------------------------- */

/* A job read for a request: req->job_next follows with the job, owned by
 * the caller's tenant (another tenant's job is no job: 404). */
static void job_read_done(void *user, int rc, const rouse_errbuf *eb, const job_info *j,
                          bool later)
{
    http_req *req = user;
    req->jobq_ticket = 0;
    int susp = 0;
    if (rc < 0)
        http_reply_error(req, status_of(req, rc), "%s", eb->msg);
    else if (!auth_owns_fn(req, j->function))
        http_reply_error(req, 404, "no job %" PRId64, j->id);
    else
        susp = req->job_next(req, j);
    if (!later)
        req->job_inline_rc = susp;
    else if (!susp)
        http_req_resume(req);
}

/* Reads job id (with its result when with_result), then next: 0 (the
 * reply is set) or 1 (suspended until a completion resumes it). */
static int job_read_id(http_req *req, int64_t id, bool with_result,
                       int (*next)(http_req *req, const job_info *j))
{
    req->job_next = next;
    req->job_inline_rc = -1;
    int rc = jobq_get_async(req->srv->jobq, id, with_result, job_read_done, req,
                            &req->jobq_ticket);
    if (rc < 0) {
        req->jobq_ticket = 0;
        http_reply_error(req, rc == ROUSE_ENOMEM ? 500 : 503, "%s",
                         rc == ROUSE_ENOMEM ? "out of memory" : "server is shutting down");
        return 0;
    }
    return req->job_inline_rc >= 0 ? req->job_inline_rc : 1;
}

/* The job the path names (see job_read_id). */
static int job_read(http_req *req, bool with_result, int (*next)(http_req *req, const job_info *j))
{
    int64_t id;
    if (!parse_ref(req, "job", &id)) return 0;
    return job_read_id(req, id, with_result, next);
}

static int job_get_next(http_req *req, const job_info *j)
{
    rouse_buf b;
    rouse_buf_init(&b);
    int rc = job_json_write(j, &b);
    reply_buf(req, 200, &b, rc);
    rouse_buf_fini(&b);
    return 0;
}

static int job_get(http_req *req)
{
    return job_read(req, true, job_get_next);
}

/* Sends a blob's file as the reply. */
static int reply_blob(http_req *req, const char *digest, const char *type)
{
    char path[4096 + 128];
    uint64_t size;
    if (blob_path(req->srv->blobs, digest, path, sizeof(path)) < 0 ||
        blob_stat(req->srv->blobs, digest, &size) < 0) {
        http_reply_error(req, 404, "blob %s is gone", digest);
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        http_reply_error(req, 404, "blob %s is gone", digest);
        return 0;
    }
    rouse_buf empty;
    rouse_buf_init(&empty);
    http_reply_json(req, 200, &empty);
    snprintf(req->reply.content_type, sizeof(req->reply.content_type), "%.47s", type);
    req->reply.fd = fd;
    req->reply.fd_len = size;
    return 0;
}

static int job_result_next(http_req *req, const job_info *j)
{
    const char *type = j->result_type[0] ? j->result_type : "application/json";
    if (j->state != JOB_SUCCEEDED) {
        http_reply_error(req, 404, "job %" PRId64 " has no result: it is %s", j->id,
                         job_state_name(j->state));
    } else if (j->result_digest[0]) {
        reply_blob(req, j->result_digest, type);
    } else {
        rouse_buf b;
        rouse_buf_init(&b);
        if (j->result_len) rouse_buf_append(&b, j->result, j->result_len);
        http_reply_json(req, 200, &b);
        rouse_buf_fini(&b);
        snprintf(req->reply.content_type, sizeof(req->reply.content_type), "%.47s", type);
        req->reply.json_len = j->result_json_len;
    }
    req->reply.version = j->version;
    return 0;
}

static int job_result(http_req *req)
{
    return job_read(req, true, job_result_next);
}

/* The job as a change left it: the reply, and the dispatcher told. */
static int changed_next(http_req *req, const job_info *j)
{
    if (req->r.id == R_JOB_DELETE)
        async_cancelled(req->srv->ad, j->function, j->batch, j->expires_ms);
    else
        async_queued(req->srv->ad, j->function, 1);
    rouse_buf b;
    rouse_buf_init(&b);
    reply_buf(req, 200, &b, job_json_write(j, &b));
    rouse_buf_fini(&b);
    return 0;
}

static void state_changed(void *user, int rc, const rouse_errbuf *eb, const jobq_reply *r)
{
    http_req *req = user;
    req->jobq_ticket = 0;
    if (rc < 0) {
        http_reply_error(req, status_of(req, rc), "%s", eb->msg);
        http_req_resume(req);
        return;
    }
    /* Read again (at once, or its completion resumes the request). */
    if (job_read_id(req, r->id, false, changed_next) == 0) http_req_resume(req);
}

static int job_change_next(http_req *req, const job_info *j)
{
    server *s = req->srv;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc;
    int64_t now = rouse_wall_ms();
    if (req->r.id == R_JOB_DELETE) {
        fn_config cfg;
        int64_t ttl = 86400000;
        if (async_config(s->ad, j->function, j->version, &cfg, &eb) == 0)
            ttl = cfg.async.result_ttl_ms;
        /* A job leased but still waiting for capacity has not run: taken
         * back, it is cancelled like a queued one. */
        bool unleased = j->state == JOB_RUNNING && async_unlease(s->ad, j->function, j->id);
        rc = jobq_cancel(s->jobq, j->id, now, now + ttl, unleased, state_changed, req,
                         &req->jobq_ticket);
    } else {
        rc = jobq_retry(s->jobq, j->id, now, state_changed, req, &req->jobq_ticket);
    }
    if (rc < 0) {
        req->jobq_ticket = 0;
        http_reply_error(req, 503, "server is shutting down");
        return 0;
    }
    return 1;
}

static int job_change(http_req *req)
{
    return job_read(req, false, job_change_next);
}

/* A page of jobs: the caller's (another tenant's are skipped, their ids
 * still move the cursor), and "next" when the page was full. */
static void list_done(void *user, int rc, const rouse_errbuf *eb, const job_info *jobs, int n,
                      bool later)
{
    http_req *req = user;
    req->jobq_ticket = 0;
    if (rc < 0) {
        http_reply_error(req, status_of(req, rc), "%s", eb->msg);
    } else {
        rouse_buf b;
        rouse_buf_init(&b);
        int e = rouse_buf_append_str(&b, "{\"jobs\":[");
        int shown = 0;
        for (int i = 0; i < n && e == 0; i++) {
            if (!auth_owns_fn(req, jobs[i].function)) continue;
            if (shown++ > 0) e = rouse_buf_append_str(&b, ",");
            if (e == 0) e = job_json_write(&jobs[i], &b);
        }
        if (e == 0) e = rouse_buf_append_str(&b, "]");
        if (e == 0 && n > 0 && n == req->job_inline_rc)
            e = rouse_buf_appendf(&b, ",\"next\":\"%" PRId64 "\"", jobs[n - 1].id);
        if (e == 0) e = rouse_buf_append_str(&b, "}");
        reply_buf(req, 200, &b, e);
        rouse_buf_fini(&b);
    }
    if (later) http_req_resume(req);
}

static int job_list(http_req *req)
{
    const char *fn = http_req_query(req, "function");
    const char *status = http_req_query(req, "status");
    const char *after = http_req_query(req, "after");
    const char *limit = http_req_query(req, "limit");
    char fn_key[STORE_NAME_MAX + 1];
    if (fn && auth_fn_key(req, fn, fn_key, sizeof(fn_key)) < 0) {
        http_reply_error(req, 400, "function: '%s' is not a function name", fn);
        return 0;
    }
    if (fn) fn = fn_key;
    int state = -1;
    if (status && (state = job_state_parse(status)) < 0) {
        http_reply_error(req, 400,
                         "status: must be queued, running, succeeded, failed or cancelled");
        return 0;
    }
    int64_t after_id = 0, n = LIST_DEFAULT;
    if (after && !store_version_parse(after, &after_id)) {
        http_reply_error(req, 400, "after: must be a job id");
        return 0;
    }
    if (limit && (!store_version_parse(limit, &n) || n < 1 || n > LIST_MAX)) {
        http_reply_error(req, 400, "limit: must be an integer from 1 to %d", LIST_MAX);
        return 0;
    }
    /* The page's size, for list_done's "next" (a list read holds no
     * continuation of its own). */
    req->job_inline_rc = (int)n;
    int rc = jobq_list_async(req->srv->jobq, fn, state, after_id, (int)n, list_done, req,
                             &req->jobq_ticket);
    if (rc < 0) {
        req->jobq_ticket = 0;
        http_reply_error(req, rc == ROUSE_ENOMEM ? 500 : 503, "%s",
                         rc == ROUSE_ENOMEM ? "out of memory" : "server is shutting down");
        return 0;
    }
    return req->jobq_ticket ? 1 : 0;
}

/* --- batches ----------------------------------------------------------------------------- */

static void batch_created(void *user, int rc, const rouse_errbuf *eb, const jobq_reply *r)
{
    http_req *req = user;
    server *s = req->srv;
    req->jobq_ticket = 0;
    if (rc < 0) {
        http_reply_error(req, http_status_of(rc), "%s", eb->msg);
    } else {
        /* Admitted now that the count is known (the write bounded it by
         * the room the queue had). */
        async_queued(s->ad, req->r.name, r->n_items);
        if (!r->done) async_batch_creating(s->ad, req->r.name, r->id);
        rouse_buf b;
        rouse_buf_init(&b);
        int e = rouse_buf_appendf(&b, "{\"id\":\"%" PRId64 "\",\"total\":%" PRId64 "}", r->id,
                                  r->n_items);
        reply_buf(req, 202, &b, e);
        rouse_buf_fini(&b);
        snprintf(req->reply.location, sizeof(req->reply.location), "/v1/batches/%" PRId64, r->id);
    }
    http_req_resume(req);
}

static int batch_post(http_req *req)
{
    server *s = req->srv;
    if (!jobq_caps_of(s->jobq)->batches) {
        http_reply_error(req, 400, "batch files are not supported by this job queue");
        return 0;
    }
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *root;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int ret = 0;
    if (json_parse(req->body.data ? req->body.data : "", req->body.len, &a, &root, &eb) < 0 ||
        root->type != JSON_OBJECT) {
        http_reply_error(req, 400,
                         "expected {\"function\": NAME, \"input\": \"sha256:<JSONL blob>\"}");
        goto out_arena;
    }
    const char *fn = json_as_string(json_get(root, "function"));
    const char *input = json_as_string(json_get(root, "input"));
    const json_value *ver = json_get(root, "version");
    char fn_key[STORE_NAME_MAX + 1];
    if (!fn || auth_fn_key(req, fn, fn_key, sizeof(fn_key)) < 0) {
        http_reply_error(req, 400, "function: must name a function");
        goto out_arena;
    }
    fn = fn_key;
    if (!input || !blob_digest_valid(input)) {
        http_reply_error(req, 400, "input: must be a blob digest \"sha256:<64 lower-case hex>\"");
        goto out_arena;
    }
    int64_t version;
    int rc;
    if (ver) {
        const char *vs = json_as_string(ver);
        int64_t v;
        if (json_as_int64(ver, &v)) {
            store_version sv;
            memset(&sv, 0, sizeof(sv));
            rc = store_version_get(s->st, fn, v, &sv, &eb);
            free(sv.config_json);
            version = v;
        } else if (vs) {
            rc = store_resolve(s->st, fn, vs, server_random(s), &version, &eb);
        } else {
            rc = rouse_err_set(&eb, ROUSE_EINVAL, "version: a number or an alias");
        }
    } else {
        rc = store_resolve(s->st, fn, NULL, server_random(s), &version, &eb);
    }
    if (rc < 0) {
        http_reply_error(req, http_status_of(rc), "%s", eb.msg);
        goto out_arena;
    }
    char path[4096 + 128];
    uint64_t size;
    if (blob_stat(s->blobs, input, &size) < 0 || !auth_blob_visible(req, input) ||
        blob_path(s->blobs, input, path, sizeof(path)) < 0) {
        http_reply_error(req, 404, "input: no blob %s (upload it first)", input);
        goto out_arena;
    }
    fn_config cfg;
    if ((rc = async_config(s->ad, fn, version, &cfg, &eb)) < 0) {
        http_reply_error(req, http_status_of(rc), "%s", eb.msg);
        goto out_arena;
    }
    int retry_after = 0;
    /* Room for one job at least, or 429 now. */
    if ((rc = async_admit(s->ad, fn, &cfg, 1, &retry_after, &eb)) < 0) {
        http_reply_error(req, 429, "%s", eb.msg);
        req->reply.retry_after = retry_after;
        goto out_arena;
    }
    async_unadmit(s->ad, fn, 1);
    int64_t room = async_room(s->ad, fn, &cfg);
    /* The function's name, for the completion. */
    snprintf(req->r.name, sizeof(req->r.name), "%s", fn);
    batch_new b = {.function = fn,
                   .version = version,
                   .input_digest = input,
                   .input_path = path,
                   .now_ms = rouse_wall_ms(),
                   .max_line = (int64_t)s->opts.max_body_bytes,
                   .max_items = room,
                   .chunk = ASYNC_BATCH_FIRST_CHUNK};
    rc = jobq_batch_create(s->jobq, &b, batch_created, req, &req->jobq_ticket);
    if (rc < 0) {
        req->jobq_ticket = 0;
        http_reply_error(req, 503, "server is shutting down");
        goto out_arena;
    }
    async_wake(s->ad, fn, version);
    ret = 1;
out_arena:
    rouse_arena_fini(&a);
    return ret;
}

/* A batch read for a request (jobq_batch_fn): its status, or its output
 * or errors (kept by the queue, or a blob of the node's). */
static void batch_read_done(void *user, int rc, const rouse_errbuf *eb, const batch_info *bi,
                            const char *data, size_t len, bool later)
{
    http_req *req = user;
    req->jobq_ticket = 0;
    if (rc < 0) {
        http_reply_error(req, status_of(req, rc), "%s", eb->msg);
    } else if (!auth_owns_fn(req, bi->function)) {
        http_reply_error(req, 404, "no batch %" PRId64, bi->id);
    } else if (req->r.id == R_BATCH_OUTPUT) {
        bool errors = strcmp(req->r.alias, "errors") == 0;
        const char *d = errors ? bi->errors_digest : bi->output_digest;
        if (!d[0]) {
            http_reply_error(req, 404, "batch %" PRId64 " is not finished yet", bi->id);
        } else if (data) {
            rouse_buf b;
            rouse_buf_init(&b);
            int e = len ? rouse_buf_append(&b, data, len) : 0;
            http_reply_built(req, 200, &b, e);
            rouse_buf_fini(&b);
            snprintf(req->reply.content_type, sizeof(req->reply.content_type), "%s",
                     "application/x-ndjson");
        } else {
            reply_blob(req, d, "application/x-ndjson");
        }
    } else {
        rouse_buf b;
        rouse_buf_init(&b);
        reply_buf(req, 200, &b, batch_json_write(bi, &b));
        rouse_buf_fini(&b);
    }
    if (later) http_req_resume(req);
}

static int batch_get(http_req *req)
{
    int64_t id;
    if (!parse_ref(req, "batch", &id)) return 0;
    int part = req->r.id != R_BATCH_OUTPUT ? 0 : strcmp(req->r.alias, "errors") == 0 ? 2 : 1;
    int rc = jobq_batch_get_async(req->srv->jobq, id, part, batch_read_done, req,
                                  &req->jobq_ticket);
    if (rc < 0) {
        req->jobq_ticket = 0;
        http_reply_error(req, rc == ROUSE_ENOMEM ? 500 : 503, "%s",
                         rc == ROUSE_ENOMEM ? "out of memory" : "server is shutting down");
        return 0;
    }
    return req->jobq_ticket ? 1 : 0;
}

int api_jobs_handle(http_req *req)
{
    switch (req->r.id) {
    case R_JOB_LIST:
        return job_list(req);
    case R_JOB_GET:
        return job_get(req);
    case R_JOB_RESULT:
        return job_result(req);
    case R_JOB_DELETE:
    case R_JOB_RETRY:
        return job_change(req);
    case R_BATCH_POST:
        return batch_post(req);
    case R_BATCH_GET:
    case R_BATCH_OUTPUT:
        return batch_get(req);
    default:
        http_reply_error(req, 404, "no such endpoint");
        return 0;
    }
}
