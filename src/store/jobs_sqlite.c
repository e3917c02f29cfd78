/*
 * Jobs and batch files on the registry's SQLite database (jobs.h; the
 * schema is migrations 3, 4, 7 and 9 in store_sqlite.c).
 *
 * Invariants:
 * - A job's state only moves along the edges jobs.h lists; every UPDATE
 *   names the state it moves from, so a late write (a run settling a job
 *   cancelled meanwhile) changes nothing and says so.
 * - attempts counts the runs leased; a lease that serve did not finish is
 *   uncounted when it is reset at start.
 * - Finished jobs carry expires_ms; queued and running ones never do, so
 *   expiry never removes work that is still to be done.
 * - SQL is constant text; user data only travels through sqlite3_bind_*.
 * - A batch's items are created in chunks (jobs_batch_create_tx, then
 *   jobs_batch_extend_tx), each with the batch's progress (n_created,
 *   create_off) in its transaction; their ids are reserved when the batch
 *   is accepted (first_id + batch_index), so a crash between chunks loses
 *   and repeats nothing, and FIFO by id holds across a batch's creation.
 * - batch_counts holds, per batch and state, how many of its items are in
 *   that state (an item not created yet counts as queued): every statement here that changes an
 * item's state moves its count in the same transaction (count_move), in bulk where it changes many
 * (a lease, a settle write, the reset at start); the removal of items is counted by a trigger
 * (migration 4).
 */
#include "store/jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/json.h"
#include "store/batch_lines.h"
#include "store/blob.h"
#include "store/store_int.h"

static const char *const state_names[JOB_STATE_COUNT] = {"queued", "running", "succeeded", "failed",
                                                         "cancelled"};

const char *job_state_name(int state)
{
    return state >= 0 && state < JOB_STATE_COUNT ? state_names[state] : NULL;
}

int job_state_parse(const char *s)
{
    for (int i = 0; i < JOB_STATE_COUNT; i++)
        if (strcmp(s, state_names[i]) == 0) return i;
    return -1;
}

const char *job_cb_state_name(int state)
{
    static const char *const names[] = {"none", "pending", "delivered", "failed"};
    return state >= 0 && state < 4 ? names[state] : "none";
}

/* --- helpers --------------------------------------------------------------- */

static int stmt(store *s, const char *sql, sqlite3_stmt **out, rouse_errbuf *eb)
{
    return store_stmt(s, sql, out, eb);
}

static void bind_opt_text(sqlite3_stmt *st, int i, const char *t)
{
    if (t && *t)
        sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int step_done(store *s, sqlite3_stmt *st, const char *what, rouse_errbuf *eb)
{
    int src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? 0 : store_db_error(s, eb, src, what);
    store_stmt_done(st);
    return rc;
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? t : "");
}

/* --- enqueue --------------------------------------------------------------- */

static const char SQL_IDEM_GET[] =
    "SELECT id, body_sha, created_ms FROM jobs WHERE function = ?1 AND idem_key = ?2";
static const char SQL_IDEM_FREE[] =
    "UPDATE jobs SET idem_key = NULL WHERE function = ?1 AND idem_key = ?2";
static const char SQL_INSERT[] =
    "INSERT INTO jobs(function, version, state, created_ms, idem_key, body_sha, callback, cb_state)"
    " VALUES (?1, ?2, 0, ?3, ?6, ?7, ?8, ?9)";
static const char SQL_INSERT_BODY[] =
    "INSERT INTO job_bodies(id, json_len, body) VALUES (?1, ?2, ?3)";

/* The body of the job just inserted. */
static int insert_body(store *s, int64_t id, const void *body, size_t len, int64_t json_len,
                       rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    int rc = stmt(s, SQL_INSERT_BODY, &st, eb);
    if (rc < 0) return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, json_len);
    sqlite3_bind_blob64(st, 3, body ? body : "", len, SQLITE_STATIC);
    return step_done(s, st, "recording a job's body", eb);
}

int jobs_enqueue_tx(store *s, const job_new *j, int64_t *id, bool *existed, rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    int rc;
    *existed = false;
    bool keyed = j->idem_key && *j->idem_key;
    if (keyed) {
        if ((rc = stmt(s, SQL_IDEM_GET, &st, eb)) < 0) return rc;
        sqlite3_bind_text(st, 1, j->function, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, j->idem_key, -1, SQLITE_STATIC);
        int src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            int64_t old = sqlite3_column_int64(st, 0);
            const char *sha = (const char *)sqlite3_column_text(st, 1);
            int64_t created = sqlite3_column_int64(st, 2);
            bool same = sha && j->body_sha && strcmp(sha, j->body_sha) == 0;
            store_stmt_done(st);
            if (j->now_ms - created < j->idem_window_ms) {
                if (!same)
                    return rouse_err_set(eb, ROUSE_ESTATE,
                                         "Idempotency-Key '%s' was used for job %lld with a "
                                         "different body",
                                         j->idem_key, (long long)old);
                *id = old;
                *existed = true;
                return 0;
            }
            /* The key's window passed: it names the new job from now on. */
            if ((rc = stmt(s, SQL_IDEM_FREE, &st, eb)) < 0) return rc;
            sqlite3_bind_text(st, 1, j->function, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, j->idem_key, -1, SQLITE_STATIC);
            if ((rc = step_done(s, st, "freeing an idempotency key", eb)) < 0) return rc;
        } else {
            store_stmt_done(st);
            if (src != SQLITE_DONE)
                return store_db_error(s, eb, src, "looking up an idempotency key");
        }
    }
    if ((rc = stmt(s, SQL_INSERT, &st, eb)) < 0) return rc;
    sqlite3_bind_text(st, 1, j->function, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, j->version);
    sqlite3_bind_int64(st, 3, j->now_ms);
    bind_opt_text(st, 6, keyed ? j->idem_key : NULL);
    bind_opt_text(st, 7, keyed ? j->body_sha : NULL);
    bind_opt_text(st, 8, j->callback);
    sqlite3_bind_int(st, 9, j->callback && *j->callback ? JOB_CB_PENDING : JOB_CB_NONE);
    if ((rc = step_done(s, st, "recording a job", eb)) < 0) return rc;
    *id = sqlite3_last_insert_rowid(store_db(s));
    return insert_body(s, *id, j->body, j->body_len, j->json_len, eb);
}

/* --- batch counts ----------------------------------------------------------- */

static const char SQL_COUNT_FROM[] =
    "UPDATE batch_counts SET n = n - ?3 WHERE batch = ?1 AND state = ?2";
static const char SQL_COUNT_TO[] = "INSERT INTO batch_counts(batch, state, n) VALUES (?1, ?2, ?3)"
                                   " ON CONFLICT(batch, state) DO UPDATE SET n = n + excluded.n";

/* n items of batch moved from state `from` to state `to`. */
static int count_move(store *s, int64_t batch, int from, int to, int64_t n, rouse_errbuf *eb)
{
    if (batch <= 0 || n == 0 || from == to) return 0;
    sqlite3_stmt *st;
    int rc = stmt(s, SQL_COUNT_FROM, &st, eb);
    if (rc < 0) return rc;
    sqlite3_bind_int64(st, 1, batch);
    sqlite3_bind_int(st, 2, from);
    sqlite3_bind_int64(st, 3, n);
    if ((rc = step_done(s, st, "counting a batch's items", eb)) < 0) return rc;
    if ((rc = stmt(s, SQL_COUNT_TO, &st, eb)) < 0) return rc;
    sqlite3_bind_int64(st, 1, batch);
    sqlite3_bind_int(st, 2, to);
    sqlite3_bind_int64(st, 3, n);
    return step_done(s, st, "counting a batch's items", eb);
}

/* Moves of many items, gathered per (batch, from, to) before they are
 * written: a lease or a settle write of a batch's items is one move. */
typedef struct count_moves {
    struct {
        int64_t batch, n;
        int from, to;
    } m[16];
    int n;
} count_moves;

static int moves_flush(store *s, count_moves *cm, rouse_errbuf *eb)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < cm->n; i++)
        rc = count_move(s, cm->m[i].batch, cm->m[i].from, cm->m[i].to, cm->m[i].n, eb);
    cm->n = 0;
    return rc;
}

static int moves_add(store *s, count_moves *cm, int64_t batch, int from, int to, rouse_errbuf *eb)
{
    if (batch <= 0 || from == to) return 0;
    for (int i = 0; i < cm->n; i++)
        if (cm->m[i].batch == batch && cm->m[i].from == from && cm->m[i].to == to) {
            cm->m[i].n++;
            return 0;
        }
    int rc = cm->n == (int)(sizeof(cm->m) / sizeof(cm->m[0])) ? moves_flush(s, cm, eb) : 0;
    if (rc < 0) return rc;
    cm->m[cm->n].batch = batch;
    cm->m[cm->n].from = from;
    cm->m[cm->n].to = to;
    cm->m[cm->n].n = 1;
    cm->n++;
    return 0;
}

/* --- lease, settle, cancel, retry, reset, expire ---------------------------- */

static const char SQL_LEASE[] =
    "UPDATE jobs SET state = 1, attempts = attempts + 1, started_ms = ?2 WHERE id IN"
    " (SELECT id FROM jobs WHERE function = ?1 AND state = 0 AND run_after_ms <= ?2"
    "  AND id < ?4 ORDER BY id LIMIT ?3) RETURNING id, version, attempts, created_ms, batch,"
    " callback IS NOT NULL, body_off, body_len";
static const char SQL_NEXT_DUE[] =
    "SELECT MIN(run_after_ms) FROM jobs WHERE function = ?1 AND state = 0 AND id < ?2";
/* The id of the first item not created yet of the function's batches that
 * are still being created (NULL when none is): jobs from it on wait. */
static const char SQL_FRONTIER[] = "SELECT MIN(first_id + n_created) FROM batches"
                                   " WHERE function = ?1 AND create_off IS NOT NULL";

static int lease_frontier(store *s, const char *function, int64_t *frontier, rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    int rc = stmt(s, SQL_FRONTIER, &st, eb);
    *frontier = INT64_MAX;
    if (rc < 0) return rc;
    sqlite3_bind_text(st, 1, function, -1, SQLITE_STATIC);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *frontier = sqlite3_column_int64(st, 0);
    rc = src == SQLITE_ROW ? 0 : store_db_error(s, eb, src, "reading batches being created");
    store_stmt_done(st);
    return rc;
}

static int cmp_lease(const void *a, const void *b)
{
    int64_t x = ((const job_lease *)a)->id, y = ((const job_lease *)b)->id;
    return x < y ? -1 : x > y;
}

int jobs_lease_tx(store *s, const char *function, int64_t now_ms, int max, job_lease *out, int *n,
                  int64_t *next_ms, rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    int64_t frontier;
    *n = 0;
    *next_ms = -1;
    int rc = lease_frontier(s, function, &frontier, eb);
    if (rc < 0 || (rc = stmt(s, SQL_LEASE, &st, eb)) < 0) return rc;
    sqlite3_bind_text(st, 1, function, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int(st, 3, max);
    sqlite3_bind_int64(st, 4, frontier);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
        job_lease *l = &out[(*n)++];
        l->id = sqlite3_column_int64(st, 0);
        l->version = sqlite3_column_int64(st, 1);
        l->attempts = sqlite3_column_int(st, 2);
        l->created_ms = sqlite3_column_int64(st, 3);
        l->batch = sqlite3_column_int64(st, 4);
        l->has_callback = sqlite3_column_int(st, 5) != 0;
        bool line = sqlite3_column_type(st, 6) != SQLITE_NULL;
        l->body_off = line ? sqlite3_column_int64(st, 6) : -1;
        l->body_len = line ? sqlite3_column_int64(st, 7) : -1;
    }
    rc = src == SQLITE_DONE || src == SQLITE_ROW ? 0 : store_db_error(s, eb, src, "leasing jobs");
    store_stmt_done(st);
    if (rc < 0) return rc;
    count_moves cm = {.n = 0};
    for (int i = 0; rc == 0 && i < *n; i++)
        rc = moves_add(s, &cm, out[i].batch, JOB_QUEUED, JOB_RUNNING, eb);
    if (rc == 0) rc = moves_flush(s, &cm, eb);
    if (rc < 0) return rc;
    /* RETURNING gives no order: FIFO is id order. */
    qsort(out, (size_t)*n, sizeof(*out), cmp_lease);
    if (*n == max) {
        *next_ms = now_ms; /* more may be due: no need to look */
        return 0;
    }
    if ((rc = stmt(s, SQL_NEXT_DUE, &st, eb)) < 0) return rc;
    sqlite3_bind_text(st, 1, function, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, frontier);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        *next_ms = sqlite3_column_int64(st, 0);
    rc = src == SQLITE_ROW ? 0 : store_db_error(s, eb, src, "reading the next due job");
    store_stmt_done(st);
    return rc;
}

/* Without RETURNING: a statement with it builds a table of its rows each
 * time it runs, which for one row cost more than the update itself (a
 * settle write's CPU per run halved without it); the job's batch is read
 * back by its id instead. */
static const char SQL_SETTLE_FINAL[] =
    "UPDATE jobs SET state = ?2, finished_ms = ?3, expires_ms = ?4, status = ?5, last_error = ?6,"
    " result = ?7, result_digest = ?8, result_type = ?9, result_json_len = ?10"
    " WHERE id = ?1 AND state = 1";
static const char SQL_SETTLE_RETRY[] =
    "UPDATE jobs SET state = 0, run_after_ms = ?2, status = ?3, last_error = ?4,"
    " attempts = attempts - ?5 WHERE id = ?1 AND state = 1";
static const char SQL_BATCH_OF[] = "SELECT batch FROM jobs WHERE id = ?1";

/* One run's end; *batch: the job's batch (0 for none), whose count the
 * caller moves. */
static int settle_one(store *s, const job_settle *x, int64_t *batch, rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    int rc;
    *batch = 0;
    if (x->state == JOB_QUEUED) {
        if ((rc = stmt(s, SQL_SETTLE_RETRY, &st, eb)) < 0) return rc;
        sqlite3_bind_int64(st, 1, x->id);
        sqlite3_bind_int64(st, 2, x->run_after_ms);
        sqlite3_bind_int(st, 3, x->status);
        bind_opt_text(st, 4, x->error);
        sqlite3_bind_int(st, 5, x->uncount ? 1 : 0);
    } else {
        if ((rc = stmt(s, SQL_SETTLE_FINAL, &st, eb)) < 0) return rc;
        sqlite3_bind_int64(st, 1, x->id);
        sqlite3_bind_int(st, 2, x->state);
        sqlite3_bind_int64(st, 3, x->now_ms);
        sqlite3_bind_int64(st, 4, x->expires_ms);
        sqlite3_bind_int(st, 5, x->status);
        bind_opt_text(st, 6, x->error);
        if (x->result)
            sqlite3_bind_blob64(st, 7, x->result, x->result_len, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 7);
        bind_opt_text(st, 8, x->result_digest);
        bind_opt_text(st, 9, x->result_type);
        sqlite3_bind_int64(st, 10, x->result_json_len);
    }
    int src = sqlite3_step(st);
    bool changed = src == SQLITE_DONE && sqlite3_changes(store_db(s)) == 1;
    rc = src == SQLITE_DONE ? 0 : store_db_error(s, eb, src, "recording the end of a job's run");
    store_stmt_done(st);
    if (rc < 0) return rc;
    if (!changed)
        return rouse_err_set(eb, ROUSE_ESTATE, "job %lld is no longer running", (long long)x->id);
    /* A job's batch never changes: read in the same transaction. */
    if ((rc = stmt(s, SQL_BATCH_OF, &st, eb)) < 0) return rc;
    sqlite3_bind_int64(st, 1, x->id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) *batch = sqlite3_column_int64(st, 0);
    rc = src == SQLITE_ROW ? 0 : store_db_error(s, eb, src, "reading a job's batch");
    store_stmt_done(st);
    return rc;
}

int jobs_settle_tx(store *s, const job_settle *x, rouse_errbuf *eb)
{
    int64_t batch;
    int rc = settle_one(s, x, &batch, eb);
    if (rc == 0) rc = count_move(s, batch, JOB_RUNNING, x->state, 1, eb);
    return rc;
}

int jobs_settle_many_tx(store *s, const job_settle *x, int n, int *rcs, int64_t *batch_left,
                        rouse_errbuf *eb)
{
    count_moves cm = {.n = 0};
    int64_t *batches = malloc((size_t)(n > 0 ? n : 1) * sizeof(*batches));
    if (!batches) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory recording runs");
    int rc = 0;
    for (int i = 0; i < n; i++) {
        rouse_errbuf ieb;
        rcs[i] = settle_one(s, &x[i], &batches[i], &ieb);
        batch_left[i] = -1;
        if (rcs[i] < 0 && rcs[i] != ROUSE_ESTATE) {
            *eb = ieb;
            rc = rcs[i];
            goto out_free;
        }
        if (rcs[i] == 0 && (rc = moves_add(s, &cm, batches[i], JOB_RUNNING, x[i].state, eb)) < 0)
            goto out_free;
    }
    if ((rc = moves_flush(s, &cm, eb)) < 0) goto out_free;
    int64_t batch = 0, left = -1;
    for (int i = 0; i < n; i++) {
        if (rcs[i] < 0 || batches[i] <= 0 || x[i].state == JOB_QUEUED) continue;
        if (batches[i] != batch) {
            if ((rc = jobs_batch_pending_tx(s, batches[i], &left, eb)) < 0) goto out_free;
            batch = batches[i];
        }
        batch_left[i] = left;
    }
out_free:
    free(batches);
    return rc;
}

static const char SQL_BATCH_PENDING[] =
    "SELECT COALESCE(SUM(n), 0) FROM batch_counts WHERE batch = ?1 AND state IN (0, 1)";

int jobs_batch_pending_tx(store *s, int64_t batch, int64_t *n, rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    int rc = stmt(s, SQL_BATCH_PENDING, &st, eb);
    *n = 0;
    if (rc < 0) return rc;
    sqlite3_bind_int64(st, 1, batch);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    else
        rc = store_db_error(s, eb, src, "counting a batch's pending items");
    store_stmt_done(st);
    return rc;
}

static const char SQL_STATE_GET[] = "SELECT state, function FROM jobs WHERE id = ?1";

/* The state (and function) of job id: 0, or ROUSE_ENOTFOUND. */
static int state_get(store *s, int64_t id, int *state, char *function, rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    int rc = stmt(s, SQL_STATE_GET, &st, eb);
    if (rc < 0) return rc;
    sqlite3_bind_int64(st, 1, id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        *state = sqlite3_column_int(st, 0);
        if (function) copy_col(st, 1, function, STORE_NAME_MAX + 1);
        rc = 0;
    } else if (src == SQLITE_DONE) {
        rc = rouse_err_set(eb, ROUSE_ENOTFOUND, "no job %lld", (long long)id);
    } else {
        rc = store_db_error(s, eb, src, "reading a job");
    }
    store_stmt_done(st);
    return rc;
}

static const char SQL_CANCEL[] = "UPDATE jobs SET state = 4, finished_ms = ?2, expires_ms = ?3 "
                                 "WHERE id = ?1 AND state IN (0, 1) RETURNING batch";

/* Runs an UPDATE of one job that returns its batch; moves its count. */
static int update_one(store *s, sqlite3_stmt *st, int from, int to, const char *what,
                      rouse_errbuf *eb)
{
    int64_t batch = 0;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        batch = sqlite3_column_int64(st, 0);
        src = sqlite3_step(st);
    }
    int rc = src == SQLITE_DONE ? 0 : store_db_error(s, eb, src, what);
    store_stmt_done(st);
    if (rc == 0) rc = count_move(s, batch, from, to, 1, eb);
    return rc;
}

int jobs_cancel_tx(store *s, int64_t id, int64_t now_ms, int64_t expires_ms, bool leased_ok,
                   int *state, rouse_errbuf *eb)
{
    int rc = state_get(s, id, state, NULL, eb);
    if (rc < 0) return rc;
    if (*state != JOB_QUEUED && !(leased_ok && *state == JOB_RUNNING))
        return rouse_err_set(eb, ROUSE_ESTATE, "job %lld is %s: only a queued job can be cancelled",
                             (long long)id, job_state_name(*state));
    sqlite3_stmt *st;
    if ((rc = stmt(s, SQL_CANCEL, &st, eb)) < 0) return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int64(st, 3, expires_ms);
    return update_one(s, st, *state, JOB_CANCELLED, "cancelling a job", eb);
}

static const char SQL_RETRY[] =
    "UPDATE jobs SET state = 0, attempts = 0, run_after_ms = 0, started_ms = NULL,"
    " finished_ms = NULL, expires_ms = NULL, status = NULL, last_error = NULL, result = NULL,"
    " result_digest = NULL, result_type = NULL, result_json_len = NULL,"
    " cb_state = CASE WHEN callback IS NULL THEN 0 ELSE 1 END, cb_attempts = 0, cb_error = NULL"
    " WHERE id = ?1 AND state IN (3, 4) RETURNING batch";

int jobs_retry_tx(store *s, int64_t id, int64_t now_ms, char *function, int *state,
                  rouse_errbuf *eb)
{
    (void)now_ms;
    int rc = state_get(s, id, state, function, eb);
    if (rc < 0) return rc;
    if (*state != JOB_FAILED && *state != JOB_CANCELLED)
        return rouse_err_set(eb, ROUSE_ESTATE,
                             "job %lld is %s: only a failed or cancelled job can be retried",
                             (long long)id, job_state_name(*state));
    sqlite3_stmt *st;
    if ((rc = stmt(s, SQL_RETRY, &st, eb)) < 0) return rc;
    sqlite3_bind_int64(st, 1, id);
    return update_one(s, st, *state, JOB_QUEUED, "re-driving a job", eb);
}

static const char SQL_RESET[] =
    "UPDATE jobs SET state = 0, attempts = MAX(attempts - 1, 0) WHERE state = 1";

/* Every running item of every batch is queued again. */
static const char SQL_RESET_COUNTS_TO[] =
    "INSERT INTO batch_counts(batch, state, n) SELECT batch, 0, n FROM batch_counts"
    " WHERE state = 1 AND n <> 0 ON CONFLICT(batch, state) DO UPDATE SET n = n + excluded.n";
static const char SQL_RESET_COUNTS_FROM[] =
    "UPDATE batch_counts SET n = 0 WHERE state = 1 AND n <> 0";

int jobs_reset_running_tx(store *s, int64_t *n, rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    *n = 0;
    int rc = stmt(s, SQL_RESET, &st, eb);
    if (rc < 0) return rc;
    if ((rc = step_done(s, st, "resetting running jobs", eb)) < 0) return rc;
    *n = sqlite3_changes(store_db(s));
    if ((rc = stmt(s, SQL_RESET_COUNTS_TO, &st, eb)) < 0) return rc;
    if ((rc = step_done(s, st, "counting batches' items", eb)) < 0) return rc;
    if ((rc = stmt(s, SQL_RESET_COUNTS_FROM, &st, eb)) < 0) return rc;
    return step_done(s, st, "counting batches' items", eb);
}

/* A batch's items go with their batch (its output is built from them). */
static const char SQL_EXPIRE_JOBS[] =
    "DELETE FROM jobs WHERE expires_ms IS NOT NULL AND expires_ms <= ?1"
    " AND (batch IS NULL OR batch NOT IN (SELECT id FROM batches))";
static const char SQL_EXPIRE_BATCHES[] =
    "DELETE FROM batches WHERE expires_ms IS NOT NULL AND expires_ms <= ?1";

int jobs_expire_tx(store *s, int64_t now_ms, int64_t *n, rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    int rc = stmt(s, SQL_EXPIRE_BATCHES, &st, eb);
    *n = 0;
    if (rc < 0) return rc;
    sqlite3_bind_int64(st, 1, now_ms);
    if ((rc = step_done(s, st, "removing expired batches", eb)) < 0) return rc;
    if ((rc = stmt(s, SQL_EXPIRE_JOBS, &st, eb)) < 0) return rc;
    sqlite3_bind_int64(st, 1, now_ms);
    if ((rc = step_done(s, st, "removing expired jobs", eb)) < 0) return rc;
    *n = sqlite3_changes(store_db(s));
    return 0;
}

static const char SQL_CALLBACK[] =
    "UPDATE jobs SET cb_state = ?2, cb_attempts = ?3, cb_error = ?4 WHERE id = ?1";

int jobs_callback_tx(store *s, int64_t id, int cb_state, int attempts, const char *error,
                     rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    int rc = stmt(s, SQL_CALLBACK, &st, eb);
    if (rc < 0) return rc;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, cb_state);
    sqlite3_bind_int(st, 3, attempts);
    bind_opt_text(st, 4, error);
    return step_done(s, st, "recording a callback delivery", eb);
}

/* --- reads ----------------------------------------------------------------- */

#define JOB_COLS                                                                                   \
    "id, function, version, state, attempts, created_ms, started_ms, finished_ms, run_after_ms,"   \
    " expires_ms, status, last_error, callback, cb_state, cb_attempts, cb_error, result_type,"     \
    " result_json_len, result_digest, batch, batch_index"

static void read_job(sqlite3_stmt *st, job_info *j)
{
    memset(j, 0, sizeof(*j));
    j->id = sqlite3_column_int64(st, 0);
    copy_col(st, 1, j->function, sizeof(j->function));
    j->version = sqlite3_column_int64(st, 2);
    j->state = sqlite3_column_int(st, 3);
    j->attempts = sqlite3_column_int(st, 4);
    j->created_ms = sqlite3_column_int64(st, 5);
    j->started_ms = sqlite3_column_int64(st, 6);
    j->finished_ms = sqlite3_column_int64(st, 7);
    j->run_after_ms = sqlite3_column_int64(st, 8);
    j->expires_ms = sqlite3_column_int64(st, 9);
    j->status = sqlite3_column_int(st, 10);
    copy_col(st, 11, j->last_error, sizeof(j->last_error));
    copy_col(st, 12, j->callback, sizeof(j->callback));
    j->cb_state = sqlite3_column_int(st, 13);
    j->cb_attempts = sqlite3_column_int(st, 14);
    copy_col(st, 15, j->cb_error, sizeof(j->cb_error));
    copy_col(st, 16, j->result_type, sizeof(j->result_type));
    j->result_json_len =
        sqlite3_column_type(st, 17) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 17);
    copy_col(st, 18, j->result_digest, sizeof(j->result_digest));
    j->batch = sqlite3_column_int64(st, 19);
    j->batch_index = sqlite3_column_type(st, 20) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 20);
}

static const char SQL_GET[] = "SELECT " JOB_COLS ", result FROM jobs WHERE id = ?1";

int jobs_get(store *s, int64_t id, bool with_result, job_info *out, rouse_errbuf *eb)
{
    store_lock(s);
    sqlite3_stmt *st;
    int rc = stmt(s, SQL_GET, &st, eb);
    if (rc < 0) goto out_unlock;
    sqlite3_bind_int64(st, 1, id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        read_job(st, out);
        if (with_result && sqlite3_column_type(st, 21) != SQLITE_NULL) {
            size_t n = (size_t)sqlite3_column_bytes(st, 21);
            out->result = malloc(n + 1);
            if (!out->result) {
                rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading a job's result");
            } else {
                if (n) memcpy(out->result, sqlite3_column_blob(st, 21), n);
                out->result[n] = '\0';
                out->result_len = n;
            }
        }
    } else if (src == SQLITE_DONE) {
        rc = rouse_err_set(eb, ROUSE_ENOTFOUND, "no job %lld", (long long)id);
    } else {
        rc = store_db_error(s, eb, src, "reading a job");
    }
    store_stmt_done(st);
out_unlock:
    store_unlock(s);
    return rc;
}

static const char SQL_BODY[] =
    "SELECT b.body, b.json_len, j.batch, j.body_off, j.body_len FROM jobs j"
    " LEFT JOIN job_bodies b ON b.id = j.id WHERE j.id = ?1";
static const char SQL_BATCH_INPUT[] = "SELECT input_digest FROM batches WHERE id = ?1";

void jobs_body_reader_init(job_body_reader *r, const char *data_dir)
{
    memset(r, 0, sizeof(*r));
    r->data_dir = data_dir;
    r->fd = -1;
}

void jobs_body_reader_fini(job_body_reader *r)
{
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    r->batch = 0;
    blob_close(r->blobs);
    r->blobs = NULL;
}

/* Opens the input blob of `batch` in r (kept for the next item of it). */
static int reader_open(store *s, job_body_reader *r, int64_t batch, rouse_errbuf *eb)
{
    if (r->batch == batch && r->fd >= 0) return 0;
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    r->batch = 0;
    if (!r->data_dir)
        return rouse_err_set(eb, ROUSE_EINTERNAL, "no data directory to read batch %lld from",
                             (long long)batch);
    int rc;
    if (!r->blobs && (rc = blob_open_shared(r->data_dir, &r->blobs, eb)) < 0) return rc;
    sqlite3_stmt *st;
    if ((rc = stmt(s, SQL_BATCH_INPUT, &st, eb)) < 0) return rc;
    sqlite3_bind_int64(st, 1, batch);
    char digest[BLOB_DIGEST_LEN + 1] = "";
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        copy_col(st, 0, digest, sizeof(digest));
    else if (src == SQLITE_DONE)
        rc = rouse_err_set(eb, ROUSE_ENOTFOUND, "no batch %lld", (long long)batch);
    else
        rc = store_db_error(s, eb, src, "reading a batch's input");
    store_stmt_done(st);
    if (rc < 0) return rc;
    char path[PATH_MAX];
    if (blob_path(r->blobs, digest, path, sizeof(path)) != 0)
        return rouse_err_set(eb, ROUSE_EINTERNAL, "batch %lld: bad input digest", (long long)batch);
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return rouse_err_set(eb, errno == ENOENT ? ROUSE_ENOTFOUND : ROUSE_EIO,
                             "batch %lld: cannot open its input %s: %s", (long long)batch, digest,
                             strerror(errno));
    r->batch = batch;
    return 0;
}

/* len bytes at off of the batch's input into a new buffer. */
static int read_line(store *s, job_body_reader *r, int64_t batch, int64_t off, int64_t len,
                     char **body, rouse_errbuf *eb)
{
    int rc = reader_open(s, r, batch, eb);
    if (rc < 0) return rc;
    if (off < 0 || len < 0)
        return rouse_err_set(eb, ROUSE_EINTERNAL, "batch %lld: a line at %lld of %lld bytes",
                             (long long)batch, (long long)off, (long long)len);
    char *b = malloc(len ? (size_t)len : 1);
    if (!b) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading a job");
    size_t got = 0;
    while (got < (size_t)len) {
        ssize_t n = pread(r->fd, b + got, (size_t)len - got, (off_t)(off + (int64_t)got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            free(b);
            return rouse_err_set(eb, ROUSE_EIO, "batch %lld: reading its input at %lld: %s",
                                 (long long)batch, (long long)(off + (int64_t)got),
                                 n < 0 ? strerror(errno) : "the file is shorter than its lines");
        }
        got += (size_t)n;
    }
    *body = b;
    return 0;
}

/* A job's body; the store's lock held. */
static int body_read(store *s, job_body_reader *r, int64_t id, char **body, size_t *len,
                     int64_t *json_len, rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    *body = NULL;
    *len = 0;
    int rc = stmt(s, SQL_BODY, &st, eb);
    if (rc < 0) return rc;
    sqlite3_bind_int64(st, 1, id);
    int src = sqlite3_step(st);
    int64_t batch = 0, off = -1, n_line = -1;
    if (src == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        *body = malloc(n ? n : 1);
        if (!*body) {
            rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading a job");
        } else {
            if (n) memcpy(*body, sqlite3_column_blob(st, 0), n);
            *len = n;
            *json_len = sqlite3_column_int64(st, 1);
        }
    } else if (src == SQLITE_ROW && sqlite3_column_type(st, 3) != SQLITE_NULL) {
        batch = sqlite3_column_int64(st, 2);
        off = sqlite3_column_int64(st, 3);
        n_line = sqlite3_column_int64(st, 4);
    } else if (src == SQLITE_ROW || src == SQLITE_DONE) {
        rc = rouse_err_set(eb, ROUSE_ENOTFOUND, "no job %lld", (long long)id);
    } else {
        rc = store_db_error(s, eb, src, "reading a job's body");
    }
    store_stmt_done(st);
    if (rc < 0 || off < 0) return rc;
    if ((rc = read_line(s, r, batch, off, n_line, body, eb)) < 0) return rc;
    *len = (size_t)n_line;
    *json_len = -1;
    return 0;
}

int jobs_body_get(store *s, const char *data_dir, int64_t id, char **body, size_t *len,
                  int64_t *json_len, rouse_errbuf *eb)
{
    job_body_reader r;
    jobs_body_reader_init(&r, data_dir);
    store_lock(s);
    int rc = body_read(s, &r, id, body, len, json_len, eb);
    store_unlock(s);
    jobs_body_reader_fini(&r);
    return rc;
}

int jobs_body_get_tx(store *s, job_body_reader *r, int64_t id, char **body, size_t *len,
                     int64_t *json_len, rouse_errbuf *eb)
{
    return body_read(s, r, id, body, len, json_len, eb);
}

int jobs_lease_body_tx(store *s, job_body_reader *r, const job_lease *l, char **body, size_t *len,
                       int64_t *json_len, rouse_errbuf *eb)
{
    if (l->batch <= 0 || l->body_off < 0) return body_read(s, r, l->id, body, len, json_len, eb);
    *body = NULL;
    int rc = read_line(s, r, l->batch, l->body_off, l->body_len, body, eb);
    if (rc < 0) return rc;
    *len = (size_t)l->body_len;
    *json_len = -1;
    return 0;
}

/* Lines of a batch read by one preadv: up to IOV_MAX pieces (each line and
 * the bytes between it and the next, read into a scratch buffer when they
 * are few), at most BODIES_RUN_MAX bytes. */
#define BODIES_GAP_MAX 4096
#define BODIES_RUN_MAX (16u << 20)

/* Items i.. of l that lie one after another in their batch's input, at
 * most max_iov pieces: how many. */
static int line_run(const job_lease *l, int i, int n, int max_iov)
{
    int k = i + 1, pieces = 1;
    int64_t end = l[i].body_off + l[i].body_len;
    uint64_t bytes = (uint64_t)l[i].body_len;
    while (k < n && l[k].batch == l[i].batch && l[k].body_len >= 0 && l[k].body_off >= end &&
           l[k].body_off - end <= BODIES_GAP_MAX && pieces + 2 <= max_iov) {
        uint64_t more = (uint64_t)(l[k].body_off - end) + (uint64_t)l[k].body_len;
        if (bytes + more > BODIES_RUN_MAX) break;
        bytes += more;
        pieces += l[k].body_off > end ? 2 : 1;
        end = l[k].body_off + l[k].body_len;
        k++;
    }
    return k - i;
}

/* Reads the m lines of l (one run, see line_run) into new buffers; 1 when
 * the file ended early (the caller reads them one by one, which says so). */
static int read_run(job_body_reader *r, const job_lease *l, int m, char **bodies, rouse_errbuf *eb)
{
    char gap[BODIES_GAP_MAX]; /* what lies between lines: read, never used */
    struct iovec iov[IOV_MAX];
    int n_iov = 0;
    size_t total = 0;
    for (int k = 0; k < m; k++) {
        if (k > 0 && l[k].body_off > l[k - 1].body_off + l[k - 1].body_len) {
            size_t g = (size_t)(l[k].body_off - (l[k - 1].body_off + l[k - 1].body_len));
            iov[n_iov++] = (struct iovec){gap, g};
            total += g;
        }
        bodies[k] = malloc(l[k].body_len ? (size_t)l[k].body_len : 1);
        if (!bodies[k]) {
            for (int x = 0; x < k; x++) {
                free(bodies[x]);
                bodies[x] = NULL;
            }
            return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading jobs");
        }
        iov[n_iov++] = (struct iovec){bodies[k], (size_t)l[k].body_len};
        total += (size_t)l[k].body_len;
    }
    ssize_t got;
    do
        got = preadv(r->fd, iov, n_iov, (off_t)l[0].body_off);
    while (got < 0 && errno == EINTR);
    if (got >= 0 && (size_t)got == total) return 0;
    for (int k = 0; k < m; k++) {
        free(bodies[k]);
        bodies[k] = NULL;
    }
    if (got < 0)
        return rouse_err_set(eb, ROUSE_EIO, "batch %lld: reading its input at %lld: %s",
                             (long long)l[0].batch, (long long)l[0].body_off, strerror(errno));
    return 1;
}

int jobs_lease_bodies_tx(store *s, job_body_reader *r, const job_lease *l, int n, char **bodies,
                         size_t *lens, int64_t *json_lens, rouse_errbuf *eb)
{
    int rc = 0, i = 0;
    while (rc == 0 && i < n) {
        int m = 1;
        if (l[i].batch > 0 && l[i].body_off >= 0 && l[i].body_len >= 0 &&
            (rc = reader_open(s, r, l[i].batch, eb)) == 0 && (m = line_run(l, i, n, IOV_MAX)) > 1) {
            if ((rc = read_run(r, &l[i], m, &bodies[i], eb)) == 0) {
                for (int k = i; k < i + m; k++) {
                    lens[k] = (size_t)l[k].body_len;
                    json_lens[k] = -1;
                }
                i += m;
                continue;
            }
            if (rc < 0) break;
            rc = 0; /* cut short: one by one, which says where */
        }
        if (rc < 0) break;
        for (int k = i; rc == 0 && k < i + m; k++) {
            rc = jobs_lease_body_tx(s, r, &l[k], &bodies[k], &lens[k], &json_lens[k], eb);
            if (rc == 0) continue;
            m = k - i; /* what was read before it */
        }
        i += m;
    }
    if (rc < 0)
        for (int k = 0; k < i; k++) {
            free(bodies[k]);
            bodies[k] = NULL;
        }
    return rc;
}

/* One statement per filter, so that each uses an index (a dead-letter
 * listing of one function reads its failed jobs only). */
static const char SQL_LIST[] = "SELECT " JOB_COLS " FROM jobs WHERE id > ?3 ORDER BY id LIMIT ?4";
static const char SQL_LIST_FN[] =
    "SELECT " JOB_COLS " FROM jobs WHERE function = ?1 AND id > ?3 ORDER BY id LIMIT ?4";
static const char SQL_LIST_STATE[] =
    "SELECT " JOB_COLS " FROM jobs WHERE state = ?2 AND id > ?3 ORDER BY id LIMIT ?4";
static const char SQL_LIST_FN_STATE[] =
    "SELECT " JOB_COLS " FROM jobs WHERE function = ?1 AND state = ?2 AND id > ?3"
    " ORDER BY id LIMIT ?4";

int jobs_list(store *s, const char *function, int state, int64_t after_id, int limit,
              int (*fn)(void *user, const job_info *j), void *user, rouse_errbuf *eb)
{
    job_info *j = malloc(sizeof(*j));
    if (!j) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    store_lock(s);
    sqlite3_stmt *st;
    const char *sql = function ? (state >= 0 ? SQL_LIST_FN_STATE : SQL_LIST_FN)
                               : (state >= 0 ? SQL_LIST_STATE : SQL_LIST);
    int rc = stmt(s, sql, &st, eb);
    if (rc < 0) goto out_unlock;
    bind_opt_text(st, 1, function);
    sqlite3_bind_int(st, 2, state);
    sqlite3_bind_int64(st, 3, after_id);
    sqlite3_bind_int(st, 4, limit);
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        read_job(st, j);
        if (fn(user, j)) {
            src = SQLITE_DONE;
            break;
        }
    }
    if (src != SQLITE_DONE) rc = store_db_error(s, eb, src, "listing jobs");
    store_stmt_done(st);
out_unlock:
    store_unlock(s);
    free(j);
    return rc;
}

/* A batch's items not created yet are queued ones too. */
static const char SQL_ACTIVE[] =
    "SELECT function, SUM(n) FROM (SELECT function, COUNT(*) AS n FROM jobs"
    " WHERE state IN (0, 1) GROUP BY function UNION ALL SELECT function, n_items - n_created"
    " FROM batches WHERE create_off IS NOT NULL) GROUP BY function";

int jobs_active_counts(store *s, int (*fn)(void *user, const char *function, int64_t n_active),
                       void *user, rouse_errbuf *eb)
{
    store_lock(s);
    sqlite3_stmt *st;
    int rc = stmt(s, SQL_ACTIVE, &st, eb);
    if (rc < 0) goto out_unlock;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *f = (const char *)sqlite3_column_text(st, 0);
        if (f && fn(user, f, sqlite3_column_int64(st, 1))) {
            src = SQLITE_DONE;
            break;
        }
    }
    if (src != SQLITE_DONE) rc = store_db_error(s, eb, src, "counting jobs");
    store_stmt_done(st);
out_unlock:
    store_unlock(s);
    return rc;
}

/* Runs a query whose rows are one integer each, calling fn per row. */
static int each_id(store *s, const char *sql, int (*fn)(void *user, int64_t id), void *user,
                   const char *what, rouse_errbuf *eb)
{
    store_lock(s);
    sqlite3_stmt *st;
    int rc = stmt(s, sql, &st, eb);
    if (rc < 0) goto out_unlock;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (fn(user, sqlite3_column_int64(st, 0))) {
            src = SQLITE_DONE;
            break;
        }
    }
    if (src != SQLITE_DONE) rc = store_db_error(s, eb, src, what);
    store_stmt_done(st);
out_unlock:
    store_unlock(s);
    return rc;
}

static const char SQL_PENDING_BATCHES[] = "SELECT id FROM batches WHERE output_digest IS NULL";
static const char SQL_PENDING_CALLBACKS[] =
    "SELECT id FROM jobs WHERE cb_state = 1 AND state IN (2, 3, 4) ORDER BY id";

int jobs_pending_batches(store *s, int (*fn)(void *user, int64_t id), void *user, rouse_errbuf *eb)
{
    return each_id(s, SQL_PENDING_BATCHES, fn, user, "listing pending batches", eb);
}

int jobs_pending_callbacks(store *s, int (*fn)(void *user, int64_t id), void *user,
                           rouse_errbuf *eb)
{
    return each_id(s, SQL_PENDING_CALLBACKS, fn, user, "listing pending callbacks", eb);
}

static int take_min(void *user, int64_t v)
{
    *(int64_t *)user = v;
    return 1;
}

static const char SQL_NEXT_EXPIRY[] =
    "SELECT MIN(x) FROM (SELECT MIN(expires_ms) AS x FROM jobs WHERE expires_ms IS NOT NULL"
    " UNION ALL SELECT MIN(expires_ms) FROM batches WHERE expires_ms IS NOT NULL)"
    " WHERE x IS NOT NULL HAVING MIN(x) IS NOT NULL";

int jobs_next_expiry(store *s, int64_t *ms, rouse_errbuf *eb)
{
    *ms = -1;
    return each_id(s, SQL_NEXT_EXPIRY, take_min, ms, "reading the next expiry", eb);
}

/* --- batches --------------------------------------------------------------- */

static const char SQL_BATCH_INSERT[] =
    "INSERT INTO batches(function, version, input_digest, n_items, created_ms, first_id,"
    " n_created, create_off) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0)";
/* Every item starts queued: counted once here (migration 7), the items not
 * created yet with the others; the statements that move items move the
 * count from then on. */
static const char SQL_BATCH_COUNTS_INIT[] =
    "INSERT INTO batch_counts(batch, state, n) VALUES (?1, 0, ?2)";
/* A batch's item ids are reserved when it is accepted: the AUTOINCREMENT
 * sequence moves past them, so every job accepted later gets a larger id
 * (FIFO by id) whether or not the items exist yet. The sequence's row is
 * missing until the first job was inserted. */
static const char SQL_SEQ_ENSURE[] =
    "INSERT INTO sqlite_sequence(name, seq) SELECT 'jobs', (SELECT COALESCE(MAX(id), 0) FROM jobs)"
    " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'jobs')";
static const char SQL_SEQ_RESERVE[] =
    "UPDATE sqlite_sequence SET seq = seq + ?1 WHERE name = 'jobs' RETURNING seq";
static const char SQL_BATCH_PROGRESS[] =
    "UPDATE batches SET n_created = ?2, create_off = ?3 WHERE id = ?1";
static const char SQL_BATCH_CREATING[] =
    "SELECT function, version, input_digest, n_items, created_ms, first_id, n_created,"
    " create_off FROM batches WHERE id = ?1";

/* Items are inserted ITEMS_PER_INSERT to a statement: one statement's
 * setup and statement journal per that many rows instead of per row. Each
 * row binds its own index, offset, length and id to the anonymous
 * parameters after ?4 (SQLite numbers them on from there). */
#define ITEMS_PER_INSERT 32
#define ITEM_ROW "(?1, ?2, 0, ?3, ?4, ?, ?, ?, ?)"
#define ITEM_ROWS4 ITEM_ROW "," ITEM_ROW "," ITEM_ROW "," ITEM_ROW
#define ITEM_ROWS16 ITEM_ROWS4 "," ITEM_ROWS4 "," ITEM_ROWS4 "," ITEM_ROWS4
static const char SQL_BATCH_ITEMS[] =
    "INSERT INTO jobs(function, version, state, created_ms, batch, batch_index, body_off,"
    " body_len, id) VALUES " ITEM_ROWS16 "," ITEM_ROWS16;
static const char SQL_BATCH_ITEM[] =
    "INSERT INTO jobs(function, version, state, created_ms, batch, batch_index, body_off,"
    " body_len, id) VALUES " ITEM_ROW;

/* What creating a batch's items needs of it. */
typedef struct batch_row {
    int64_t id, version, created_ms, first_id, n_items, n_created;
    const char *function;
} batch_row;

/* A batch's input, mapped, not read line by line: a batch of large
 * requests (10,000 lines of 784 floats is 70 MB) is split in memchr's
 * time, and only the offsets and lengths of its lines are kept. Blobs are
 * never changed in place, so the mapping cannot shrink under a scan. */
typedef struct input_map {
    int fd;
    const char *map;
    size_t size;
} input_map;

static int input_open(const char *path, const char *digest, input_map *in, rouse_errbuf *eb)
{
    in->map = NULL;
    in->size = 0;
    in->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (in->fd < 0)
        return rouse_err_set(eb, errno == ENOENT ? ROUSE_ENOTFOUND : ROUSE_EIO,
                             "input: cannot open blob %s: %s", digest, strerror(errno));
    struct stat sb;
    int rc = 0;
    if (fstat(in->fd, &sb) < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "input: blob %s: %s", digest, strerror(errno));
    } else if (sb.st_size > 0) {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, in->fd, 0);
        if (m == MAP_FAILED) {
            rc = rouse_err_set(eb, ROUSE_EIO, "input: reading blob %s failed: %s", digest,
                               strerror(errno));
        } else {
            in->map = m;
            in->size = (size_t)sb.st_size;
            madvise(m, in->size, MADV_SEQUENTIAL);
        }
    }
    if (rc < 0) {
        close(in->fd);
        in->fd = -1;
    }
    return rc;
}

static void input_close(input_map *in)
{
    if (in->map) munmap((void *)in->map, in->size);
    if (in->fd >= 0) close(in->fd);
    in->map = NULL;
    in->fd = -1;
}

/* The next request line of the input from *off on (batch_lines.h). */
static int next_line(const input_map *in, size_t *off, int64_t *lineno, int64_t *line_off,
                     size_t *len)
{
    size_t at;
    if (!batch_next_line(in->map, in->size, true, off, lineno, &at, len)) return 0;
    *line_off = (int64_t)at;
    return 1;
}

/* Items first .. first + n - 1 of batch r (n is 1 or ITEMS_PER_INSERT):
 * their bodies stay in the input blob (the batch references it until it
 * expires), each job records where; its id is its reserved one. */
static int batch_items(store *s, const batch_row *r, int64_t first, const int64_t *offs,
                       const int64_t *lens, int n, rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    int rc = stmt(s, n == ITEMS_PER_INSERT ? SQL_BATCH_ITEMS : SQL_BATCH_ITEM, &st, eb);
    if (rc < 0) return rc;
    sqlite3_bind_text(st, 1, r->function, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->version);
    sqlite3_bind_int64(st, 3, r->created_ms);
    sqlite3_bind_int64(st, 4, r->id);
    for (int i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 5 + 4 * i, first + i);
        sqlite3_bind_int64(st, 6 + 4 * i, offs[i]);
        sqlite3_bind_int64(st, 7 + 4 * i, lens[i]);
        sqlite3_bind_int64(st, 8 + 4 * i, r->first_id + first + i);
    }
    return step_done(s, st, "recording batch items", eb);
}

/* Inserts the n items gathered (from item r->n_created on), as a whole
 * statement of ITEMS_PER_INSERT or one by one; r->n_created moves on. */
static int batch_items_flush(store *s, batch_row *r, const int64_t *offs, const int64_t *lens,
                             int n, rouse_errbuf *eb)
{
    int rc = 0;
    if (n == ITEMS_PER_INSERT)
        rc = batch_items(s, r, r->n_created, offs, lens, n, eb);
    else
        for (int i = 0; rc == 0 && i < n; i++)
            rc = batch_items(s, r, r->n_created + i, offs + i, lens + i, 1, eb);
    if (rc == 0) r->n_created += n;
    return rc;
}

/* Creates up to max items of batch r, the request lines of its input from
 * *off on (r->n_created and *off move past them), and records how far the
 * creation went in the same transaction: create_off NULL once all
 * r->n_items exist. *n_new: how many it created. */
static int create_items(store *s, batch_row *r, const input_map *in, size_t *off, int64_t max,
                        int64_t *n_new, rouse_errbuf *eb)
{
    int64_t offs[ITEMS_PER_INSERT], lens[ITEMS_PER_INSERT], lineno = 0, from = r->n_created;
    int pend = 0, rc = 0;
    while (rc == 0 && r->n_created + pend < r->n_items && r->n_created + pend - from < max) {
        int64_t at;
        size_t len;
        if (!next_line(in, off, &lineno, &at, &len)) {
            rc = rouse_err_set(eb, ROUSE_EINTERNAL,
                               "batch %lld: its input holds fewer requests than the %lld counted "
                               "when it was accepted",
                               (long long)r->id, (long long)r->n_items);
            break;
        }
        offs[pend] = at;
        lens[pend] = (int64_t)len;
        if (++pend == ITEMS_PER_INSERT) {
            rc = batch_items_flush(s, r, offs, lens, pend, eb);
            pend = 0;
        }
    }
    if (rc == 0 && pend > 0) rc = batch_items_flush(s, r, offs, lens, pend, eb);
    if (rc < 0) return rc;
    *n_new = r->n_created - from;
    sqlite3_stmt *st;
    if ((rc = stmt(s, SQL_BATCH_PROGRESS, &st, eb)) < 0) return rc;
    sqlite3_bind_int64(st, 1, r->id);
    sqlite3_bind_int64(st, 2, r->n_created);
    if (r->n_created < r->n_items)
        sqlite3_bind_int64(st, 3, (int64_t)*off);
    else
        sqlite3_bind_null(st, 3);
    return step_done(s, st, "recording a batch's creation", eb);
}

/* Reserves n job ids: *first_id is the first. */
static int reserve_ids(store *s, int64_t n, int64_t *first_id, rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    int rc = stmt(s, SQL_SEQ_ENSURE, &st, eb);
    if (rc < 0) return rc;
    if ((rc = step_done(s, st, "reserving job ids", eb)) < 0) return rc;
    if ((rc = stmt(s, SQL_SEQ_RESERVE, &st, eb)) < 0) return rc;
    sqlite3_bind_int64(st, 1, n);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) *first_id = sqlite3_column_int64(st, 0) - n + 1;
    rc = src == SQLITE_ROW ? 0 : store_db_error(s, eb, src, "reserving job ids");
    store_stmt_done(st);
    return rc;
}

int jobs_batch_create_tx(store *s, const batch_new *b, int64_t *id, int64_t *n_items,
                         rouse_errbuf *eb)
{
    input_map in;
    int rc = input_open(b->input_path, b->input_digest, &in, eb);
    if (rc < 0) return rc;
    /* The whole input is checked first: a batch is accepted whole or not
     * at all, and its items are counted before any is created. */
    int64_t n = 0, lineno = 0, at;
    size_t off = 0, len;
    while (next_line(&in, &off, &lineno, &at, &len)) {
        if ((int64_t)len > b->max_line) {
            rc = rouse_err_set(eb, ROUSE_ETOOBIG,
                               "input line %lld: %zu bytes, over the limit of %lld",
                               (long long)lineno, len, (long long)b->max_line);
            break;
        }
        if (n == b->max_items) {
            rc = rouse_err_set(eb, ROUSE_EBUSY,
                               "input: more than %lld requests, over the function's queue room",
                               (long long)b->max_items);
            break;
        }
        n++;
    }
    if (rc == 0 && n == 0)
        rc = rouse_err_set(eb, ROUSE_EINVAL, "input: the file holds no request (one per line)");
    batch_row r = {
        .version = b->version, .created_ms = b->now_ms, .n_items = n, .function = b->function};
    if (rc < 0 || (rc = reserve_ids(s, n, &r.first_id, eb)) < 0) goto out;
    sqlite3_stmt *st;
    if ((rc = stmt(s, SQL_BATCH_INSERT, &st, eb)) < 0) goto out;
    sqlite3_bind_text(st, 1, b->function, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, b->version);
    sqlite3_bind_text(st, 3, b->input_digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, n);
    sqlite3_bind_int64(st, 5, b->now_ms);
    sqlite3_bind_int64(st, 6, r.first_id);
    if ((rc = step_done(s, st, "recording a batch", eb)) < 0) goto out;
    r.id = *id = sqlite3_last_insert_rowid(store_db(s));
    if ((rc = stmt(s, SQL_BATCH_COUNTS_INIT, &st, eb)) < 0) goto out;
    sqlite3_bind_int64(st, 1, r.id);
    sqlite3_bind_int64(st, 2, n);
    if ((rc = step_done(s, st, "counting a batch's items", eb)) < 0) goto out;
    size_t from = 0;
    int64_t made;
    if ((rc = create_items(s, &r, &in, &from, b->chunk > 0 ? b->chunk : n, &made, eb)) < 0)
        goto out;
    *n_items = n;
out:
    input_close(&in);
    return rc;
}

int jobs_batch_extend_tx(store *s, int64_t id, const char *data_dir, int64_t max, int64_t *n_new,
                         bool *complete, rouse_errbuf *eb)
{
    *n_new = 0;
    *complete = false;
    sqlite3_stmt *st;
    int rc = stmt(s, SQL_BATCH_CREATING, &st, eb);
    if (rc < 0) return rc;
    sqlite3_bind_int64(st, 1, id);
    char function[STORE_NAME_MAX + 1], digest[BLOB_DIGEST_LEN + 1];
    batch_row r = {.id = id, .function = function};
    int64_t off = -1;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        copy_col(st, 0, function, sizeof(function));
        r.version = sqlite3_column_int64(st, 1);
        copy_col(st, 2, digest, sizeof(digest));
        r.n_items = sqlite3_column_int64(st, 3);
        r.created_ms = sqlite3_column_int64(st, 4);
        r.first_id = sqlite3_column_int64(st, 5);
        r.n_created = sqlite3_column_int64(st, 6);
        if (sqlite3_column_type(st, 7) != SQLITE_NULL) off = sqlite3_column_int64(st, 7);
    } else if (src == SQLITE_DONE) {
        rc = rouse_err_set(eb, ROUSE_ENOTFOUND, "no batch %lld", (long long)id);
    } else {
        rc = store_db_error(s, eb, src, "reading a batch");
    }
    store_stmt_done(st);
    if (rc < 0) return rc;
    if (off < 0) {
        *complete = true;
        return 0;
    }
    blobstore *bs;
    char path[PATH_MAX];
    if ((rc = blob_open_shared(data_dir, &bs, eb)) < 0) return rc;
    int prc = blob_path(bs, digest, path, sizeof(path));
    blob_close(bs);
    if (prc != 0)
        return rouse_err_set(eb, ROUSE_EINTERNAL, "batch %lld: bad input digest", (long long)id);
    input_map in;
    if ((rc = input_open(path, digest, &in, eb)) < 0) return rc;
    size_t from = (size_t)off;
    rc = create_items(s, &r, &in, &from, max, n_new, eb);
    input_close(&in);
    if (rc == 0) *complete = r.n_created == r.n_items;
    return rc;
}

static const char SQL_CREATING[] =
    "SELECT id, function FROM batches WHERE create_off IS NOT NULL ORDER BY id";

int jobs_creating_batches(store *s, int (*fn)(void *user, int64_t id, const char *function),
                          void *user, rouse_errbuf *eb)
{
    store_lock(s);
    sqlite3_stmt *st;
    int rc = stmt(s, SQL_CREATING, &st, eb);
    if (rc < 0) goto out_unlock;
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *f = (const char *)sqlite3_column_text(st, 1);
        if (f && fn(user, sqlite3_column_int64(st, 0), f)) {
            src = SQLITE_DONE;
            break;
        }
    }
    if (src != SQLITE_DONE) rc = store_db_error(s, eb, src, "listing batches being created");
    store_stmt_done(st);
out_unlock:
    store_unlock(s);
    return rc;
}

static const char SQL_BATCH_GET[] =
    "SELECT function, version, input_digest, n_items, created_ms, finished_ms, output_digest,"
    " errors_digest, expires_ms, COALESCE(n_created, n_items) FROM batches WHERE id = ?1";
static const char SQL_BATCH_STATES[] = "SELECT state, n FROM batch_counts WHERE batch = ?1";

/* The batch row and its counts by state; lock held. */
static int batch_read(store *s, int64_t id, batch_info *out, rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    out->id = id;
    sqlite3_stmt *st;
    int rc = stmt(s, SQL_BATCH_GET, &st, eb);
    if (rc < 0) return rc;
    sqlite3_bind_int64(st, 1, id);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        copy_col(st, 0, out->function, sizeof(out->function));
        out->version = sqlite3_column_int64(st, 1);
        copy_col(st, 2, out->input_digest, sizeof(out->input_digest));
        out->n_items = sqlite3_column_int64(st, 3);
        out->created_ms = sqlite3_column_int64(st, 4);
        out->finished_ms = sqlite3_column_int64(st, 5);
        copy_col(st, 6, out->output_digest, sizeof(out->output_digest));
        copy_col(st, 7, out->errors_digest, sizeof(out->errors_digest));
        out->expires_ms = sqlite3_column_int64(st, 8);
        out->n_created = sqlite3_column_int64(st, 9);
    } else if (src == SQLITE_DONE) {
        rc = rouse_err_set(eb, ROUSE_ENOTFOUND, "no batch %lld", (long long)id);
    } else {
        rc = store_db_error(s, eb, src, "reading a batch");
    }
    store_stmt_done(st);
    if (rc < 0) return rc;
    if ((rc = stmt(s, SQL_BATCH_STATES, &st, eb)) < 0) return rc;
    sqlite3_bind_int64(st, 1, id);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int k = sqlite3_column_int(st, 0);
        if (k >= 0 && k < JOB_STATE_COUNT) out->counts[k] = sqlite3_column_int64(st, 1);
    }
    if (src != SQLITE_DONE) rc = store_db_error(s, eb, src, "counting a batch's items");
    store_stmt_done(st);
    return rc;
}

int jobs_batch_get(store *s, int64_t id, batch_info *out, rouse_errbuf *eb)
{
    store_lock(s);
    int rc = batch_read(s, id, out, eb);
    store_unlock(s);
    return rc;
}

static const char SQL_BATCH_RESULTS[] =
    "SELECT batch_index, id, state, result, last_error, status, result_digest FROM jobs"
    " WHERE batch = ?1 ORDER BY batch_index";
static const char SQL_BATCH_DONE[] =
    "UPDATE batches SET finished_ms = ?2, expires_ms = ?3, output_digest = ?4,"
    " errors_digest = ?5 WHERE id = ?1";

/* Appends a result line: the stored reply when it is one line of JSON,
 * else a JSON string of it. */
static int append_result(rouse_buf *b, const char *data, size_t len)
{
    bool one_line = len > 0 && (data[0] == '{' || data[0] == '[') && !memchr(data, '\n', len - 1);
    while (one_line && len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    if (one_line) return rouse_buf_append(b, data, len);
    return json_write_string(b, data, len);
}

static int write_blob(blobstore *bs, const rouse_buf *b, char *digest, rouse_errbuf *eb)
{
    blob_writer *w;
    int rc = blob_write_begin(bs, UINT64_MAX, &w, eb);
    if (rc < 0) return rc;
    if ((rc = blob_write(w, b->data ? b->data : "", b->len, eb)) < 0) {
        blob_write_abort(w);
        return rc;
    }
    uint64_t size;
    return blob_write_commit(w, digest, &size, eb);
}

int jobs_batch_finish_tx(store *s, int64_t id, const char *data_dir, int64_t now_ms,
                         int64_t expires_ms, bool *done, rouse_errbuf *eb)
{
    batch_info bi;
    *done = false;
    int rc = batch_read(s, id, &bi, eb);
    if (rc < 0) return rc;
    if (bi.output_digest[0]) {
        *done = true;
        return 0;
    }
    /* Items not created yet count as queued; and the output waits for the
     * creation to end whatever the counts say. */
    if (bi.n_created < bi.n_items || bi.counts[JOB_QUEUED] + bi.counts[JOB_RUNNING] > 0) return 0;
    rouse_buf out, errs;
    rouse_buf_init(&out);
    rouse_buf_init(&errs);
    sqlite3_stmt *st;
    if ((rc = stmt(s, SQL_BATCH_RESULTS, &st, eb)) < 0) goto out_bufs;
    sqlite3_bind_int64(st, 1, id);
    int src;
    while (rc == 0 && (src = sqlite3_step(st)) == SQLITE_ROW) {
        int state = sqlite3_column_int(st, 2);
        if (state == JOB_SUCCEEDED && sqlite3_column_type(st, 3) != SQLITE_NULL) {
            rc = append_result(&out, (const char *)sqlite3_column_blob(st, 3),
                               (size_t)sqlite3_column_bytes(st, 3));
        } else if (state == JOB_SUCCEEDED) {
            const char *d = (const char *)sqlite3_column_text(st, 6);
            rc = rouse_buf_appendf(&out, "{\"result_blob\":\"%s\"}", d ? d : "");
        } else {
            const char *e = (const char *)sqlite3_column_text(st, 4);
            if (!e) e = state == JOB_CANCELLED ? "cancelled" : "failed";
            rc = rouse_buf_append_str(&out, "null");
            if (rc == 0)
                rc = rouse_buf_appendf(
                    &errs, "{\"index\":%lld,\"id\":\"%lld\",\"status\":%d,\"error\":",
                    (long long)sqlite3_column_int64(st, 0), (long long)sqlite3_column_int64(st, 1),
                    sqlite3_column_int(st, 5));
            if (rc == 0) rc = json_write_string(&errs, e, strlen(e));
            if (rc == 0) rc = rouse_buf_append_str(&errs, "}\n");
        }
        if (rc == 0) rc = rouse_buf_append_str(&out, "\n");
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = store_db_error(s, eb, src, "reading batch results");
    else if (rc < 0)
        rc = rouse_err_set(eb, rc, "out of memory writing a batch's output");
    store_stmt_done(st);
    if (rc < 0) goto out_bufs;
    blobstore *bs;
    if ((rc = blob_open_shared(data_dir, &bs, eb)) < 0) goto out_bufs;
    char out_digest[BLOB_DIGEST_LEN + 1], err_digest[BLOB_DIGEST_LEN + 1];
    rc = write_blob(bs, &out, out_digest, eb);
    if (rc == 0) rc = write_blob(bs, &errs, err_digest, eb);
    blob_close(bs);
    if (rc < 0) goto out_bufs;
    if ((rc = stmt(s, SQL_BATCH_DONE, &st, eb)) < 0) goto out_bufs;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now_ms);
    sqlite3_bind_int64(st, 3, expires_ms);
    sqlite3_bind_text(st, 4, out_digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, err_digest, -1, SQLITE_STATIC);
    if ((rc = step_done(s, st, "recording a batch's output", eb)) < 0) goto out_bufs;
    *done = true;
out_bufs:
    rouse_buf_fini(&out);
    rouse_buf_fini(&errs);
    return rc;
}
