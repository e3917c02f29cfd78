/*
 * Asynchronous jobs in PostgreSQL (jobs_pg.h).
 *
 * Parameters go as text, bodies and results as binary bytea; a failing
 * statement is ROUSE_EIO with PostgreSQL's message (a lost connection too:
 * the caller reconnects).
 */
#include "store/jobs_pg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/sha256.h"

#include "store/batch_lines.h"
#include "store/pg_util.h"

#define I64(buf, v) (snprintf((buf), sizeof(buf), "%" PRId64, (int64_t)(v)), (buf))

/* pg_connect's connection: libpq's notices dropped, ROUSE_EUNAVAILABLE
 * with libpq's message when PostgreSQL cannot be reached. */
int jobs_pg_connect(const char *url, PGconn **out, rouse_errbuf *eb)
{
    return pg_connect(url, out, eb);
}

/* A statement's error as ROUSE_EIO (what: what it did). */
static int pg_fail(PGconn *c, PGresult *r, const char *what, rouse_errbuf *eb)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    msg[strcspn(msg, "\n")] = '\0';
    PQclear(r);
    return rouse_err_set(eb, ROUSE_EIO, "PostgreSQL, %s: %s", what, msg);
}

/* Runs sql with n text parameters (binary where lens[i] > 0 says so);
 * *out: the result when it succeeded. */
static int run(PGconn *c, const char *sql, int n, const char *const *vals, const int *lens,
               const int *fmts, int result_binary, PGresult **out, const char *what,
               rouse_errbuf *eb)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, lens, fmts, result_binary);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return pg_fail(c, r, what, eb);
    if (out)
        *out = r;
    else
        PQclear(r);
    return 0;
}

/* Statements without parameters (several of them, for a migration). */
static int exec_simple(PGconn *c, const char *sql, const char *what, rouse_errbuf *eb)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return pg_fail(c, r, what, eb);
    PQclear(r);
    return 0;
}

static int64_t col_i64(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void col_text(PGresult *r, int row, int col, char *dst, size_t cap)
{
    snprintf(dst, cap, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

/* --- schema ------------------------------------------------------------------ */

static const char *const MIGRATIONS[] = {
    /* 1: jobs and their bodies. */
    "CREATE TABLE jobs("
    "  id bigserial PRIMARY KEY,"
    "  function text NOT NULL,"
    "  version bigint NOT NULL,"
    "  state int NOT NULL DEFAULT 0,"
    "  attempts int NOT NULL DEFAULT 0,"
    "  created_ms bigint NOT NULL,"
    "  started_ms bigint,"
    "  finished_ms bigint,"
    "  run_after_ms bigint NOT NULL DEFAULT 0,"
    "  expires_ms bigint,"
    "  status int,"
    "  last_error text,"
    "  idem_key text,"
    "  body_sha text,"
    "  callback text,"
    "  cb_state int NOT NULL DEFAULT 0,"
    "  cb_attempts int NOT NULL DEFAULT 0,"
    "  cb_error text,"
    "  result bytea,"
    "  result_type text,"
    "  result_json_len bigint,"
    "  node text,"
    "  holder text,"
    "  lease_until_ms bigint NOT NULL DEFAULT 0,"
    "  published boolean NOT NULL DEFAULT false,"
    "  drives int NOT NULL DEFAULT 0);"
    "CREATE UNIQUE INDEX jobs_idem ON jobs(function, idem_key) WHERE idem_key IS NOT NULL;"
    "CREATE INDEX jobs_active ON jobs(function) WHERE state IN (0, 1);"
    "CREATE INDEX jobs_unpublished ON jobs(created_ms) WHERE state = 0 AND NOT published;"
    "CREATE INDEX jobs_expiry ON jobs(expires_ms) WHERE expires_ms IS NOT NULL;"
    "CREATE TABLE job_bodies("
    "  id bigint PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,"
    "  json_len bigint NOT NULL,"
    "  body bytea NOT NULL);",
    /* 2: batch files. A batch's input is kept whole (stored uncompressed,
     * so that a chunk's window is read without the rest); its items are
     * jobs whose bodies are their lines, created in chunks from create_off
     * on (NULL once all exist, progress_ms: the last chunk's time); its
     * output and errors are written once, beside it. */
    "CREATE TABLE batches("
    "  id bigserial PRIMARY KEY,"
    "  function text NOT NULL,"
    "  version bigint NOT NULL,"
    "  input_digest text NOT NULL,"
    "  n_items bigint NOT NULL,"
    "  n_created bigint NOT NULL DEFAULT 0,"
    "  create_off bigint,"
    "  line_max bigint NOT NULL,"
    "  progress_ms bigint NOT NULL,"
    "  created_ms bigint NOT NULL,"
    "  finished_ms bigint,"
    "  expires_ms bigint,"
    "  output_digest text,"
    "  errors_digest text);"
    "CREATE INDEX batches_open ON batches(id) WHERE output_digest IS NULL;"
    "CREATE INDEX batches_expiry ON batches(expires_ms) WHERE expires_ms IS NOT NULL;"
    "CREATE TABLE batch_data("
    "  id bigint PRIMARY KEY REFERENCES batches(id) ON DELETE CASCADE,"
    "  input bytea NOT NULL,"
    "  output bytea,"
    "  errors bytea);"
    "ALTER TABLE batch_data ALTER COLUMN input SET STORAGE EXTERNAL;"
    "ALTER TABLE jobs ADD COLUMN batch bigint REFERENCES batches(id) ON DELETE CASCADE,"
    "  ADD COLUMN batch_index bigint;"
    "CREATE INDEX jobs_batch ON jobs(batch, state) WHERE batch IS NOT NULL;",
};

int jobs_pg_migrate(PGconn **c, rouse_errbuf *eb)
{
    return pg_migrate(c, "jobs", MIGRATIONS, (int)(sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0])),
                      eb);
}

/* --- enqueue ------------------------------------------------------------------ */

int jobs_pg_enqueue(PGconn *c, const job_new *j, int64_t *id, bool *existed, bool *published,
                    rouse_errbuf *eb)
{
    *existed = false;
    *published = false;
    bool keyed = j->idem_key && *j->idem_key;
    char vb[24], nb[24], jb[24];
    int rc = exec_simple(c, "BEGIN", "accepting a job", eb);
    if (rc < 0) return rc;
    PGresult *r = NULL;
    if (keyed) {
        /* Two nodes given the same key at once: the unique index lets one
         * insert; the other waits for its commit, then reads its job. */
        const char *kv[] = {j->function, j->idem_key};
        if ((rc = run(c,
                      "SELECT id, body_sha, created_ms, published FROM jobs WHERE function = $1"
                      " AND idem_key = $2 FOR UPDATE",
                      2, kv, NULL, NULL, 0, &r, "reading an idempotency key", eb)) < 0)
            goto out_rollback;
        if (PQntuples(r) == 1) {
            int64_t old = col_i64(r, 0, 0);
            bool same = j->body_sha && strcmp(PQgetvalue(r, 0, 1), j->body_sha) == 0;
            int64_t created = col_i64(r, 0, 2);
            bool pub = PQgetvalue(r, 0, 3)[0] == 't';
            PQclear(r);
            if (j->now_ms - created < j->idem_window_ms) {
                if (!same) {
                    rc = rouse_err_set(eb, ROUSE_ESTATE,
                                       "Idempotency-Key '%s' was used for job %lld with a "
                                       "different body",
                                       j->idem_key, (long long)old);
                    goto out_rollback;
                }
                *id = old;
                *existed = true;
                *published = pub;
                return exec_simple(c, "COMMIT", "accepting a job", eb);
            }
            if ((rc = run(c, "UPDATE jobs SET idem_key = NULL WHERE function = $1 AND idem_key = $2",
                          2, kv, NULL, NULL, 0, NULL, "freeing an idempotency key", eb)) < 0)
                goto out_rollback;
        } else {
            PQclear(r);
        }
    }
    const char *vals[] = {j->function,
                          I64(vb, j->version),
                          I64(nb, j->now_ms),
                          keyed ? j->idem_key : NULL,
                          keyed ? j->body_sha : NULL,
                          j->callback && *j->callback ? j->callback : NULL,
                          j->callback && *j->callback ? "1" : "0"};
    if ((rc = run(c,
                  "INSERT INTO jobs(function, version, created_ms, idem_key, body_sha, callback,"
                  " cb_state) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                  " ON CONFLICT (function, idem_key) WHERE idem_key IS NOT NULL DO NOTHING"
                  " RETURNING id",
                  7, vals, NULL, NULL, 0, &r, "accepting a job", eb)) < 0)
        goto out_rollback;
    if (PQntuples(r) != 1) {
        /* Taken meanwhile by another node: that job, once committed. */
        PQclear(r);
        PQclear(PQexec(c, "ROLLBACK"));
        return jobs_pg_enqueue(c, j, id, existed, published, eb);
    }
    *id = col_i64(r, 0, 0);
    PQclear(r);
    char ib[24];
    const char *bv[] = {I64(ib, *id), I64(jb, j->json_len), j->body_len ? j->body : ""};
    int lens[] = {0, 0, (int)j->body_len};
    int fmts[] = {0, 0, 1};
    if ((rc = run(c, "INSERT INTO job_bodies(id, json_len, body) VALUES ($1, $2, $3)", 3, bv,
                  lens, fmts, 0, NULL, "recording a job's body", eb)) < 0)
        goto out_rollback;
    return exec_simple(c, "COMMIT", "accepting a job", eb);

out_rollback:
    PQclear(PQexec(c, "ROLLBACK"));
    return rc;
}

/* One round trip, and no wait for the flush: a mark lost to a crash only
 * has the sweep publish the job again, which JetStream drops as a
 * duplicate (its message id). */
int jobs_pg_mark_published(PGconn *c, int64_t id, rouse_errbuf *eb)
{
    char sql[200];
    snprintf(sql, sizeof(sql),
             "BEGIN; SET LOCAL synchronous_commit TO off;"
             " UPDATE jobs SET published = true WHERE id = %" PRId64 " AND NOT published; COMMIT",
             id);
    int rc = exec_simple(c, sql, "marking a job published", eb);
    if (rc < 0 && PQtransactionStatus(c) != PQTRANS_IDLE) PQclear(PQexec(c, "ROLLBACK"));
    return rc;
}

/* --- leases ---------------------------------------------------------------------- */

int jobs_pg_lease(PGconn *c, int64_t id, const jobs_pg_holder *h, int64_t now_ms, job_lease *l,
                  char **body, size_t *len, int64_t *json_len, int64_t *wait_ms, rouse_errbuf *eb)
{
    char ib[24], nb[24], ub[24];
    const char *v[] = {I64(ib, id), h->node, h->holder, I64(nb, now_ms),
                       I64(ub, now_ms + h->lease_ms)};
    PGresult *r = NULL;
    *body = NULL;
    *wait_ms = 0;
    int rc = run(c,
                 "UPDATE jobs SET state = 1, attempts = attempts + 1, node = $2, holder = $3,"
                 " started_ms = $4, lease_until_ms = $5 WHERE id = $1 AND"
                 " ((state = 0 AND run_after_ms <= $4) OR (state = 1 AND lease_until_ms < $4))"
                 " RETURNING version, attempts, created_ms, callback IS NOT NULL",
                 5, v, NULL, NULL, 0, &r, "leasing a job", eb);
    if (rc < 0) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        if ((rc = run(c, "SELECT state, run_after_ms, lease_until_ms FROM jobs WHERE id = $1", 1,
                      v, NULL, NULL, 0, &r, "reading a job", eb)) < 0)
            return rc;
        int n = PQntuples(r);
        int state = n ? (int)col_i64(r, 0, 0) : -1;
        int64_t at = state == JOB_QUEUED ? col_i64(r, 0, 1) : n ? col_i64(r, 0, 2) : 0;
        PQclear(r);
        if (state == JOB_QUEUED || state == JOB_RUNNING) {
            *wait_ms = at > now_ms ? at - now_ms : 1;
            return rouse_err_set(eb, ROUSE_EBUSY, "job %lld is not due", (long long)id);
        }
        return rouse_err_set(eb, ROUSE_ESTATE, "job %lld is done with", (long long)id);
    }
    memset(l, 0, sizeof(*l));
    l->id = id;
    l->version = col_i64(r, 0, 0);
    l->attempts = (int)col_i64(r, 0, 1);
    l->created_ms = col_i64(r, 0, 2);
    l->has_callback = PQgetvalue(r, 0, 3)[0] == 't';
    l->body_off = l->body_len = -1;
    PQclear(r);
    if ((rc = run(c, "SELECT body, json_len FROM job_bodies WHERE id = $1", 1, v, NULL, NULL, 1,
                  &r, "reading a job's body", eb)) < 0)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return rouse_err_set(eb, ROUSE_EIO, "job %lld has no body", (long long)id);
    }
    int n = PQgetlength(r, 0, 0);
    *body = malloc((size_t)n + 1);
    if (!*body) {
        PQclear(r);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading a job's body");
    }
    memcpy(*body, PQgetvalue(r, 0, 0), (size_t)n);
    (*body)[n] = '\0';
    *len = (size_t)n;
    /* Binary int8, big-endian. */
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, 0, 1);
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | p[i];
    *json_len = (int64_t)x;
    PQclear(r);
    return 0;
}

int jobs_pg_renew(PGconn *c, const jobs_pg_holder *h, const int64_t *ids, int n, int64_t until_ms,
                  rouse_errbuf *eb)
{
    if (n <= 0) return 0;
    char *arr = malloc((size_t)n * 22 + 3);
    if (!arr) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory renewing leases");
    size_t at = 0;
    arr[at++] = '{';
    for (int i = 0; i < n; i++)
        at += (size_t)sprintf(arr + at, "%s%" PRId64, i ? "," : "", ids[i]);
    arr[at++] = '}';
    arr[at] = '\0';
    char ub[24];
    const char *v[] = {h->holder, I64(ub, until_ms), arr};
    int rc = run(c,
                 "UPDATE jobs SET lease_until_ms = $2 WHERE holder = $1 AND state = 1"
                 " AND id = ANY($3::bigint[])",
                 3, v, NULL, NULL, 0, NULL, "renewing leases", eb);
    free(arr);
    return rc;
}

int jobs_pg_settle(PGconn *c, const jobs_pg_holder *h, int attempts, const job_settle *x,
                   int64_t *batch, rouse_errbuf *eb)
{
    *batch = 0;
    char ib[24], ab[24], sb[24], nb[24], eb2[24], stb[24], jb[24];
    PGresult *r = NULL;
    int rc;
    if (x->state == JOB_QUEUED) {
        const char *v[] = {I64(ib, x->id),     h->holder,
                           I64(ab, attempts),  I64(nb, x->run_after_ms),
                           I64(stb, x->status), x->error,
                           x->uncount ? "1" : "0"};
        rc = run(c,
                 "UPDATE jobs SET state = 0, run_after_ms = $4, status = $5, last_error = $6,"
                 " attempts = attempts - $7, holder = NULL, lease_until_ms = 0"
                 " WHERE id = $1 AND state = 1 AND holder = $2 AND attempts = $3"
                 " RETURNING COALESCE(batch, 0)",
                 7, v, NULL, NULL, 0, &r, "recording a run's end", eb);
    } else {
        const char *v[] = {I64(ib, x->id),
                           h->holder,
                           I64(ab, attempts),
                           I64(sb, x->state),
                           I64(nb, x->now_ms),
                           I64(eb2, x->expires_ms),
                           I64(stb, x->status),
                           x->error,
                           x->result ? (const char *)x->result : NULL,
                           x->result_type,
                           x->result ? I64(jb, x->result_json_len) : NULL};
        int lens[11] = {0};
        int fmts[11] = {0};
        lens[8] = (int)x->result_len;
        fmts[8] = 1;
        rc = run(c,
                 "UPDATE jobs SET state = $4, finished_ms = $5, expires_ms = $6, status = $7,"
                 " last_error = $8, result = $9, result_type = $10, result_json_len = $11,"
                 " lease_until_ms = 0"
                 " WHERE id = $1 AND state = 1 AND holder = $2 AND attempts = $3"
                 " RETURNING COALESCE(batch, 0)",
                 11, v, lens, fmts, 0, &r, "recording a run's end", eb);
    }
    if (rc < 0) return rc;
    int n = PQntuples(r);
    if (n == 1) *batch = col_i64(r, 0, 0);
    PQclear(r);
    if (n == 0)
        return rouse_err_set(eb, ROUSE_ESTATE, "job %lld: this run's lease is no longer held",
                             (long long)x->id);
    return 0;
}

/* --- small changes ----------------------------------------------------------------- */

static int state_of(PGconn *c, int64_t id, int *state, char *function, rouse_errbuf *eb)
{
    char ib[24];
    const char *v[] = {I64(ib, id)};
    PGresult *r = NULL;
    int rc = run(c, "SELECT state, function FROM jobs WHERE id = $1", 1, v, NULL, NULL, 0, &r,
                 "reading a job", eb);
    if (rc < 0) return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return rouse_err_set(eb, ROUSE_ENOTFOUND, "no job %lld", (long long)id);
    }
    *state = (int)col_i64(r, 0, 0);
    if (function) col_text(r, 0, 1, function, STORE_NAME_MAX + 1);
    PQclear(r);
    return 0;
}

int jobs_pg_cancel(PGconn *c, const jobs_pg_holder *h, int64_t id, int64_t now_ms,
                   int64_t expires_ms, bool leased_ok, int *state, rouse_errbuf *eb)
{
    char ib[24], nb[24], xb[24];
    const char *v[] = {I64(ib, id), I64(nb, now_ms), I64(xb, expires_ms), h->holder,
                       leased_ok ? "t" : "f"};
    PGresult *r = NULL;
    int rc = run(c,
                 "UPDATE jobs SET state = 4, finished_ms = $2, expires_ms = $3, lease_until_ms = 0"
                 " WHERE id = $1 AND (state = 0 OR (state = 1 AND $5::boolean AND holder = $4))"
                 " RETURNING id",
                 5, v, NULL, NULL, 0, &r, "cancelling a job", eb);
    if (rc < 0) return rc;
    int n = PQntuples(r);
    PQclear(r);
    if ((rc = state_of(c, id, state, NULL, eb)) < 0) return rc;
    if (n == 1) {
        *state = leased_ok ? JOB_RUNNING : JOB_QUEUED;
        return 0;
    }
    return rouse_err_set(eb, ROUSE_ESTATE, "job %lld is %s: only a queued job can be cancelled",
                         (long long)id, job_state_name(*state));
}

int jobs_pg_retry(PGconn *c, int64_t id, char *function, int *state, int *drives,
                  rouse_errbuf *eb)
{
    int rc = state_of(c, id, state, function, eb);
    if (rc < 0) return rc;
    char ib[24];
    const char *v[] = {I64(ib, id)};
    PGresult *r = NULL;
    rc = run(c,
             "UPDATE jobs SET state = 0, attempts = 0, run_after_ms = 0, started_ms = NULL,"
             " finished_ms = NULL, expires_ms = NULL, status = NULL, last_error = NULL,"
             " result = NULL, result_type = NULL, result_json_len = NULL, holder = NULL,"
             " published = false, drives = drives + 1,"
             " cb_state = CASE WHEN callback IS NULL THEN 0 ELSE 1 END, cb_attempts = 0,"
             " cb_error = NULL WHERE id = $1 AND state IN (3, 4) RETURNING drives",
             1, v, NULL, NULL, 0, &r, "re-driving a job", eb);
    if (rc < 0) return rc;
    int n = PQntuples(r);
    if (n == 1) *drives = (int)col_i64(r, 0, 0);
    PQclear(r);
    if (n == 0)
        return rouse_err_set(eb, ROUSE_ESTATE,
                             "job %lld is %s: only a failed or cancelled job can be retried",
                             (long long)id, job_state_name(*state));
    return 0;
}

int jobs_pg_expire(PGconn *c, int64_t now_ms, int64_t *n, rouse_errbuf *eb)
{
    char nb[24];
    const char *v[] = {I64(nb, now_ms)};
    PGresult *r = NULL;
    /* A batch's items go with their batch (its output is built from
     * them): removed with it, by the foreign key's cascade. */
    int rc = run(c,
                 "DELETE FROM jobs WHERE expires_ms IS NOT NULL AND expires_ms <= $1"
                 " AND batch IS NULL",
                 1, v, NULL, NULL, 0, &r, "removing expired jobs", eb);
    if (rc < 0) return rc;
    *n = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return run(c, "DELETE FROM batches WHERE expires_ms IS NOT NULL AND expires_ms <= $1", 1, v,
               NULL, NULL, 0, NULL, "removing expired batches", eb);
}

int jobs_pg_callback(PGconn *c, int64_t id, int cb_state, int attempts, const char *error,
                     rouse_errbuf *eb)
{
    char ib[24], sb[24], ab[24];
    const char *v[] = {I64(ib, id), I64(sb, cb_state), I64(ab, attempts), error};
    return run(c, "UPDATE jobs SET cb_state = $2, cb_attempts = $3, cb_error = $4 WHERE id = $1",
               4, v, NULL, NULL, 0, NULL, "recording a callback delivery", eb);
}

/* --- reads ------------------------------------------------------------------------- */

#define JOB_COLS                                                                                   \
    "id, function, version, state, attempts, created_ms, started_ms, finished_ms, run_after_ms,"   \
    " expires_ms, status, last_error, callback, cb_state, cb_attempts, cb_error, result_type,"     \
    " result_json_len, batch, batch_index"

static void read_job(PGresult *r, int row, job_info *j)
{
    memset(j, 0, sizeof(*j));
    j->id = col_i64(r, row, 0);
    col_text(r, row, 1, j->function, sizeof(j->function));
    j->version = col_i64(r, row, 2);
    j->state = (int)col_i64(r, row, 3);
    j->attempts = (int)col_i64(r, row, 4);
    j->created_ms = col_i64(r, row, 5);
    j->started_ms = col_i64(r, row, 6);
    j->finished_ms = col_i64(r, row, 7);
    j->run_after_ms = col_i64(r, row, 8);
    j->expires_ms = col_i64(r, row, 9);
    j->status = (int)col_i64(r, row, 10);
    col_text(r, row, 11, j->last_error, sizeof(j->last_error));
    col_text(r, row, 12, j->callback, sizeof(j->callback));
    j->cb_state = (int)col_i64(r, row, 13);
    j->cb_attempts = (int)col_i64(r, row, 14);
    col_text(r, row, 15, j->cb_error, sizeof(j->cb_error));
    col_text(r, row, 16, j->result_type, sizeof(j->result_type));
    j->result_json_len = PQgetisnull(r, row, 17) ? -1 : col_i64(r, row, 17);
    j->batch = col_i64(r, row, 18);
    j->batch_index = PQgetisnull(r, row, 19) ? -1 : col_i64(r, row, 19);
}

int jobs_pg_list(PGconn *c, const char *function, int state, int64_t after_id, int limit,
                 int (*fn)(void *user, const job_info *j), void *user, rouse_errbuf *eb)
{
    char sb[24], ab[24], lb[24];
    const char *v[] = {function, state >= 0 ? I64(sb, state) : NULL, I64(ab, after_id),
                       I64(lb, limit)};
    PGresult *r = NULL;
    int rc = run(c,
                 "SELECT " JOB_COLS " FROM jobs WHERE ($1::text IS NULL OR function = $1)"
                 " AND ($2::int IS NULL OR state = $2) AND id > $3 ORDER BY id LIMIT $4",
                 4, v, NULL, NULL, 0, &r, "listing jobs", eb);
    if (rc < 0) return rc;
    job_info j;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        read_job(r, i, &j);
        rc = fn(user, &j);
    }
    PQclear(r);
    return rc > 0 ? 0 : rc;
}

int jobs_pg_get(PGconn *c, int64_t id, bool with_result, job_info *j, rouse_errbuf *eb)
{
    char ib[24];
    const char *v[] = {I64(ib, id)};
    PGresult *r = NULL;
    int rc = run(c, "SELECT " JOB_COLS " FROM jobs WHERE id = $1", 1, v, NULL, NULL, 0, &r,
                 "reading a job", eb);
    if (rc < 0) return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return rouse_err_set(eb, ROUSE_ENOTFOUND, "no job %lld", (long long)id);
    }
    read_job(r, 0, j);
    PQclear(r);
    if (!with_result) return 0;
    if ((rc = run(c, "SELECT result FROM jobs WHERE id = $1 AND result IS NOT NULL", 1, v, NULL,
                  NULL, 1, &r, "reading a job's result", eb)) < 0)
        return rc;
    if (PQntuples(r) == 1) {
        int n = PQgetlength(r, 0, 0);
        j->result = malloc((size_t)n + 1);
        if (!j->result) {
            PQclear(r);
            return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading a job's result");
        }
        memcpy(j->result, PQgetvalue(r, 0, 0), (size_t)n);
        j->result[n] = '\0';
        j->result_len = (size_t)n;
    }
    PQclear(r);
    return 0;
}

int jobs_pg_unpublished(PGconn *c, int64_t before_ms, int max, int64_t *ids, int *drives,
                        char *functions, int *n, rouse_errbuf *eb)
{
    char bb[24], mb[24];
    const char *v[] = {I64(bb, before_ms), I64(mb, max)};
    PGresult *r = NULL;
    *n = 0;
    int rc = run(c,
                 "SELECT id, function, drives FROM jobs WHERE state = 0 AND NOT published"
                 " AND created_ms < $1 ORDER BY created_ms LIMIT $2",
                 2, v, NULL, NULL, 0, &r, "finding unpublished jobs", eb);
    if (rc < 0) return rc;
    for (int i = 0; i < PQntuples(r) && i < max; i++) {
        ids[i] = col_i64(r, i, 0);
        drives[i] = (int)col_i64(r, i, 2);
        col_text(r, i, 1, functions + (size_t)i * (STORE_NAME_MAX + 1), STORE_NAME_MAX + 1);
        (*n)++;
    }
    PQclear(r);
    return 0;
}

int jobs_pg_active(PGconn *c, int (*fn)(void *user, const char *function, int64_t n), void *user,
                   rouse_errbuf *eb)
{
    PGresult *r = NULL;
    /* A batch's items not created yet are queued ones too. */
    int rc = run(c,
                 "SELECT function, SUM(n) FROM (SELECT function, COUNT(*) AS n FROM jobs"
                 " WHERE state IN (0, 1) GROUP BY function UNION ALL SELECT function,"
                 " SUM(n_items - n_created) FROM batches WHERE create_off IS NOT NULL"
                 " GROUP BY function) t GROUP BY function",
                 0, NULL, NULL, NULL, 0, &r, "counting active jobs", eb);
    if (rc < 0) return rc;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = fn(user, PQgetvalue(r, i, 0), col_i64(r, i, 1));
    PQclear(r);
    return rc > 0 ? 0 : rc;
}

int jobs_pg_pending_callbacks(PGconn *c, const char *node, int (*fn)(void *user, int64_t id),
                              void *user, rouse_errbuf *eb)
{
    const char *v[] = {node};
    PGresult *r = NULL;
    int rc = run(c,
                 "SELECT id FROM jobs WHERE cb_state = 1 AND state IN (2, 3, 4) AND node = $1"
                 " ORDER BY id",
                 1, v, NULL, NULL, 0, &r, "finding callbacks to deliver", eb);
    if (rc < 0) return rc;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = fn(user, col_i64(r, i, 0));
    PQclear(r);
    return rc > 0 ? 0 : rc;
}

/* --- batch files -------------------------------------------------------------------- */

/* A chunk of items reads at least this much of the input at a time. */
#define WINDOW_MIN (4 << 20)

/* "{a,b,...}" of n numbers: owned, free(). */
static char *i64_array(const int64_t *v, int n)
{
    char *arr = malloc((size_t)n * 22 + 3);
    if (!arr) return NULL;
    size_t at = 0;
    arr[at++] = '{';
    for (int i = 0; i < n; i++)
        at += (size_t)sprintf(arr + at, "%s%" PRId64, i ? "," : "", v[i]);
    arr[at++] = '}';
    arr[at] = '\0';
    return arr;
}

static int64_t be_i64(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | u[i];
    return (int64_t)x;
}

static int32_t be_i32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (int32_t)((uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3]);
}

/* Inserts items first.. of batch id, the n lines at offs/lens of win,
 * with their bodies (the lines, json_len -1 as a line's is); their ids
 * appended to ids[*n_ids..]. One statement: its CTE inserts the jobs, its
 * main query their bodies. */
static int insert_items(PGconn *c, int64_t id, const char *function, int64_t version,
                        int64_t created_ms, int64_t first, const char *win, size_t win_len,
                        const int64_t *offs, const int64_t *lens, int n, int64_t *ids,
                        int *n_ids, rouse_errbuf *eb)
{
    char *ao = i64_array(offs, n), *al = i64_array(lens, n);
    if (!ao || !al) {
        free(ao);
        free(al);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory creating batch items");
    }
    char vb[24], cb[24], ib[24], fb[24];
    const char *v[] = {function, I64(vb, version), I64(cb, created_ms), I64(ib, id), ao, al,
                       I64(fb, first), win_len ? win : ""};
    int lens_[8] = {0, 0, 0, 0, 0, 0, 0, (int)win_len};
    int fmts[8] = {0, 0, 0, 0, 0, 0, 0, 1};
    PGresult *r = NULL;
    int rc = run(c,
                 "WITH l AS (SELECT o, n, k FROM unnest($5::bigint[], $6::bigint[])"
                 " WITH ORDINALITY AS t(o, n, k)),"
                 " ins AS (INSERT INTO jobs(function, version, created_ms, batch, batch_index)"
                 " SELECT $1, $2, $3, $4, $7 + k - 1 FROM l ORDER BY k RETURNING id, batch_index)"
                 " INSERT INTO job_bodies(id, json_len, body) SELECT ins.id, -1,"
                 " substring($8::bytea FROM (l.o + 1)::int FOR l.n::int) FROM ins"
                 " JOIN l ON ins.batch_index = $7 + l.k - 1 RETURNING id",
                 8, v, lens_, fmts, 0, &r, "recording batch items", eb);
    free(ao);
    free(al);
    if (rc < 0) return rc;
    for (int i = 0; i < PQntuples(r); i++)
        ids[(*n_ids)++] = col_i64(r, i, 0);
    PQclear(r);
    return 0;
}

/* Creates up to max more items of batch id inside the caller's
 * transaction (the batch's row locked first: two nodes extending the same
 * batch take turns). */
static int extend_tx(PGconn *c, int64_t id, int64_t max, int64_t now_ms, int64_t *ids,
                     int *n_ids, bool *complete, char *fn_out, rouse_errbuf *eb)
{
    char ib[24];
    const char *v1[] = {I64(ib, id)};
    PGresult *r = NULL;
    int rc = run(c,
                 "SELECT function, version, created_ms, n_items, n_created, create_off, line_max"
                 " FROM batches WHERE id = $1 FOR UPDATE",
                 1, v1, NULL, NULL, 0, &r, "reading a batch", eb);
    if (rc < 0) return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return rouse_err_set(eb, ROUSE_ENOTFOUND, "no batch %lld", (long long)id);
    }
    char function[STORE_NAME_MAX + 1];
    col_text(r, 0, 0, function, sizeof(function));
    int64_t version = col_i64(r, 0, 1), created_ms = col_i64(r, 0, 2), n_items = col_i64(r, 0, 3),
            n_created = col_i64(r, 0, 4), line_max = col_i64(r, 0, 6);
    bool creating = !PQgetisnull(r, 0, 5);
    int64_t from = col_i64(r, 0, 5);
    PQclear(r);
    if (fn_out) snprintf(fn_out, STORE_NAME_MAX + 1, "%s", function);
    if (!creating) {
        *complete = true;
        return 0;
    }
    int64_t want = line_max + 64 > WINDOW_MIN ? line_max + 64 : WINDOW_MIN;
    char fb[24], wb[24];
    const char *v2[] = {ib, I64(fb, from + 1), I64(wb, want)};
    if ((rc = run(c,
                  "SELECT substring(input FROM $2::int FOR $3::int), octet_length(input)::text"
                  " FROM batch_data WHERE id = $1",
                  3, v2, NULL, NULL, 1, &r, "reading a batch's input", eb)) < 0)
        return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return rouse_err_set(eb, ROUSE_EINTERNAL, "batch %lld has no input", (long long)id);
    }
    const char *win = PQgetvalue(r, 0, 0);
    size_t win_len = (size_t)PQgetlength(r, 0, 0);
    int64_t total = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    bool whole = from + (int64_t)win_len >= total;
    int64_t *offs = malloc((size_t)(max > 0 ? max : 1) * sizeof(*offs));
    int64_t *lens = malloc((size_t)(max > 0 ? max : 1) * sizeof(*lens));
    int k = 0;
    size_t off = 0, lo, len;
    int64_t lineno = 0;
    if (!offs || !lens) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory creating batch items");
        goto out_free;
    }
    while (k < max && n_created + k < n_items &&
           batch_next_line(win, win_len, whole, &off, &lineno, &lo, &len)) {
        offs[k] = (int64_t)lo;
        lens[k] = (int64_t)len;
        k++;
    }
    if (k == 0 && n_created < n_items && (whole || off == 0)) {
        rc = rouse_err_set(eb, ROUSE_EINTERNAL,
                           "batch %lld: its input holds fewer requests than the %lld counted "
                           "when it was accepted",
                           (long long)id, (long long)n_items);
        goto out_free;
    }
    if (k > 0 && (rc = insert_items(c, id, function, version, created_ms, n_created, win, win_len,
                                    offs, lens, k, ids, n_ids, eb)) < 0)
        goto out_free;
    n_created += k;
    *complete = n_created >= n_items;
    char nb[24], ob[24], pb[24];
    const char *v3[] = {ib, I64(nb, n_created), *complete ? NULL : I64(ob, from + (int64_t)off),
                        I64(pb, now_ms)};
    rc = run(c, "UPDATE batches SET n_created = $2, create_off = $3, progress_ms = $4 WHERE id = $1",
             4, v3, NULL, NULL, 0, NULL, "recording a batch's creation", eb);
out_free:
    free(offs);
    free(lens);
    PQclear(r);
    return rc;
}

int jobs_pg_batch_create(PGconn *c, const batch_new *b, int64_t *id, int64_t *n_items,
                         int64_t *ids, int *n_ids, bool *complete, rouse_errbuf *eb)
{
    *n_ids = 0;
    *complete = false;
    int fd = open(b->input_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rouse_err_set(eb, errno == ENOENT ? ROUSE_ENOTFOUND : ROUSE_EIO,
                             "input: cannot open blob %s: %s", b->input_digest, strerror(errno));
    struct stat sb;
    const char *map = NULL;
    size_t size = 0;
    int rc = 0;
    if (fstat(fd, &sb) < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "input: blob %s: %s", b->input_digest, strerror(errno));
    } else if (sb.st_size > INT_MAX) {
        rc = rouse_err_set(eb, ROUSE_ETOOBIG, "input: %lld bytes, over the limit of %d with "
                           "several nodes", (long long)sb.st_size, INT_MAX);
    } else if (sb.st_size > 0) {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            rc = rouse_err_set(eb, ROUSE_EIO, "input: reading blob %s failed: %s",
                               b->input_digest, strerror(errno));
        else
            map = m, size = (size_t)sb.st_size;
    }
    close(fd);
    if (rc < 0) return rc;
    /* The whole input is checked first: a batch is accepted whole or not
     * at all, and its items are counted before any is created. */
    int64_t n = 0, lineno = 0, line_max = 0;
    size_t off = 0, lo, len;
    while (batch_next_line(map, size, true, &off, &lineno, &lo, &len)) {
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
        if ((int64_t)len > line_max) line_max = (int64_t)len;
        n++;
    }
    if (rc == 0 && n == 0)
        rc = rouse_err_set(eb, ROUSE_EINVAL, "input: the file holds no request (one per line)");
    if (rc < 0) goto out_unmap;
    if ((rc = exec_simple(c, "BEGIN", "accepting a batch", eb)) < 0) goto out_unmap;
    char vb[24], nb[24], mb[24], tb[24];
    const char *v[] = {b->function, I64(vb, b->version), b->input_digest, I64(nb, n),
                       I64(mb, line_max), I64(tb, b->now_ms)};
    PGresult *r = NULL;
    if ((rc = run(c,
                  "INSERT INTO batches(function, version, input_digest, n_items, create_off,"
                  " line_max, progress_ms, created_ms) VALUES ($1, $2, $3, $4, 0, $5, $6, $6)"
                  " RETURNING id",
                  6, v, NULL, NULL, 0, &r, "recording a batch", eb)) < 0)
        goto out_rollback;
    *id = col_i64(r, 0, 0);
    PQclear(r);
    char ib[24];
    const char *dv[] = {I64(ib, *id), size ? map : ""};
    int dl[] = {0, (int)size};
    int df[] = {0, 1};
    if ((rc = run(c, "INSERT INTO batch_data(id, input) VALUES ($1, $2)", 2, dv, dl, df, 0, NULL,
                  "recording a batch's input", eb)) < 0 ||
        (rc = extend_tx(c, *id, b->chunk > 0 ? b->chunk : n, b->now_ms, ids, n_ids, complete,
                        NULL, eb)) < 0 ||
        (rc = exec_simple(c, "COMMIT", "accepting a batch", eb)) < 0)
        goto out_rollback;
    *n_items = n;
    goto out_unmap;

out_rollback:
    PQclear(PQexec(c, "ROLLBACK"));
    *n_ids = 0;
out_unmap:
    if (map) munmap((void *)map, size);
    return rc;
}

int jobs_pg_batch_extend(PGconn *c, int64_t id, int64_t max, int64_t now_ms, int64_t *ids,
                         int *n_ids, bool *complete, char *function, rouse_errbuf *eb)
{
    *n_ids = 0;
    *complete = false;
    int rc = exec_simple(c, "BEGIN", "creating batch items", eb);
    if (rc < 0) return rc;
    if ((rc = extend_tx(c, id, max, now_ms, ids, n_ids, complete, function, eb)) < 0 ||
        (rc = exec_simple(c, "COMMIT", "creating batch items", eb)) < 0) {
        PQclear(PQexec(c, "ROLLBACK"));
        *n_ids = 0;
    }
    return rc;
}

int jobs_pg_mark_published_many(PGconn *c, const int64_t *ids, int n, rouse_errbuf *eb)
{
    if (n <= 0) return 0;
    char *arr = i64_array(ids, n);
    if (!arr) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory marking jobs published");
    const char *v[] = {arr};
    int rc = run(c, "UPDATE jobs SET published = true WHERE id = ANY($1::bigint[])", 1, v, NULL,
                 NULL, 0, NULL, "marking jobs published", eb);
    free(arr);
    return rc;
}

int jobs_pg_batch_get(PGconn *c, int64_t id, int part, batch_info *out, char **data, size_t *len,
                      rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    out->id = id;
    if (data) *data = NULL;
    char ib[24];
    const char *v[] = {I64(ib, id)};
    PGresult *r = NULL;
    int rc = run(c,
                 "SELECT function, version, input_digest, n_items, created_ms, finished_ms,"
                 " output_digest, errors_digest, expires_ms, n_created FROM batches WHERE id = $1",
                 1, v, NULL, NULL, 0, &r, "reading a batch", eb);
    if (rc < 0) return rc;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return rouse_err_set(eb, ROUSE_ENOTFOUND, "no batch %lld", (long long)id);
    }
    col_text(r, 0, 0, out->function, sizeof(out->function));
    out->version = col_i64(r, 0, 1);
    col_text(r, 0, 2, out->input_digest, sizeof(out->input_digest));
    out->n_items = col_i64(r, 0, 3);
    out->created_ms = col_i64(r, 0, 4);
    out->finished_ms = col_i64(r, 0, 5);
    col_text(r, 0, 6, out->output_digest, sizeof(out->output_digest));
    col_text(r, 0, 7, out->errors_digest, sizeof(out->errors_digest));
    out->expires_ms = col_i64(r, 0, 8);
    out->n_created = col_i64(r, 0, 9);
    PQclear(r);
    if ((rc = run(c, "SELECT state, COUNT(*) FROM jobs WHERE batch = $1 GROUP BY state", 1, v,
                  NULL, NULL, 0, &r, "counting a batch's items", eb)) < 0)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        int k = (int)col_i64(r, i, 0);
        if (k >= 0 && k < JOB_STATE_COUNT) out->counts[k] = col_i64(r, i, 1);
    }
    PQclear(r);
    /* Items not created yet count as queued. */
    out->counts[JOB_QUEUED] += out->n_items - out->n_created;
    if (part == 0 || !data || !out->output_digest[0]) return 0;
    if ((rc = run(c,
                  part == 1 ? "SELECT output FROM batch_data WHERE id = $1"
                            : "SELECT errors FROM batch_data WHERE id = $1",
                  1, v, NULL, NULL, 1, &r, "reading a batch's output", eb)) < 0)
        return rc;
    size_t n = PQntuples(r) == 1 ? (size_t)PQgetlength(r, 0, 0) : 0;
    if (!(*data = malloc(n + 1))) {
        PQclear(r);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading a batch's output");
    }
    if (n) memcpy(*data, PQgetvalue(r, 0, 0), n);
    (*data)[n] = '\0';
    *len = n;
    PQclear(r);
    return 0;
}

int jobs_pg_batch_left(PGconn *c, int64_t id, int64_t *left, rouse_errbuf *eb)
{
    char ib[24];
    const char *v[] = {I64(ib, id)};
    PGresult *r = NULL;
    int rc = run(c,
                 "SELECT (SELECT COUNT(*) FROM jobs WHERE batch = $1 AND state IN (0, 1))"
                 " + COALESCE((SELECT n_items - n_created FROM batches WHERE id = $1), 0)",
                 1, v, NULL, NULL, 0, &r, "counting a batch's pending items", eb);
    if (rc < 0) return rc;
    *left = col_i64(r, 0, 0);
    PQclear(r);
    return 0;
}

/* Appends a result line: the stored reply when it is one line of JSON,
 * else a JSON string of it (jobs_sqlite.c's rule). */
static int append_result(rouse_buf *b, const char *data, size_t len)
{
    bool one_line = len > 0 && (data[0] == '{' || data[0] == '[') && !memchr(data, '\n', len - 1);
    while (one_line && len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    if (one_line) return rouse_buf_append(b, data, len);
    return json_write_string(b, data, len);
}

static void digest_of(const rouse_buf *b, char *out)
{
    uint8_t d[ROUSE_SHA256_LEN];
    char hex[ROUSE_SHA256_HEX_LEN + 1];
    rouse_sha256_digest(b->data ? b->data : "", b->len, d);
    rouse_sha256_hex(d, hex);
    snprintf(out, STORE_DIGEST_LEN + 1, "sha256:%s", hex);
}

/* The output and errors of batch id from its items (in input order). */
static int build_output(PGconn *c, const char *idv, rouse_buf *out, rouse_buf *errs,
                        rouse_errbuf *eb)
{
    const char *v[] = {idv};
    PGresult *r = NULL;
    int rc = run(c,
                 "SELECT batch_index, id, state, status, result, last_error FROM jobs"
                 " WHERE batch = $1 ORDER BY batch_index",
                 1, v, NULL, NULL, 1, &r, "reading batch results", eb);
    if (rc < 0) return rc;
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        int64_t index = be_i64(PQgetvalue(r, i, 0)), id = be_i64(PQgetvalue(r, i, 1));
        int state = be_i32(PQgetvalue(r, i, 2));
        int status = PQgetisnull(r, i, 3) ? 0 : be_i32(PQgetvalue(r, i, 3));
        if (state == JOB_SUCCEEDED) {
            rc = append_result(out, PQgetisnull(r, i, 4) ? "" : PQgetvalue(r, i, 4),
                               (size_t)PQgetlength(r, i, 4));
        } else {
            const char *e = PQgetisnull(r, i, 5) ? NULL : PQgetvalue(r, i, 5);
            if (!e) e = state == JOB_CANCELLED ? "cancelled" : "failed";
            rc = rouse_buf_append_str(out, "null");
            if (rc == 0)
                rc = rouse_buf_appendf(errs,
                                       "{\"index\":%" PRId64 ",\"id\":\"%" PRId64
                                       "\",\"status\":%d,\"error\":",
                                       index, id, status);
            if (rc == 0) rc = json_write_string(errs, e, strlen(e));
            if (rc == 0) rc = rouse_buf_append_str(errs, "}\n");
        }
        if (rc == 0) rc = rouse_buf_append_str(out, "\n");
    }
    PQclear(r);
    return rc < 0 ? rouse_err_set(eb, ROUSE_ENOMEM, "out of memory writing a batch's output") : 0;
}

int jobs_pg_batch_finish(PGconn *c, int64_t id, int64_t now_ms, int64_t expires_ms, bool *done,
                         rouse_errbuf *eb)
{
    *done = false;
    int rc = exec_simple(c, "BEGIN", "writing a batch's output", eb);
    if (rc < 0) return rc;
    char ib[24];
    const char *v[] = {I64(ib, id)};
    PGresult *r = NULL;
    rouse_buf out, errs;
    rouse_buf_init(&out);
    rouse_buf_init(&errs);
    /* The batch's row locked: of two nodes finishing it at once, the
     * second finds the output written. */
    if ((rc = run(c,
                  "SELECT output_digest IS NOT NULL, create_off IS NOT NULL,"
                  " EXISTS (SELECT 1 FROM jobs WHERE batch = $1 AND state IN (0, 1)),"
                  " (SELECT MAX(expires_ms) FROM jobs WHERE batch = $1)"
                  " FROM batches WHERE id = $1 FOR UPDATE",
                  1, v, NULL, NULL, 0, &r, "reading a batch", eb)) < 0)
        goto out_rollback;
    if (PQntuples(r) != 1) {
        PQclear(r);
        rc = rouse_err_set(eb, ROUSE_ENOTFOUND, "no batch %lld", (long long)id);
        goto out_rollback;
    }
    bool written = PQgetvalue(r, 0, 0)[0] == 't', creating = PQgetvalue(r, 0, 1)[0] == 't',
         pending = PQgetvalue(r, 0, 2)[0] == 't';
    int64_t items_expire = col_i64(r, 0, 3);
    PQclear(r);
    if (written || creating || pending) {
        *done = written;
        rc = exec_simple(c, "COMMIT", "writing a batch's output", eb);
        goto out_bufs;
    }
    if ((rc = build_output(c, ib, &out, &errs, eb)) < 0) goto out_rollback;
    /* Without the function's result TTL: its items'. */
    if (expires_ms <= 0) expires_ms = items_expire > 0 ? items_expire : now_ms + 86400000;
    char od[STORE_DIGEST_LEN + 1], ed[STORE_DIGEST_LEN + 1], nb[24], xb[24];
    digest_of(&out, od);
    digest_of(&errs, ed);
    const char *uv[] = {ib, I64(nb, now_ms), I64(xb, expires_ms), od, ed};
    const char *dv[] = {ib, out.len ? out.data : "", errs.len ? errs.data : ""};
    int dl[] = {0, (int)out.len, (int)errs.len};
    int df[] = {0, 1, 1};
    if ((rc = run(c, "UPDATE batch_data SET output = $2, errors = $3 WHERE id = $1", 3, dv, dl,
                  df, 0, NULL, "recording a batch's output", eb)) < 0 ||
        (rc = run(c,
                  "UPDATE batches SET finished_ms = $2, expires_ms = $3, output_digest = $4,"
                  " errors_digest = $5 WHERE id = $1",
                  5, uv, NULL, NULL, 0, NULL, "recording a batch's output", eb)) < 0 ||
        (rc = exec_simple(c, "COMMIT", "writing a batch's output", eb)) < 0)
        goto out_rollback;
    *done = true;
    goto out_bufs;

out_rollback:
    PQclear(PQexec(c, "ROLLBACK"));
out_bufs:
    rouse_buf_fini(&out);
    rouse_buf_fini(&errs);
    return rc;
}

int jobs_pg_batches_due(PGconn *c, int64_t stalled_before_ms, int max,
                        int (*fn)(void *user, int64_t id, const char *function, bool creating),
                        void *user, rouse_errbuf *eb)
{
    char sb[24], mb[24];
    const char *v[] = {I64(sb, stalled_before_ms), I64(mb, max)};
    PGresult *r = NULL;
    int rc = run(c,
                 "SELECT id, function, create_off IS NOT NULL FROM batches b"
                 " WHERE output_digest IS NULL AND ((create_off IS NOT NULL AND progress_ms < $1)"
                 " OR (create_off IS NULL AND NOT EXISTS (SELECT 1 FROM jobs"
                 " WHERE batch = b.id AND state IN (0, 1)))) ORDER BY id LIMIT $2",
                 2, v, NULL, NULL, 0, &r, "finding batches to go on with", eb);
    if (rc < 0) return rc;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = fn(user, col_i64(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2)[0] == 't');
    PQclear(r);
    return rc > 0 ? 0 : rc;
}
