/*
 * Asynchronous jobs in PostgreSQL (jobs_pg.h).
 *
 * Parameters go as text, bodies and results as binary bytea; a failing
 * statement is ROUSE_EIO with PostgreSQL's message (a lost connection too:
 * the caller reconnects).
 */
#include "store/jobs_pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
                   rouse_errbuf *eb)
{
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
                 " WHERE id = $1 AND state = 1 AND holder = $2 AND attempts = $3 RETURNING id",
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
                 " WHERE id = $1 AND state = 1 AND holder = $2 AND attempts = $3 RETURNING id",
                 11, v, lens, fmts, 0, &r, "recording a run's end", eb);
    }
    if (rc < 0) return rc;
    int n = PQntuples(r);
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
    int rc = run(c, "DELETE FROM jobs WHERE expires_ms IS NOT NULL AND expires_ms <= $1", 1, v,
                 NULL, NULL, 0, &r, "removing expired jobs", eb);
    if (rc < 0) return rc;
    *n = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
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
    " result_json_len"

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
    j->batch_index = -1;
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
    int rc = run(c, "SELECT function, COUNT(*) FROM jobs WHERE state IN (0, 1) GROUP BY function",
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
