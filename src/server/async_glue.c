/*
 * The asynchronous path wired into serve: the job queue over the registry's
 * writer (jobq.h), the dispatcher over the pool (async_dispatch.h) and the
 * callback thread (callback.h), whose outcomes are recorded on the jobs.
 *
 * Each run of a job on an instance is handed to the invocation sinks
 * (invocation.h) like a synchronous call, so usage metering counts it.
 * When a job with a Callback-Url reaches its final state, its document
 * (job_json.h, the result included) is POSTed to the URL; the delivery's
 * outcome is recorded on the job. Deliveries a stopped serve did not
 * finish are sent again at the next start (at-least-once).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "common/log.h"
#include "server/async_dispatch.h"
#include "server/callback.h"
#include "server/invocation.h"
#include "server/job_json.h"
#include "server/jobq.h"
#include "server/jobq_cluster.h"
#include "server/server_int.h"

#define MOD "async"

/* Job j (read for its callback) goes to its callback. */
static void send_read(void *user, int rc, const rouse_errbuf *eb, const job_info *j, bool later)
{
    (void)later;
    server *s = user;
    if (rc < 0) {
        LOG_WARN(MOD, "cannot read a job for its callback: %s", eb->msg);
        return;
    }
    rouse_buf b;
    rouse_buf_init(&b);
    if (j->callback[0] && job_json_write(j, &b) == 0) {
        size_t len;
        char *body = rouse_buf_detach(&b, &len);
        if (body) callbacks_send(s->cb, j->id, j->callback, body, len);
    }
    rouse_buf_fini(&b);
}

/* Sends job id's document to its callback (read first, at once or later:
 * the queue and the callback thread outlive the read). */
static void deliver(server *s, int64_t id)
{
    if (jobq_get_async(s->jobq, id, true, send_read, s, NULL) < 0)
        LOG_WARN(MOD, "job %lld: cannot read it for its callback", (long long)id);
}

/* The queue: the embedded one over the registry's writer, or with --state
 * and --bus the one of several nodes, whose own writer the loop watches. */
static int queue_start(server *s, rouse_errbuf *eb)
{
    if (!s->opts.state_url || !s->opts.bus_url)
        return jobq_create(s->writer.w, s->st, s->data_dir, &s->jobq, eb);
    /* A test knob: a short ack wait, so that a killed node's jobs come
     * back within seconds. */
    const char *aw = getenv("ROUSE_JOBS_ACK_WAIT_MS");
    jobq_cluster_opts co = {.state_url = s->opts.state_url,
                            .bus_url = s->opts.bus_url,
                            .node_name = s->opts.node_name,
                            .ack_wait_ms = aw ? atoll(aw) : 0};
    int rc = jobq_cluster_create(&co, &s->jobq, eb);
    if (rc < 0) return rc;
    s->jobq_w.w = jobq_cluster_writer(s->jobq);
    s->jobq_w.tag.kind = EP_WRITER;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->jobq_w.tag};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, store_writer_fd(s->jobq_w.w), &ev) < 0) {
        jobq_destroy(s->jobq);
        s->jobq = NULL;
        return rouse_err_set(eb, ROUSE_EIO, "cannot watch the job queue's thread");
    }
    return 0;
}

static void on_final(void *user, int64_t id)
{
    deliver(user, id);
}

/* Each run of a job is an invocation like a synchronous call (metering
 * and whatever else watches calls); its request id is the job's id. */
static void on_run(void *user, const async_run *run)
{
    server *s = user;
    const pool_result *res = run->res;
    invocation inv;
    memset(&inv, 0, sizeof(inv));
    snprintf(inv.request_id, sizeof(inv.request_id), "%016" PRIx64, (uint64_t)run->job_id);
    snprintf(inv.function, sizeof(inv.function), "%s", run->function);
    /* A job runs for the tenant whose key its function is (auth.h). */
    if (store_fn_key_valid(run->function)) {
        const char *name;
        store_fn_key_split(run->function, inv.tenant, sizeof(inv.tenant), &name);
    }
    inv.version = res->version > 0 ? res->version : run->version;
    inv.start = inv_start_parse(res->start);
    inv.queue_us = res->queue_ns / 1000;
    inv.start_us = res->start_ns / 1000;
    inv.run_us = res->run_ns > 0 && res->run_ns < 500 ? 1 : res->run_ns / 1000;
    inv.total_us = run->total_ns / 1000;
    inv.billed_ms = inv_billed_ms(inv.run_us);
    inv.memory_mb = res->memory_mb;
    inv.bytes_in = run->bytes_in;
    inv.bytes_out = run->bytes_out;
    inv.status = res->status;
    inv.error = inv_error_of(res->status);
    inv.ts_us = run->begin_wall_us;
    invocation_emit(&s->sinks, &inv);
}

static int resend(void *user, int64_t id)
{
    deliver(user, id);
    return 0;
}

int async_start(server *s, rouse_errbuf *eb)
{
    int rc = queue_start(s, eb);
    if (rc < 0) return rc;
    if ((rc = callbacks_create(&s->cb, eb)) < 0) goto out_jobq;
    s->tag_cb.kind = EP_CALLBACK;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->tag_cb};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, callbacks_fd(s->cb), &ev) < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "cannot watch the callback thread");
        goto out_cb;
    }
    async_opts o = {.pool = s->pool,
                    .q = s->jobq,
                    .st = s->st,
                    .on_final = on_final,
                    .final_user = s,
                    .on_run = on_run,
                    .run_user = s};
    if ((rc = async_create(&o, &s->ad, eb)) < 0) goto out_cb;
    rouse_errbuf e2;
    if (jobq_pending_callbacks(s->jobq, resend, s, &e2) < 0)
        LOG_WARN(MOD, "callbacks not yet delivered: %s", e2.msg);
    return 0;

out_cb:
    callbacks_destroy(s->cb);
    s->cb = NULL;
out_jobq:
    jobq_destroy(s->jobq);
    s->jobq = NULL;
    return rc;
}

int async_loop_tick(server *s)
{
    return async_tick(s->ad);
}

static void recorded(void *user, int rc, const rouse_errbuf *eb, const jobq_reply *r)
{
    (void)user;
    (void)r;
    if (rc < 0) LOG_WARN(MOD, "recording a callback delivery: %s", eb->msg);
}

void async_on_callbacks(server *s)
{
    callback_outcome out[32];
    int n;
    while ((n = callbacks_take(s->cb, out, 32)) > 0) {
        for (int i = 0; i < n; i++) {
            if (!out[i].delivered)
                LOG_WARN(MOD, "job %lld: callback not delivered after %d attempts: %s",
                         (long long)out[i].id, out[i].attempts, out[i].error);
            jobq_callback_status(s->jobq, out[i].id,
                                 out[i].delivered ? JOB_CB_DELIVERED : JOB_CB_FAILED,
                                 out[i].attempts, out[i].error, recorded, NULL);
        }
    }
}

int async_loop_pending(server *s)
{
    return s->ad ? async_pending(s->ad) : 0;
}

void async_begin_stop(server *s)
{
    if (s->ad) async_stopping(s->ad);
}

void async_stop(server *s)
{
    async_destroy(s->ad);
    s->ad = NULL;
    callbacks_destroy(s->cb);
    s->cb = NULL;
    jobq_destroy(s->jobq);
    s->jobq = NULL;
}
