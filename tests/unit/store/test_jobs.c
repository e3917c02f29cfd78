/*
 * The job records (store/jobs.h) on a real SQLite registry: each *_tx call
 * inside a transaction as the writer thread runs it. Covers the state
 * machine's edges (queued -> running -> succeeded | failed | queued again;
 * cancel; re-drive; the reset at start), FIFO leases and due times,
 * idempotency keys and their window, expiry, blob references of results
 * and batches, and a batch file split into jobs with its output written in
 * input order, also when its items are created in chunks (across a close
 * of the registry), and a batch of a registry from before those chunks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/blob.h"
#include "store/jobs.h"
#include "store/store.h"
#include "testdir.h"

typedef struct fixture {
    char dir[256];
    store *st;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    testdir_make(f->dir, sizeof(f->dir));
    rouse_errbuf eb;
    if (store_open(f->dir, &f->st, &eb) < 0) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    store_close(f->st);
    testdir_remove(f->dir);
    free(f);
    return 0;
}

static void tx_begin(store *st)
{
    rouse_errbuf eb;
    assert_int_equal(store_tx_begin(st, &eb), 0);
}

static void tx_commit(store *st)
{
    rouse_errbuf eb;
    assert_int_equal(store_tx_commit(st, &eb), 0);
}

static int64_t enqueue(store *st, const char *fn, const char *body, const char *key, int64_t now,
                       int *rc_out, bool *existed)
{
    job_new j = {.function = fn,
                 .version = 1,
                 .body = body,
                 .body_len = strlen(body),
                 .json_len = -1,
                 .idem_key = key,
                 .body_sha = body, /* any text that differs with the body */
                 .now_ms = now,
                 .idem_window_ms = 1000};
    int64_t id = 0;
    bool ex = false;
    rouse_errbuf eb;
    tx_begin(st);
    int rc = jobs_enqueue_tx(st, &j, &id, &ex, &eb);
    tx_commit(st);
    if (rc_out) *rc_out = rc;
    if (existed) *existed = ex;
    if (!rc_out) assert_int_equal(rc, 0);
    return id;
}

static int lease(store *st, const char *fn, int64_t now, int max, job_lease *out, int64_t *next)
{
    int n;
    rouse_errbuf eb;
    tx_begin(st);
    assert_int_equal(jobs_lease_tx(st, fn, now, max, out, &n, next, &eb), 0);
    tx_commit(st);
    return n;
}

static int settle(store *st, int64_t id, int state, int64_t now, int64_t run_after, const char *res)
{
    job_settle s = {.id = id,
                    .state = state,
                    .now_ms = now,
                    .run_after_ms = run_after,
                    .expires_ms = now + 100,
                    .status = state == JOB_SUCCEEDED ? 200 : 500,
                    .error = state == JOB_SUCCEEDED ? NULL : "instance crashed",
                    .result = res,
                    .result_len = res ? strlen(res) : 0,
                    .result_json_len = -1};
    rouse_errbuf eb;
    tx_begin(st);
    int rc = jobs_settle_tx(st, &s, &eb);
    tx_commit(st);
    return rc;
}

static int state_of(store *st, int64_t id)
{
    job_info j;
    rouse_errbuf eb;
    int rc = jobs_get(st, id, false, &j, &eb);
    return rc < 0 ? rc : j.state;
}

static void test_lifecycle_fifo(void **state)
{
    fixture *f = *state;
    int64_t a = enqueue(f->st, "fn", "{\"a\":1}", NULL, 1000, NULL, NULL);
    int64_t b = enqueue(f->st, "fn", "{\"b\":2}", NULL, 1001, NULL, NULL);
    int64_t c = enqueue(f->st, "other", "{\"c\":3}", NULL, 1002, NULL, NULL);
    assert_true(a < b);
    job_lease l[4];
    int64_t next;
    /* Oldest first, one function only. */
    assert_int_equal(lease(f->st, "fn", 2000, 1, l, &next), 1);
    assert_int_equal(l[0].id, a);
    assert_int_equal(l[0].attempts, 1);
    assert_int_equal(state_of(f->st, a), JOB_RUNNING);
    /* Its body is in the database, not a batch's line. */
    assert_int_equal(l[0].body_off, -1);
    {
        job_body_reader r;
        jobs_body_reader_init(&r, f->dir);
        char *body;
        size_t len;
        int64_t json_len;
        rouse_errbuf beb;
        tx_begin(f->st);
        assert_int_equal(jobs_lease_body_tx(f->st, &r, &l[0], &body, &len, &json_len, &beb), 0);
        tx_commit(f->st);
        jobs_body_reader_fini(&r);
        assert_int_equal(len, strlen("{\"a\":1}"));
        assert_memory_equal(body, "{\"a\":1}", len);
        free(body);
    }
    /* A retry is due later; b comes first. */
    assert_int_equal(settle(f->st, a, JOB_QUEUED, 2100, 5000, NULL), 0);
    assert_int_equal(lease(f->st, "fn", 2200, 4, l, &next), 1);
    assert_int_equal(l[0].id, b);
    assert_int_equal(next, 5000);
    assert_int_equal(settle(f->st, b, JOB_SUCCEEDED, 2300, 0, "{\"out\":2}"), 0);
    /* A second end of the same run changes nothing. */
    assert_int_equal(settle(f->st, b, JOB_FAILED, 2301, 0, NULL), ROUSE_ESTATE);
    assert_int_equal(lease(f->st, "fn", 4999, 4, l, &next), 0);
    assert_int_equal(lease(f->st, "fn", 5000, 4, l, &next), 1);
    assert_int_equal(l[0].id, a);
    assert_int_equal(l[0].attempts, 2);
    assert_int_equal(settle(f->st, a, JOB_FAILED, 5100, 0, NULL), 0);
    job_info j;
    rouse_errbuf eb;
    assert_int_equal(jobs_get(f->st, b, true, &j, &eb), 0);
    assert_int_equal(j.state, JOB_SUCCEEDED);
    assert_string_equal(j.result, "{\"out\":2}");
    assert_int_equal(j.expires_ms, 2400);
    free(j.result);
    assert_int_equal(jobs_get(f->st, a, false, &j, &eb), 0);
    assert_string_equal(j.last_error, "instance crashed");
    assert_int_equal(j.attempts, 2);
    /* Re-drive: queued, attempts from 0, the error gone. */
    char fn[STORE_NAME_MAX + 1];
    int st;
    tx_begin(f->st);
    assert_int_equal(jobs_retry_tx(f->st, a, 6000, fn, &st, &eb), 0);
    assert_int_equal(jobs_retry_tx(f->st, b, 6000, fn, &st, &eb), ROUSE_ESTATE);
    tx_commit(f->st);
    assert_string_equal(fn, "fn");
    assert_int_equal(jobs_get(f->st, a, false, &j, &eb), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.attempts, 0);
    assert_string_equal(j.last_error, "");
    /* Cancel: queued only, or a lease given back. */
    tx_begin(f->st);
    assert_int_equal(jobs_cancel_tx(f->st, c, 6000, 7000, false, &st, &eb), 0);
    assert_int_equal(jobs_cancel_tx(f->st, b, 6000, 7000, false, &st, &eb), ROUSE_ESTATE);
    assert_int_equal(st, JOB_SUCCEEDED);
    tx_commit(f->st);
    assert_int_equal(state_of(f->st, c), JOB_CANCELLED);
    /* The body stays readable. */
    char *body;
    size_t len;
    int64_t json_len;
    assert_int_equal(jobs_body_get(f->st, f->dir, a, &body, &len, &json_len, &eb), 0);
    assert_int_equal(len, strlen("{\"a\":1}"));
    assert_memory_equal(body, "{\"a\":1}", len);
    free(body);
}

static void test_reset_and_expiry(void **state)
{
    fixture *f = *state;
    int64_t a = enqueue(f->st, "fn", "{}", NULL, 1000, NULL, NULL);
    int64_t b = enqueue(f->st, "fn", "{}", NULL, 1000, NULL, NULL);
    job_lease l[2];
    int64_t next, n;
    rouse_errbuf eb;
    assert_int_equal(lease(f->st, "fn", 1000, 2, l, &next), 2);
    assert_int_equal(settle(f->st, b, JOB_SUCCEEDED, 1100, 0, "{}"), 0);
    /* A serve that ended left a running: queued again, the attempt uncounted. */
    tx_begin(f->st);
    assert_int_equal(jobs_reset_running_tx(f->st, &n, &eb), 0);
    tx_commit(f->st);
    assert_int_equal(n, 1);
    job_info j;
    assert_int_equal(jobs_get(f->st, a, false, &j, &eb), 0);
    assert_int_equal(j.state, JOB_QUEUED);
    assert_int_equal(j.attempts, 0);
    assert_int_equal(jobs_next_expiry(f->st, &next, &eb), 0);
    assert_int_equal(next, 1200);
    /* Expiry takes finished jobs only. */
    tx_begin(f->st);
    assert_int_equal(jobs_expire_tx(f->st, 1199, &n, &eb), 0);
    assert_int_equal(n, 0);
    assert_int_equal(jobs_expire_tx(f->st, 1200, &n, &eb), 0);
    assert_int_equal(n, 1);
    tx_commit(f->st);
    assert_int_equal(state_of(f->st, b), ROUSE_ENOTFOUND);
    assert_int_equal(state_of(f->st, a), JOB_QUEUED);
    assert_int_equal(jobs_body_get(f->st, f->dir, b, &(char *){NULL}, &(size_t){0}, &next, &eb),
                     ROUSE_ENOTFOUND);
}

static void test_idempotency_window(void **state)
{
    fixture *f = *state;
    bool existed;
    int rc;
    int64_t a = enqueue(f->st, "fn", "{\"x\":1}", "k", 1000, NULL, &existed);
    assert_false(existed);
    assert_int_equal(enqueue(f->st, "fn", "{\"x\":1}", "k", 1500, NULL, &existed), a);
    assert_true(existed);
    enqueue(f->st, "fn", "{\"x\":2}", "k", 1500, &rc, &existed);
    assert_int_equal(rc, ROUSE_ESTATE);
    /* The same key on another function is another job. */
    int64_t o = enqueue(f->st, "other", "{\"x\":2}", "k", 1500, NULL, &existed);
    assert_false(existed);
    assert_true(o != a);
    /* Past the window the key is free again. */
    int64_t b = enqueue(f->st, "fn", "{\"x\":2}", "k", 2000, NULL, &existed);
    assert_false(existed);
    assert_true(b != a);
}

static void test_batch_and_blob_refs(void **state)
{
    fixture *f = *state;
    char path[400];
    snprintf(path, sizeof(path), "%s/in.jsonl", f->dir);
    FILE *in = fopen(path, "w");
    fputs("{\"i\":0}\n\n{\"i\":1}\r\n  \n{\"i\":2}", in);
    fclose(in);
    const char *digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    batch_new b = {.function = "fn",
                   .version = 1,
                   .input_digest = digest,
                   .input_path = path,
                   .now_ms = 1000,
                   .max_line = 100,
                   .max_items = 10};
    int64_t id, n, refs;
    rouse_errbuf eb;
    tx_begin(f->st);
    assert_int_equal(jobs_batch_create_tx(f->st, &b, &id, &n, &eb), 0);
    assert_int_equal(store_blob_refs_tx(f->st, digest, &refs, &eb), 0);
    tx_commit(f->st);
    assert_int_equal(n, 3); /* blank lines carry nothing */
    assert_int_equal(refs, 1);
    /* Too many lines for the room left: refused whole. */
    b.max_items = 2;
    int64_t id2;
    tx_begin(f->st);
    assert_int_equal(jobs_batch_create_tx(f->st, &b, &id2, &n, &eb), ROUSE_EBUSY);
    store_tx_rollback(f->st);
    job_lease l[4];
    int64_t next;
    assert_int_equal(lease(f->st, "fn", 2000, 4, l, &next), 3);
    assert_int_equal(l[0].batch, id);
    bool done;
    tx_begin(f->st);
    assert_int_equal(jobs_batch_finish_tx(f->st, id, f->dir, 2000, 9000, &done, &eb), 0);
    tx_commit(f->st);
    assert_false(done); /* items still running */
    assert_int_equal(settle(f->st, l[2].id, JOB_SUCCEEDED, 2100, 0, "{\"r\":2}\n"), 0);
    assert_int_equal(settle(f->st, l[0].id, JOB_SUCCEEDED, 2100, 0, "{\"r\":0}"), 0);
    assert_int_equal(settle(f->st, l[1].id, JOB_FAILED, 2100, 0, NULL), 0);
    tx_begin(f->st);
    assert_int_equal(jobs_batch_finish_tx(f->st, id, f->dir, 2200, 9000, &done, &eb), 0);
    tx_commit(f->st);
    assert_true(done);
    batch_info bi;
    assert_int_equal(jobs_batch_get(f->st, id, &bi, &eb), 0);
    assert_int_equal(bi.counts[JOB_SUCCEEDED], 2);
    assert_int_equal(bi.counts[JOB_FAILED], 1);
    assert_true(bi.output_digest[0] != '\0');
    /* The output, in input order, with null for the failed line. */
    blobstore *bs;
    assert_int_equal(blob_open(f->dir, &bs, &eb), 0);
    char out_path[600];
    assert_int_equal(blob_path(bs, bi.output_digest, out_path, sizeof(out_path)), 0);
    FILE *o = fopen(out_path, "r");
    char text[256] = "";
    size_t got = fread(text, 1, sizeof(text) - 1, o);
    text[got] = '\0';
    fclose(o);
    assert_string_equal(text, "{\"r\":0}\nnull\n{\"r\":2}\n");
    tx_begin(f->st);
    assert_int_equal(store_blob_refs_tx(f->st, bi.output_digest, &refs, &eb), 0);
    assert_int_equal(refs, 1);
    assert_int_equal(store_blob_refs_tx(f->st, bi.errors_digest, &refs, &eb), 0);
    assert_int_equal(refs, 1);
    /* Once expired, nothing refers to them any more. */
    assert_int_equal(jobs_expire_tx(f->st, 9000, &n, &eb), 0);
    assert_int_equal(n, 3);
    assert_int_equal(store_blob_refs_tx(f->st, bi.output_digest, &refs, &eb), 0);
    assert_int_equal(refs, 0);
    tx_commit(f->st);
    blob_close(bs);
}

/* Counts of a batch by state, as GET /v1/batches/{id} reads them, and the
 * items still to run, as a settle write reads them. */
static void counts_of(store *st, int64_t id, int64_t want[JOB_STATE_COUNT])
{
    batch_info bi;
    rouse_errbuf eb;
    assert_int_equal(jobs_batch_get(st, id, &bi, &eb), 0);
    for (int k = 0; k < JOB_STATE_COUNT; k++)
        assert_int_equal(bi.counts[k], want[k]);
    int64_t left = -1;
    tx_begin(st);
    assert_int_equal(jobs_batch_pending_tx(st, id, &left, &eb), 0);
    tx_commit(st);
    assert_int_equal(left, want[JOB_QUEUED] + want[JOB_RUNNING]);
}

/* A batch whose input is a real blob: each item's body is read in place
 * from its line (leading blanks kept, line ends dropped), and the counts by
 * state follow every move: lease, retry, settle, cancel, reset, expiry. */
static void test_batch_bodies_and_counts(void **state)
{
    fixture *f = *state;
    const char *text = "{\"i\":0}\n\n  {\"i\":1}\r\n{\"i\":2}\n{\"i\":3}";
    rouse_errbuf eb;
    blobstore *bs;
    assert_int_equal(blob_open(f->dir, &bs, &eb), 0);
    blob_writer *w;
    char digest[BLOB_DIGEST_LEN + 1], path[600];
    assert_int_equal(blob_write_begin(bs, UINT64_MAX, &w, &eb), 0);
    assert_int_equal(blob_write(w, text, strlen(text), &eb), 0);
    assert_int_equal(blob_write_commit(w, digest, NULL, &eb), 0);
    assert_int_equal(blob_path(bs, digest, path, sizeof(path)), 0);
    blob_close(bs);
    batch_new b = {.function = "fn",
                   .version = 1,
                   .input_digest = digest,
                   .input_path = path,
                   .now_ms = 1000,
                   .max_line = 100,
                   .max_items = 10};
    int64_t id, n;
    tx_begin(f->st);
    assert_int_equal(jobs_batch_create_tx(f->st, &b, &id, &n, &eb), 0);
    tx_commit(f->st);
    assert_int_equal(n, 4);
    counts_of(f->st, id, (int64_t[JOB_STATE_COUNT]){4, 0, 0, 0, 0});

    job_lease l[4];
    int64_t next;
    assert_int_equal(lease(f->st, "fn", 2000, 3, l, &next), 3);
    counts_of(f->st, id, (int64_t[JOB_STATE_COUNT]){1, 3, 0, 0, 0});
    /* The bodies, through the lease's reader and through the plain read. */
    static const char *const want[] = {"{\"i\":0}", "  {\"i\":1}", "{\"i\":2}"};
    job_body_reader r;
    jobs_body_reader_init(&r, f->dir);
    for (int i = 0; i < 3; i++) {
        char *body;
        size_t len;
        int64_t json_len = 0;
        tx_begin(f->st);
        int rc = jobs_body_get_tx(f->st, &r, l[i].id, &body, &len, &json_len, &eb);
        tx_commit(f->st);
        assert_int_equal(rc, 0);
        assert_int_equal(len, strlen(want[i]));
        assert_memory_equal(body, want[i], len);
        assert_int_equal(json_len, -1);
        free(body);
        /* Where the lease says the line is, without a query. */
        assert_int_equal(l[i].body_len, (int64_t)strlen(want[i]));
        json_len = 0;
        tx_begin(f->st);
        rc = jobs_lease_body_tx(f->st, &r, &l[i], &body, &len, &json_len, &eb);
        tx_commit(f->st);
        assert_int_equal(rc, 0);
        assert_int_equal(len, strlen(want[i]));
        assert_memory_equal(body, want[i], len);
        assert_int_equal(json_len, -1);
        free(body);
    }
    jobs_body_reader_fini(&r);
    char *body;
    size_t len;
    int64_t json_len;
    assert_int_equal(jobs_body_get(f->st, f->dir, l[1].id, &body, &len, &json_len, &eb), 0);
    assert_int_equal(len, strlen(want[1]));
    free(body);

    assert_int_equal(settle(f->st, l[0].id, JOB_SUCCEEDED, 2100, 0, "{}"), 0);
    assert_int_equal(settle(f->st, l[1].id, JOB_QUEUED, 2100, 2200, NULL), 0);
    counts_of(f->st, id, (int64_t[JOB_STATE_COUNT]){2, 1, 1, 0, 0});
    int st;
    tx_begin(f->st);
    assert_int_equal(jobs_cancel_tx(f->st, l[1].id, 2150, 9000, false, &st, &eb), 0);
    tx_commit(f->st);
    counts_of(f->st, id, (int64_t[JOB_STATE_COUNT]){1, 1, 1, 0, 1});
    tx_begin(f->st);
    assert_int_equal(jobs_reset_running_tx(f->st, &n, &eb), 0);
    tx_commit(f->st);
    counts_of(f->st, id, (int64_t[JOB_STATE_COUNT]){2, 0, 1, 0, 1});
    assert_int_equal(lease(f->st, "fn", 3000, 4, l, &next), 2);
    assert_int_equal(settle(f->st, l[0].id, JOB_FAILED, 3100, 0, NULL), 0);
    assert_int_equal(settle(f->st, l[1].id, JOB_SUCCEEDED, 3100, 0, "{}"), 0);
    counts_of(f->st, id, (int64_t[JOB_STATE_COUNT]){0, 0, 2, 1, 1});
    bool done;
    tx_begin(f->st);
    assert_int_equal(jobs_batch_finish_tx(f->st, id, f->dir, 3200, 9000, &done, &eb), 0);
    tx_commit(f->st);
    assert_true(done);
    /* Expired: the items and the batch go, and its counts with them. */
    tx_begin(f->st);
    assert_int_equal(jobs_expire_tx(f->st, 20000, &n, &eb), 0);
    tx_commit(f->st);
    batch_info bi;
    assert_int_equal(jobs_batch_get(f->st, id, &bi, &eb), ROUSE_ENOTFOUND);
    assert_int_equal(jobs_body_get(f->st, f->dir, l[1].id, &body, &len, &json_len, &eb),
                     ROUSE_ENOTFOUND);
}

/* A batch's input as a blob; creates the batch (its id, and n items), its
 * first `chunk` items (0: all). */
static int64_t batch_chunked(fixture *f, const char *text, int64_t now, int64_t chunk, int64_t *n)
{
    rouse_errbuf eb;
    blobstore *bs;
    assert_int_equal(blob_open(f->dir, &bs, &eb), 0);
    blob_writer *w;
    char digest[BLOB_DIGEST_LEN + 1], path[600];
    assert_int_equal(blob_write_begin(bs, UINT64_MAX, &w, &eb), 0);
    assert_int_equal(blob_write(w, text, strlen(text), &eb), 0);
    assert_int_equal(blob_write_commit(w, digest, NULL, &eb), 0);
    assert_int_equal(blob_path(bs, digest, path, sizeof(path)), 0);
    blob_close(bs);
    batch_new b = {.function = "fn",
                   .version = 1,
                   .input_digest = digest,
                   .input_path = path,
                   .now_ms = now,
                   .max_line = 100,
                   .max_items = 100,
                   .chunk = chunk};
    int64_t id;
    tx_begin(f->st);
    assert_int_equal(jobs_batch_create_tx(f->st, &b, &id, n, &eb), 0);
    tx_commit(f->st);
    return id;
}

static int64_t batch_of(fixture *f, const char *text, int64_t now, int64_t *n)
{
    return batch_chunked(f, text, now, 0, n);
}

/* The bodies of a whole lease at once: the lines of a batch that follow
 * one another come from one read, across blank lines, CRLF ends, leading
 * blanks and a stretch of blank lines too long to read through; a job
 * that is not a batch item, and another batch's lines, in between. */
static void test_lease_bodies_at_once(void **state)
{
    fixture *f = *state;
    char a[8192];
    int k = snprintf(a, sizeof(a), "{\"a\":0}\n{\"a\":1}\r\n\n\n  {\"a\":2}\n");
    memset(a + k, ' ', 5000); /* a blank line wider than what is read through */
    k += 5000;
    snprintf(a + k, sizeof(a) - (size_t)k, "\n{\"a\":3}\n\t{\"a\":4}");
    int64_t n;
    batch_of(f, a, 1000, &n);
    assert_int_equal(n, 5);
    enqueue(f->st, "fn", "{\"solo\":1}", NULL, 1001, NULL, NULL);
    batch_of(f, "{\"b\":0}\n{\"b\":1}\n", 1002, &n);
    assert_int_equal(n, 2);
    static const char *const want[] = {"{\"a\":0}",   "{\"a\":1}",    "  {\"a\":2}", "{\"a\":3}",
                                       "\t{\"a\":4}", "{\"solo\":1}", "{\"b\":0}",   "{\"b\":1}"};
    enum { N = 8 };
    job_lease l[N + 1];
    int64_t next;
    assert_int_equal(lease(f->st, "fn", 2000, N + 1, l, &next), N);
    char *bodies[N] = {NULL};
    size_t lens[N];
    int64_t json_lens[N];
    rouse_errbuf eb;
    job_body_reader r;
    jobs_body_reader_init(&r, f->dir);
    tx_begin(f->st);
    int rc = jobs_lease_bodies_tx(f->st, &r, l, N, bodies, lens, json_lens, &eb);
    tx_commit(f->st);
    jobs_body_reader_fini(&r);
    assert_int_equal(rc, 0);
    for (int i = 0; i < N; i++) {
        assert_non_null(bodies[i]);
        assert_int_equal(lens[i], strlen(want[i]));
        assert_memory_equal(bodies[i], want[i], lens[i]);
        assert_int_equal(json_lens[i], -1);
        free(bodies[i]);
    }
}

/* A batch of more lines than one INSERT takes (items are inserted in
 * statements of many rows, the rest one by one): every line is one item,
 * in input order, ids rising with the index, each body its own line, the
 * whole batch counted queued. Blank lines in the middle of a statement's
 * rows are skipped like any other. */
static void test_batch_many_lines(void **state)
{
    fixture *f = *state;
    enum { N = 75 };
    static char text[N * 24 + 64];
    size_t at = 0;
    for (int i = 0; i < N; i++) {
        at += (size_t)snprintf(text + at, sizeof(text) - at, "{\"i\":%d}\n", i);
        if (i == 40) at += (size_t)snprintf(text + at, sizeof(text) - at, "\n  \n");
    }
    int64_t n;
    int64_t id = batch_of(f, text, 1000, &n);
    assert_int_equal(n, N);
    counts_of(f->st, id, (int64_t[JOB_STATE_COUNT]){N, 0, 0, 0, 0});
    job_lease l[N + 1];
    int64_t next;
    assert_int_equal(lease(f->st, "fn", 2000, N + 1, l, &next), N);
    char *bodies[N] = {NULL};
    size_t lens[N];
    int64_t json_lens[N];
    rouse_errbuf eb;
    job_body_reader r;
    jobs_body_reader_init(&r, f->dir);
    tx_begin(f->st);
    int rc = jobs_lease_bodies_tx(f->st, &r, l, N, bodies, lens, json_lens, &eb);
    tx_commit(f->st);
    jobs_body_reader_fini(&r);
    assert_int_equal(rc, 0);
    for (int i = 0; i < N; i++) {
        char want[24];
        snprintf(want, sizeof(want), "{\"i\":%d}", i);
        assert_int_equal(l[i].batch, id);
        if (i > 0) assert_int_equal(l[i].id, l[i - 1].id + 1);
        job_info j;
        assert_int_equal(jobs_get(f->st, l[i].id, false, &j, &eb), 0);
        assert_int_equal(j.batch, id);
        assert_int_equal(j.batch_index, i);
        assert_non_null(bodies[i]);
        assert_int_equal(lens[i], strlen(want));
        assert_memory_equal(bodies[i], want, lens[i]);
        free(bodies[i]);
    }
    counts_of(f->st, id, (int64_t[JOB_STATE_COUNT]){0, N, 0, 0, 0});
}

/* The ends of several runs in one call: each job's state and its batch's
 * counts move, a job that is no longer running changes nothing and says
 * so alone, and the runs that ended an item learn how many items are left. */
static void test_settle_many(void **state)
{
    fixture *f = *state;
    const char *text = "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n";
    rouse_errbuf eb;
    blobstore *bs;
    assert_int_equal(blob_open(f->dir, &bs, &eb), 0);
    blob_writer *w;
    char digest[BLOB_DIGEST_LEN + 1], path[600];
    assert_int_equal(blob_write_begin(bs, UINT64_MAX, &w, &eb), 0);
    assert_int_equal(blob_write(w, text, strlen(text), &eb), 0);
    assert_int_equal(blob_write_commit(w, digest, NULL, &eb), 0);
    assert_int_equal(blob_path(bs, digest, path, sizeof(path)), 0);
    blob_close(bs);
    batch_new b = {.function = "fn",
                   .version = 1,
                   .input_digest = digest,
                   .input_path = path,
                   .now_ms = 1000,
                   .max_line = 100,
                   .max_items = 10};
    int64_t id, n;
    tx_begin(f->st);
    assert_int_equal(jobs_batch_create_tx(f->st, &b, &id, &n, &eb), 0);
    tx_commit(f->st);
    job_lease l[3];
    int64_t next;
    assert_int_equal(lease(f->st, "fn", 2000, 3, l, &next), 3);

    job_settle x[4] = {
        {.id = l[0].id,
         .state = JOB_SUCCEEDED,
         .now_ms = 2100,
         .expires_ms = 9000,
         .status = 200,
         .result = "{}",
         .result_len = 2},
        {.id = l[1].id, .state = JOB_QUEUED, .now_ms = 2100, .run_after_ms = 2200, .status = 503},
        {.id = 999999, .state = JOB_SUCCEEDED, .now_ms = 2100, .expires_ms = 9000, .status = 200},
        {.id = l[2].id,
         .state = JOB_FAILED,
         .now_ms = 2100,
         .expires_ms = 9000,
         .status = 400,
         .error = "bad tensor"},
    };
    int rcs[4];
    int64_t left[4];
    tx_begin(f->st);
    assert_int_equal(jobs_settle_many_tx(f->st, x, 4, rcs, left, &eb), 0);
    tx_commit(f->st);
    assert_int_equal(rcs[0], 0);
    assert_int_equal(rcs[1], 0);
    assert_int_equal(rcs[2], ROUSE_ESTATE);
    assert_int_equal(rcs[3], 0);
    /* The retried item is queued again: one left for the two that ended. */
    assert_int_equal(left[0], 1);
    assert_int_equal(left[1], -1);
    assert_int_equal(left[2], -1);
    assert_int_equal(left[3], 1);
    counts_of(f->st, id, (int64_t[JOB_STATE_COUNT]){1, 0, 1, 1, 0});
    job_info j;
    assert_int_equal(jobs_get(f->st, l[2].id, false, &j, &eb), 0);
    assert_int_equal(j.state, JOB_FAILED);
    assert_string_equal(j.last_error, "bad tensor");

    assert_int_equal(lease(f->st, "fn", 2300, 3, l, &next), 1);
    job_settle last = {.id = l[0].id,
                       .state = JOB_SUCCEEDED,
                       .now_ms = 2400,
                       .expires_ms = 9000,
                       .status = 200,
                       .result = "{}",
                       .result_len = 2};
    tx_begin(f->st);
    assert_int_equal(jobs_settle_many_tx(f->st, &last, 1, rcs, left, &eb), 0);
    tx_commit(f->st);
    assert_int_equal(rcs[0], 0);
    assert_int_equal(left[0], 0);
    counts_of(f->st, id, (int64_t[JOB_STATE_COUNT]){0, 0, 2, 1, 0});
}

/* A batch input without a request (empty, or blank lines only) and one
 * with a line over the limit are refused, and nothing of them stays. */
static void test_batch_input_refused(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *text;
        int rc;
    } cases[] = {{"", ROUSE_EINVAL},
                 {"\n  \t\r\n\n", ROUSE_EINVAL},
                 {"{\"i\":0}\n{\"i\":1, \"pad\": \"0123456789\"}", ROUSE_ETOOBIG}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rouse_errbuf eb;
        blobstore *bs;
        assert_int_equal(blob_open(f->dir, &bs, &eb), 0);
        blob_writer *w;
        char digest[BLOB_DIGEST_LEN + 1], path[600];
        assert_int_equal(blob_write_begin(bs, UINT64_MAX, &w, &eb), 0);
        assert_int_equal(blob_write(w, cases[i].text, strlen(cases[i].text), &eb), 0);
        assert_int_equal(blob_write_commit(w, digest, NULL, &eb), 0);
        assert_int_equal(blob_path(bs, digest, path, sizeof(path)), 0);
        blob_close(bs);
        batch_new b = {.function = "fn",
                       .version = 1,
                       .input_digest = digest,
                       .input_path = path,
                       .now_ms = 1000,
                       .max_line = 20,
                       .max_items = 10};
        int64_t id, n;
        assert_int_equal(store_tx_begin(f->st, &eb), 0);
        assert_int_equal(jobs_batch_create_tx(f->st, &b, &id, &n, &eb), cases[i].rc);
        store_tx_rollback(f->st);
        job_lease l[2];
        int64_t next;
        assert_int_equal(lease(f->st, "fn", 2000, 2, l, &next), 0);
    }
}

static int count_fn(void *user, const char *function, int64_t n)
{
    if (strcmp(function, "fn") == 0) *(int64_t *)user = n;
    return 0;
}

static int creating_of(void *user, int64_t id, const char *function)
{
    assert_string_equal(function, "fn");
    *(int64_t *)user = id;
    return 0;
}

/* Extends batch id by up to max items: how many it created. */
static int64_t extend(fixture *f, int64_t id, int64_t max, bool *complete)
{
    int64_t made = -1;
    rouse_errbuf eb;
    tx_begin(f->st);
    assert_int_equal(jobs_batch_extend_tx(f->st, id, f->dir, max, &made, complete, &eb), 0);
    tx_commit(f->st);
    return made;
}

/* A batch created in chunks: the first with its acceptance, the rest by
 * extensions, one of them after the registry was closed and opened again
 * (what a serve that died in between leaves). Its items are counted
 * queued from the start, leases stop at the first item not created yet (a
 * job accepted after the batch waits behind all of its items: FIFO), the
 * output waits for the last chunk even when every item created so far is
 * final, and every line becomes exactly one item, in order, ids following
 * the index. */
static void test_batch_in_chunks(void **state)
{
    fixture *f = *state;
    enum { N = 75 };
    static char text[N * 24 + 64];
    size_t at = 0;
    for (int i = 0; i < N; i++) {
        at += (size_t)snprintf(text + at, sizeof(text) - at, "{\"i\":%d}\n", i);
        if (i == 20) at += (size_t)snprintf(text + at, sizeof(text) - at, "\n  \n");
    }
    int64_t n;
    int64_t id = batch_chunked(f, text, 1000, 10, &n);
    assert_int_equal(n, N);
    int64_t solo = enqueue(f->st, "fn", "{\"solo\":1}", NULL, 1001, NULL, NULL);
    rouse_errbuf eb;
    batch_info bi;
    assert_int_equal(jobs_batch_get(f->st, id, &bi, &eb), 0);
    assert_int_equal(bi.n_items, N);
    assert_int_equal(bi.n_created, 10);
    counts_of(f->st, id, (int64_t[JOB_STATE_COUNT]){N, 0, 0, 0, 0});
    int64_t active = 0, creating = 0;
    assert_int_equal(jobs_active_counts(f->st, count_fn, &active, &eb), 0);
    assert_int_equal(active, N + 1); /* the items not created yet too */
    assert_int_equal(jobs_creating_batches(f->st, creating_of, &creating, &eb), 0);
    assert_int_equal(creating, id);

    /* The created items only; the job accepted later is not due yet. */
    job_lease l[N + 2];
    int64_t next;
    assert_int_equal(lease(f->st, "fn", 2000, N + 2, l, &next), 10);
    assert_int_equal(next, -1);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(l[i].batch, id);
        assert_true(l[i].id < solo);
        assert_int_equal(settle(f->st, l[i].id, JOB_SUCCEEDED, 2100, 0, "{}"), 0);
    }
    counts_of(f->st, id, (int64_t[JOB_STATE_COUNT]){N - 10, 0, 10, 0, 0});
    bool done = true, complete = true;
    tx_begin(f->st);
    assert_int_equal(jobs_batch_finish_tx(f->st, id, f->dir, 2200, 9000, &done, &eb), 0);
    tx_commit(f->st);
    assert_false(done);

    assert_int_equal(extend(f, id, 32, &complete), 32);
    assert_false(complete);
    /* Closed and opened again between two chunks. */
    store_close(f->st);
    assert_int_equal(store_open(f->dir, &f->st, &eb), 0);
    assert_int_equal(jobs_batch_get(f->st, id, &bi, &eb), 0);
    assert_int_equal(bi.n_created, 42);
    assert_int_equal(extend(f, id, 1000, &complete), N - 42);
    assert_true(complete);
    assert_int_equal(extend(f, id, 1000, &complete), 0);
    assert_true(complete);
    creating = 0;
    assert_int_equal(jobs_creating_batches(f->st, creating_of, &creating, &eb), 0);
    assert_int_equal(creating, 0);
    tx_begin(f->st);
    assert_int_equal(jobs_batch_extend_tx(f->st, id + 100, f->dir, 10, &n, &complete, &eb),
                     ROUSE_ENOTFOUND);
    tx_commit(f->st);

    /* The rest in order, then the job accepted after the batch. */
    assert_int_equal(lease(f->st, "fn", 3000, N + 2, l, &next), N - 10 + 1);
    for (int i = 0; i < N - 10; i++) {
        job_info j;
        assert_int_equal(jobs_get(f->st, l[i].id, false, &j, &eb), 0);
        assert_int_equal(j.batch, id);
        assert_int_equal(j.batch_index, 10 + i);
        if (i > 0) assert_int_equal(l[i].id, l[i - 1].id + 1);
        char want[24], *body;
        size_t len;
        int64_t json_len;
        snprintf(want, sizeof(want), "{\"i\":%d}", 10 + i);
        assert_int_equal(jobs_body_get(f->st, f->dir, l[i].id, &body, &len, &json_len, &eb), 0);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(body, want, len);
        free(body);
        assert_int_equal(settle(f->st, l[i].id, JOB_SUCCEEDED, 3100, 0, want), 0);
    }
    assert_int_equal(l[N - 10].id, solo);
    tx_begin(f->st);
    assert_int_equal(jobs_batch_finish_tx(f->st, id, f->dir, 3200, 9000, &done, &eb), 0);
    tx_commit(f->st);
    assert_true(done);
    assert_int_equal(jobs_batch_get(f->st, id, &bi, &eb), 0);
    assert_int_equal(bi.counts[JOB_SUCCEEDED], N);
    /* One output line per input request: 10 "{}" then the echoed bodies. */
    blobstore *bs;
    assert_int_equal(blob_open(f->dir, &bs, &eb), 0);
    char out_path[600];
    assert_int_equal(blob_path(bs, bi.output_digest, out_path, sizeof(out_path)), 0);
    blob_close(bs);
    FILE *o = fopen(out_path, "r");
    assert_non_null(o);
    char line[64];
    for (int i = 0; i < N; i++) {
        assert_non_null(fgets(line, sizeof(line), o));
        char want[32];
        if (i < 10)
            snprintf(want, sizeof(want), "{}\n");
        else
            snprintf(want, sizeof(want), "{\"i\":%d}\n", i);
        assert_string_equal(line, want);
    }
    assert_null(fgets(line, sizeof(line), o));
    fclose(o);
}

/* A batch of a registry from before migration 9 (created whole): after
 * the migration it shows every item created, is not being created, and
 * its items are leased as before. */
static void test_batch_migration(void **state)
{
    fixture *f = *state;
    int64_t n;
    int64_t id = batch_of(f, "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n", 1000, &n);
    assert_int_equal(n, 3);
    store_close(f->st);
    f->st = NULL;
    char path[400];
    snprintf(path, sizeof(path), "%s/rouse.db", f->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int src = sqlite3_exec(db,
                           "DROP INDEX batches_creating;"
                           "ALTER TABLE batches DROP COLUMN create_off;"
                           "ALTER TABLE batches DROP COLUMN n_created;"
                           "ALTER TABLE batches DROP COLUMN first_id;"
                           /* Migration 10 undone too (usage records packed). */
                           "DROP VIEW usage_records; DROP TABLE usage_calls;"
                           "CREATE TABLE usage_records(id INTEGER PRIMARY KEY,"
                           " ts_us INTEGER NOT NULL, request_id TEXT NOT NULL,"
                           " function TEXT NOT NULL, version INTEGER NOT NULL,"
                           " tenant TEXT NOT NULL, start INTEGER NOT NULL,"
                           " queue_us INTEGER NOT NULL, start_us INTEGER NOT NULL,"
                           " run_us INTEGER NOT NULL, total_us INTEGER NOT NULL,"
                           " billed_ms INTEGER NOT NULL, memory_mb INTEGER NOT NULL,"
                           " bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,"
                           " status INTEGER NOT NULL, error INTEGER NOT NULL,"
                           " lat_bucket INTEGER NOT NULL, trace_id TEXT NOT NULL);"
                           "UPDATE schema_version SET version = 8;",
                           NULL, NULL, &msg);
    if (src != SQLITE_OK) fail_msg("%s", msg ? msg : "?");
    sqlite3_close(db);
    rouse_errbuf eb;
    assert_int_equal(store_open(f->dir, &f->st, &eb), 0);
    batch_info bi;
    assert_int_equal(jobs_batch_get(f->st, id, &bi, &eb), 0);
    assert_int_equal(bi.n_items, 3);
    assert_int_equal(bi.n_created, 3);
    int64_t creating = 0;
    assert_int_equal(jobs_creating_batches(f->st, creating_of, &creating, &eb), 0);
    assert_int_equal(creating, 0);
    bool complete = false;
    assert_int_equal(extend(f, id, 10, &complete), 0);
    assert_true(complete);
    job_lease l[4];
    int64_t next;
    assert_int_equal(lease(f->st, "fn", 2000, 4, l, &next), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lifecycle_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_and_blob_refs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_bodies_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_input_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_settle_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_bodies_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_many_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_in_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_migration, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
