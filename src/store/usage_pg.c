/*
 * The usage store on PostgreSQL (usage_pg.h).
 *
 * Invariants:
 * - A record is either in usage_calls or counted in the hourly tables,
 *   never both: a roll-up inserts an hour's sums and deletes its records in
 *   one transaction, as on SQLite.
 * - A node's records and its cursor move together (one transaction): a
 *   cursor never passes a record that is not in usage_calls.
 * - SQL is constant text (or assembled from constant fragments); values
 *   only travel as parameters.
 */
#include "store/usage_pg.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/pg_util.h"
#include "store/usage_agg.h"

struct pg_conn {
    PGconn *db;
};

/* The usage part's migrations, in order: rouse_schema(part, version). */
static const char *const migrations[] = {
    /* 1: records, cursors, hourly aggregates. */
    "CREATE TABLE usage_calls("
    "  node text NOT NULL,"
    "  id bigint NOT NULL,"
    "  ts_us bigint NOT NULL,"
    "  request_id text NOT NULL,"
    "  function text NOT NULL,"
    "  version bigint NOT NULL,"
    "  tenant text NOT NULL,"
    "  start smallint NOT NULL,"
    "  queue_us bigint NOT NULL,"
    "  start_us bigint NOT NULL,"
    "  run_us bigint NOT NULL,"
    "  total_us bigint NOT NULL,"
    "  memory_mb bigint NOT NULL,"
    "  bytes_in bigint NOT NULL,"
    "  bytes_out bigint NOT NULL,"
    "  status smallint NOT NULL,"
    "  trace_id text,"
    "  bucket smallint NOT NULL,"
    "  PRIMARY KEY (node, id));"
    "CREATE INDEX usage_calls_ts ON usage_calls(ts_us);"
    "CREATE TABLE usage_ship_cursor("
    "  node text PRIMARY KEY,"
    "  store_id text NOT NULL,"
    "  seq bigint NOT NULL,"
    "  records bigint NOT NULL,"
    "  shipped_ms bigint NOT NULL);"
    "CREATE TABLE usage_hourly("
    "  node text NOT NULL, function text NOT NULL, version bigint NOT NULL,"
    "  tenant text NOT NULL, hour_us bigint NOT NULL,"
    "  invocations bigint NOT NULL, requests bigint NOT NULL, errors bigint NOT NULL,"
    "  warm bigint NOT NULL, cold_template bigint NOT NULL, cold_zero bigint NOT NULL,"
    "  billed_ms bigint NOT NULL, mb_ms bigint NOT NULL, run_us bigint NOT NULL,"
    "  bytes_in bigint NOT NULL, bytes_out bigint NOT NULL,"
    "  PRIMARY KEY (node, function, version, tenant, hour_us));"
    "CREATE INDEX usage_hourly_hour ON usage_hourly(hour_us);"
    "CREATE TABLE usage_hourly_latency("
    "  node text NOT NULL, function text NOT NULL, version bigint NOT NULL,"
    "  tenant text NOT NULL, hour_us bigint NOT NULL, bucket smallint NOT NULL,"
    "  n bigint NOT NULL,"
    "  PRIMARY KEY (node, function, version, tenant, hour_us, bucket));"
    "CREATE INDEX usage_hourly_latency_hour ON usage_hourly_latency(hour_us);"
    "CREATE TABLE usage_hourly_peak("
    "  function text NOT NULL, hour_us bigint NOT NULL, peak bigint NOT NULL,"
    "  PRIMARY KEY (function, hour_us));",
};

/* A failed statement as ROUSE_EIO: what it did, then r's message, or the
 * connection's when r has none (no result, a lost connection). */
static int fail(pg_conn *c, const PGresult *r, const char *what, rouse_errbuf *eb)
{
    const char *m = r ? PQresultErrorMessage(r) : "";
    if (!m[0]) m = PQerrorMessage(c->db);
    size_t len = strlen(m);
    while (len > 0 && (m[len - 1] == '\n' || m[len - 1] == ' '))
        len--;
    return rouse_err_set(eb, ROUSE_EIO, "%s: %.*s", what, (int)len, m);
}

/* Runs sql with params; a result of the expected status is returned (the
 * caller PQclears it), else NULL with eb set. */
static PGresult *run(pg_conn *c, const char *sql, int n, const char *const *v, ExecStatusType want,
                     const char *what, rouse_errbuf *eb)
{
    PGresult *r = PQexecParams(c->db, sql, n, NULL, v, NULL, NULL, 0);
    if (r && PQresultStatus(r) == want) return r;
    fail(c, r, what, eb);
    PQclear(r);
    return NULL;
}

/* A statement without parameters (or several: the simple protocol). */
static int exec(pg_conn *c, const char *sql, const char *what, rouse_errbuf *eb)
{
    PGresult *r = PQexec(c->db, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : fail(c, r, what, eb);
    PQclear(r);
    return rc;
}

static void rollback(pg_conn *c)
{
    PQclear(PQexec(c->db, "ROLLBACK"));
}

int usage_pg_open(const char *url, pg_conn **out, rouse_errbuf *eb)
{
    *out = NULL;
    pg_conn *c = calloc(1, sizeof(*c));
    if (!c) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    /* pg_connect's connection: libpq's notices dropped, a clear error
     * when PostgreSQL cannot be reached; the schema of every part under
     * the one lock (pg_migrate). */
    int rc = pg_connect(url, &c->db, eb);
    if (rc == 0)
        rc = pg_migrate(&c->db, "usage", migrations,
                        (int)(sizeof(migrations) / sizeof(migrations[0])), eb);
    if (rc < 0) {
        usage_pg_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

void usage_pg_close(pg_conn *c)
{
    if (!c) return;
    if (c->db) PQfinish(c->db);
    free(c);
}

bool usage_pg_ok(const pg_conn *c)
{
    return c && c->db && PQstatus(c->db) == CONNECTION_OK;
}

int usage_pg_socket(const pg_conn *c)
{
    return c && c->db ? PQsocket(c->db) : -1;
}

int usage_pg_cursor(pg_conn *c, const char *node, const char *store_id, int64_t *seq,
                    rouse_errbuf *eb)
{
    *seq = 0;
    const char *p[] = {node};
    PGresult *r = run(c, "SELECT store_id, seq FROM usage_ship_cursor WHERE node = $1", 1, p,
                      PGRES_TUPLES_OK, "reading the usage cursor", eb);
    if (!r) return ROUSE_EIO;
    /* A cursor of another local store (a new data directory under the
     * same node name) says nothing about this one's list. */
    if (PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), store_id) == 0) *seq = pg_get_i64(r, 0, 1);
    PQclear(r);
    return 0;
}

/* --- shipping ----------------------------------------------------------------- */

#define SHIP_COLS 18
#define I64_LEN 24

int usage_pg_ship(pg_conn *c, const char *node, const char *store_id, const usage_rec *recs,
                  const int64_t *ids, int n, int64_t last_seq, rouse_errbuf *eb)
{
    /* One multi-row INSERT: the statement's text grows with n (at most
     * the shipper's batch, 512 rows: 9,216 parameters). */
    size_t sql_cap = 256 + (size_t)n * (SHIP_COLS * 8 + 4);
    char *sql = malloc(sql_cap);
    const char **v = malloc((size_t)n * SHIP_COLS * sizeof(*v));
    char *nums = malloc((size_t)n * 13 * I64_LEN);
    if (!sql || !v || !nums) {
        free(sql);
        free(v);
        free(nums);
        return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory shipping usage records");
    }
    size_t at = (size_t)snprintf(sql, sql_cap,
                                 "INSERT INTO usage_calls(node, id, ts_us, request_id, function, "
                                 "version, tenant, start, queue_us, start_us, run_us, total_us, "
                                 "memory_mb, bytes_in, bytes_out, status, trace_id, bucket) VALUES ");
    for (int i = 0; i < n; i++) {
        const usage_rec *r = &recs[i];
        const char **row = v + (size_t)i * SHIP_COLS;
        char *nb = nums + (size_t)i * 13 * I64_LEN;
        int64_t ints[13] = {ids[i],      r->ts_us,     r->version,   r->start,   r->queue_us,
                            r->start_us, r->run_us,    r->total_us,  r->memory_mb, r->bytes_in,
                            r->bytes_out, r->status,   usage_bucket_of(r->total_us)};
        for (int k = 0; k < 13; k++)
            snprintf(nb + k * I64_LEN, I64_LEN, "%" PRId64, ints[k]);
        row[0] = node;
        row[1] = nb;
        row[2] = nb + I64_LEN;
        row[3] = r->request_id;
        row[4] = r->function;
        row[5] = nb + 2 * I64_LEN;
        row[6] = r->tenant;
        for (int k = 3; k <= 11; k++)
            row[k + 4] = nb + k * I64_LEN; /* start .. status: columns 7 to 15 */
        row[16] = r->trace_id[0] ? r->trace_id : NULL;
        row[17] = nb + 12 * I64_LEN;
        int b = i * SHIP_COLS;
        at += (size_t)snprintf(sql + at, sql_cap - at, "%s(", i ? "," : "");
        for (int k = 0; k < SHIP_COLS; k++)
            at += (size_t)snprintf(sql + at, sql_cap - at, "%s$%d", k ? "," : "", b + k + 1);
        at += (size_t)snprintf(sql + at, sql_cap - at, ")");
    }
    snprintf(sql + at, sql_cap - at, " ON CONFLICT (node, id) DO NOTHING");
    int rc = exec(c, "BEGIN", "starting to ship usage records", eb);
    if (rc == 0 && n > 0) {
        PGresult *r = PQexecParams(c->db, sql, n * SHIP_COLS, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) rc = fail(c, r, "shipping usage records", eb);
        PQclear(r);
    }
    if (rc == 0) {
        char seq[I64_LEN], cnt[I64_LEN];
        snprintf(seq, sizeof(seq), "%" PRId64, last_seq);
        snprintf(cnt, sizeof(cnt), "%d", n);
        const char *p[] = {node, store_id, seq, cnt};
        PGresult *r = run(c,
                          "INSERT INTO usage_ship_cursor(node, store_id, seq, records, shipped_ms) "
                          "VALUES ($1, $2, $3::bigint, $4::bigint, "
                          "(extract(epoch FROM clock_timestamp()) * 1000)::bigint) "
                          "ON CONFLICT (node) DO UPDATE SET store_id = excluded.store_id, "
                          "seq = excluded.seq, records = usage_ship_cursor.records + "
                          "excluded.records, shipped_ms = excluded.shipped_ms",
                          4, p, PGRES_COMMAND_OK, "moving the usage cursor", eb);
        if (!r) rc = ROUSE_EIO;
        PQclear(r);
    }
    if (rc == 0)
        rc = exec(c, "COMMIT", "committing shipped usage records", eb);
    else
        rollback(c);
    free(sql);
    free(v);
    free(nums);
    return rc;
}

/* --- roll-up ------------------------------------------------------------------ */

/* Steps the rows of r (function, ts_us, run start µs, run_us; in time
 * order) into each (function, hour)'s peak. */
static int peaks_of(const PGresult *r, usage_peaks *pk)
{
    usage_hour_runs hr = {.hour = -1};
    int rc = 0;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        int64_t h = usage_hour_of(pg_get_i64(r, i, 1));
        if (h != hr.hour) {
            if (hr.hour >= 0 && (rc = usage_runs_flush(&hr, pk)) < 0) break;
            hr.hour = h;
        }
        int64_t at = pg_get_i64(r, i, 2);
        rc = usage_runs_add(&hr, PQgetvalue(r, i, 0), at, at + pg_get_i64(r, i, 3));
    }
    if (rc == 0 && hr.hour >= 0) rc = usage_runs_flush(&hr, pk);
    usage_runs_fini(&hr);
    return rc;
}

#define BILLED "((run_us + 999) / 1000)"

int usage_pg_rollup(pg_conn *c, int64_t cutoff_us, int64_t *n_rows, bool *more, bool *busy,
                    rouse_errbuf *eb)
{
    *n_rows = 0;
    *more = false;
    *busy = false;
    int rc = exec(c, "BEGIN", "starting a usage roll-up", eb);
    if (rc < 0) return rc;
    PGresult *r = run(c, "SELECT pg_try_advisory_xact_lock(hashtext('rouse_usage_rollup'))", 0,
                      NULL, PGRES_TUPLES_OK, "locking the usage roll-up", eb);
    if (!r) goto fail;
    *busy = strcmp(PQgetvalue(r, 0, 0), "t") != 0;
    PQclear(r);
    if (*busy) return exec(c, "COMMIT", "ending a usage roll-up", eb);
    r = run(c, "SELECT min(ts_us) FROM usage_calls", 0, NULL, PGRES_TUPLES_OK,
            "reading usage records", eb);
    if (!r) goto fail;
    bool any = !PQgetisnull(r, 0, 0);
    int64_t first = pg_get_i64(r, 0, 0);
    PQclear(r);
    if (!any || first >= cutoff_us) return exec(c, "COMMIT", "ending a usage roll-up", eb);
    int64_t lo = usage_hour_of(first);
    int64_t hi = lo + USAGE_HOUR_US < cutoff_us ? lo + USAGE_HOUR_US : cutoff_us;
    char los[I64_LEN], his[I64_LEN];
    snprintf(los, sizeof(los), "%" PRId64, lo);
    snprintf(his, sizeof(his), "%" PRId64, hi);
    const char *p[] = {los, his};
    r = run(c,
            "INSERT INTO usage_hourly(node, function, version, tenant, hour_us, invocations, "
            "requests, errors, warm, cold_template, cold_zero, billed_ms, mb_ms, run_us, "
            "bytes_in, bytes_out) "
            "SELECT node, function, version, tenant, $1::bigint, count(*), "
            "count(*) FILTER (WHERE start <> 0), count(*) FILTER (WHERE status >= 400), "
            "count(*) FILTER (WHERE start = 1), count(*) FILTER (WHERE start = 2), "
            "count(*) FILTER (WHERE start = 3), sum(" BILLED "), sum(" BILLED " * memory_mb), "
            "sum(run_us), sum(bytes_in), sum(bytes_out) FROM usage_calls "
            "WHERE ts_us >= $1::bigint AND ts_us < $2::bigint "
            "GROUP BY node, function, version, tenant "
            "ON CONFLICT (node, function, version, tenant, hour_us) DO UPDATE SET "
            "invocations = usage_hourly.invocations + excluded.invocations, "
            "requests = usage_hourly.requests + excluded.requests, "
            "errors = usage_hourly.errors + excluded.errors, "
            "warm = usage_hourly.warm + excluded.warm, "
            "cold_template = usage_hourly.cold_template + excluded.cold_template, "
            "cold_zero = usage_hourly.cold_zero + excluded.cold_zero, "
            "billed_ms = usage_hourly.billed_ms + excluded.billed_ms, "
            "mb_ms = usage_hourly.mb_ms + excluded.mb_ms, "
            "run_us = usage_hourly.run_us + excluded.run_us, "
            "bytes_in = usage_hourly.bytes_in + excluded.bytes_in, "
            "bytes_out = usage_hourly.bytes_out + excluded.bytes_out",
            2, p, PGRES_COMMAND_OK, "rolling usage up into hours", eb);
    if (!r) goto fail;
    PQclear(r);
    r = run(c,
            "INSERT INTO usage_hourly_latency(node, function, version, tenant, hour_us, bucket, n) "
            "SELECT node, function, version, tenant, $1::bigint, bucket, count(*) FROM usage_calls "
            "WHERE ts_us >= $1::bigint AND ts_us < $2::bigint "
            "GROUP BY node, function, version, tenant, bucket "
            "ON CONFLICT (node, function, version, tenant, hour_us, bucket) DO UPDATE SET "
            "n = usage_hourly_latency.n + excluded.n",
            2, p, PGRES_COMMAND_OK, "rolling usage latencies up into hours", eb);
    if (!r) goto fail;
    PQclear(r);
    /* The hour's peak: every node's calls together. */
    r = run(c,
            "SELECT function, ts_us, ts_us + queue_us + start_us, run_us FROM usage_calls "
            "WHERE ts_us >= $1::bigint AND ts_us < $2::bigint AND start <> 0 ORDER BY ts_us",
            2, p, PGRES_TUPLES_OK, "reading usage records", eb);
    if (!r) goto fail;
    usage_peaks pk = {0};
    rc = peaks_of(r, &pk);
    PQclear(r);
    if (rc < 0) {
        free(pk.v);
        rouse_err_set(eb, rc, "out of memory rolling usage up");
        rollback(c);
        return rc;
    }
    bool ok = true;
    for (int i = 0; i < pk.n && ok; i++) {
        char h[I64_LEN], pv[I64_LEN];
        snprintf(h, sizeof(h), "%" PRId64, pk.v[i].hour_us);
        snprintf(pv, sizeof(pv), "%" PRId64, pk.v[i].peak);
        const char *pp[] = {pk.v[i].function, h, pv};
        r = run(c,
                "INSERT INTO usage_hourly_peak(function, hour_us, peak) VALUES ($1, $2::bigint, "
                "$3::bigint) ON CONFLICT (function, hour_us) DO UPDATE SET peak = "
                "greatest(usage_hourly_peak.peak, excluded.peak)",
                3, pp, PGRES_COMMAND_OK, "writing an hour's peak concurrency", eb);
        ok = r != NULL;
        PQclear(r);
    }
    free(pk.v);
    if (!ok) goto fail;
    r = run(c, "DELETE FROM usage_calls WHERE ts_us >= $1::bigint AND ts_us < $2::bigint", 2, p,
            PGRES_COMMAND_OK, "removing rolled-up usage records", eb);
    if (!r) goto fail;
    *n_rows = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    const char *pc[] = {his};
    snprintf(his, sizeof(his), "%" PRId64, cutoff_us);
    r = run(c, "SELECT EXISTS (SELECT 1 FROM usage_calls WHERE ts_us < $1::bigint)", 1, pc,
            PGRES_TUPLES_OK, "reading usage records", eb);
    if (!r) goto fail;
    *more = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return exec(c, "COMMIT", "committing a usage roll-up", eb);
fail:
    rollback(c);
    return ROUSE_EIO;
}

/* --- queries ------------------------------------------------------------------ */

/* Parameters of a query: $1 since, $2 until, $3 function, $4 version. */
typedef struct qparams {
    char since[I64_LEN], until[I64_LEN], version[I64_LEN];
    const char *v[4];
    int n;
} qparams;

/* The filter on the function and version, for a statement whose time
 * column is tcol. */
static void where(char *out, size_t cap, const usage_query *q, const char *tcol)
{
    snprintf(out, cap, "%s >= $1::bigint AND %s < $2::bigint%s%s", tcol, tcol,
             q->function[0] ? " AND function = $3" : "",
             q->version > 0 ? " AND version = $4::bigint" : "");
}

static void qparams_of(const usage_query *q, qparams *p)
{
    snprintf(p->since, sizeof(p->since), "%" PRId64, q->since_us);
    snprintf(p->until, sizeof(p->until), "%" PRId64, q->until_us);
    snprintf(p->version, sizeof(p->version), "%" PRId64, q->version);
    p->v[0] = p->since;
    p->v[1] = p->until;
    p->v[2] = q->function;
    p->v[3] = p->version;
    /* Unused trailing parameters are left out (PostgreSQL would have to
     * infer their type); a version filter needs the function's too. */
    p->n = q->version > 0 ? 4 : q->function[0] ? 3 : 2;
}

/* Streams the records (one row at a time: a million rows are never held
 * at once) into acc, in time order. */
static int read_records(pg_conn *c, const usage_query *q, const qparams *p, usage_acc *acc,
                        rouse_errbuf *eb)
{
    char w[256], sql[768];
    where(w, sizeof(w), q, "ts_us");
    snprintf(sql, sizeof(sql),
             "SELECT function, version, ts_us, total_us, start, status, run_us, memory_mb, "
             "bytes_in, bytes_out, queue_us + start_us, node FROM usage_calls WHERE %s "
             "ORDER BY ts_us",
             w);
    if (!PQsendQueryParams(c->db, sql, p->n, NULL, p->v, NULL, NULL, 0))
        return fail(c, NULL, "reading usage records", eb);
    PQsetSingleRowMode(c->db);
    int rc = 0;
    PGresult *r;
    while ((r = PQgetResult(c->db))) {
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_SINGLE_TUPLE && rc == 0) {
            usage_row row = {
                .function = PQgetvalue(r, 0, 0),
                .version = pg_get_i64(r, 0, 1),
                .ts_us = pg_get_i64(r, 0, 2),
                .total_us = pg_get_i64(r, 0, 3),
                .start = (int)pg_get_i64(r, 0, 4),
                .status = (int)pg_get_i64(r, 0, 5),
                .run_us = pg_get_i64(r, 0, 6),
                .memory_mb = pg_get_i64(r, 0, 7),
                .bytes_in = pg_get_i64(r, 0, 8),
                .bytes_out = pg_get_i64(r, 0, 9),
                .wait_us = pg_get_i64(r, 0, 10),
                .node = PQgetvalue(r, 0, 11),
            };
            if (usage_acc_record(acc, &row) < 0)
                rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading usage");
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK && rc == 0) {
            rc = fail(c, r, "reading usage records", eb);
        }
        PQclear(r);
    }
    if (rc == 0 && usage_acc_end_records(acc) < 0)
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading usage");
    return rc;
}

static const char *key_sql(usage_by by)
{
    switch (by) {
    case USAGE_BY_FUNCTION:
        return "function, 0";
    case USAGE_BY_VERSION:
        return "function, version";
    case USAGE_BY_NODE:
        return "node, 0";
    case USAGE_BY_MINUTE: /* not in the hourly tables: never asked */
    case USAGE_BY_HOUR:
        return "'', hour_us";
    case USAGE_BY_DAY:
        return "'', hour_us / 86400000000 * 86400000000";
    }
    return "function, 0";
}

static PGresult *hourly(pg_conn *c, const usage_query *q, const qparams *p, const char *select,
                        const char *from, const char *group, rouse_errbuf *eb)
{
    char w[256], sql[1024];
    where(w, sizeof(w), q, "hour_us");
    snprintf(sql, sizeof(sql), "SELECT %s, %s FROM %s WHERE %s GROUP BY %s", key_sql(q->by),
             select, from, w, group);
    return run(c, sql, p->n, p->v, PGRES_TUPLES_OK, "reading usage", eb);
}

static int run_query(pg_conn *c, const usage_query *q, usage_acc *acc, rouse_errbuf *eb)
{
    qparams p;
    qparams_of(q, &p);
    int rc = read_records(c, q, &p, acc, eb);
    if (rc < 0) return rc;
    if (q->by != USAGE_BY_MINUTE) {
        PGresult *r = hourly(c, q, &p,
                             "sum(invocations), sum(requests), sum(errors), sum(warm), "
                             "sum(cold_template), sum(cold_zero), sum(billed_ms), sum(mb_ms), "
                             "sum(run_us), sum(bytes_in), sum(bytes_out), min(hour_us)",
                             "usage_hourly", "1, 2", eb);
        if (!r) return ROUSE_EIO;
        for (int i = 0; i < PQntuples(r); i++) {
            usage_group *e = usage_acc_group(acc, PQgetvalue(r, i, 0), pg_get_i64(r, i, 1));
            if (!e) {
                PQclear(r);
                return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading usage");
            }
            int64_t inv = pg_get_i64(r, i, 2), warm = pg_get_i64(r, i, 5), tmpl = pg_get_i64(r, i, 6),
                    zero = pg_get_i64(r, i, 7);
            e->invocations += inv;
            e->requests += pg_get_i64(r, i, 3);
            e->errors += pg_get_i64(r, i, 4);
            e->starts[0] += inv - warm - tmpl - zero;
            e->starts[1] += warm;
            e->starts[2] += tmpl;
            e->starts[3] += zero;
            e->billed_ms += pg_get_i64(r, i, 8);
            e->mb_ms += pg_get_i64(r, i, 9);
            e->run_us += pg_get_i64(r, i, 10);
            e->bytes_in += pg_get_i64(r, i, 11);
            e->bytes_out += pg_get_i64(r, i, 12);
            int64_t t = pg_get_i64(r, i, 13);
            if (inv > 0 && (acc->first == 0 || t < acc->first)) acc->first = t;
        }
        PQclear(r);
        r = hourly(c, q, &p, "bucket, sum(n)", "usage_hourly_latency", "1, 2, 3", eb);
        if (!r) return ROUSE_EIO;
        for (int i = 0; i < PQntuples(r); i++) {
            usage_group *e = usage_acc_group(acc, PQgetvalue(r, i, 0), pg_get_i64(r, i, 1));
            if (!e) {
                PQclear(r);
                return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading usage");
            }
            int64_t b = pg_get_i64(r, i, 2);
            if (b >= 0 && b < USAGE_BUCKETS) e->hist[b] += pg_get_i64(r, i, 3);
        }
        PQclear(r);
    }
    if (!q->peaks) return 0;
    const char *pv[] = {p.since, p.until, q->function};
    PGresult *r = run(c,
                      q->function[0] ? "SELECT function, hour_us, peak FROM usage_hourly_peak "
                                       "WHERE hour_us >= $1::bigint AND hour_us < $2::bigint AND "
                                       "function = $3"
                                     : "SELECT function, hour_us, peak FROM usage_hourly_peak "
                                       "WHERE hour_us >= $1::bigint AND hour_us < $2::bigint",
                      q->function[0] ? 3 : 2, pv, PGRES_TUPLES_OK, "reading usage peaks", eb);
    if (!r) return ROUSE_EIO;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++)
        rc = usage_peaks_add(&acc->pk, PQgetvalue(r, i, 0), pg_get_i64(r, i, 1), pg_get_i64(r, i, 2));
    PQclear(r);
    if (rc < 0) return rouse_err_set(eb, rc, "out of memory reading usage peaks");
    if (acc->stream_peaks) return 0;
    /* A version filter left other versions' calls out of the pass: the
     * function's peaks come from all of them. */
    r = run(c,
            q->function[0]
                ? "SELECT function, ts_us, ts_us + queue_us + start_us, run_us FROM usage_calls "
                  "WHERE ts_us >= $1::bigint AND ts_us < $2::bigint AND function = $3 AND "
                  "start <> 0 ORDER BY ts_us"
                : "SELECT function, ts_us, ts_us + queue_us + start_us, run_us FROM usage_calls "
                  "WHERE ts_us >= $1::bigint AND ts_us < $2::bigint AND start <> 0 ORDER BY ts_us",
            q->function[0] ? 3 : 2, pv, PGRES_TUPLES_OK, "reading usage records", eb);
    if (!r) return ROUSE_EIO;
    rc = peaks_of(r, &acc->pk);
    PQclear(r);
    return rc < 0 ? rouse_err_set(eb, rc, "out of memory reading usage peaks") : 0;
}

int usage_pg_query(pg_conn *c, const usage_query *q, usage_result *out, rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    usage_acc acc;
    usage_acc_init(&acc, q, q->peaks && q->version == 0);
    int rc = exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "starting a usage read",
                  eb);
    if (rc == 0) {
        rc = run_query(c, q, &acc, eb);
        if (rc == 0)
            rc = exec(c, "COMMIT", "ending a usage read", eb);
        else
            rollback(c);
    }
    if (rc < 0) {
        usage_acc_fini(&acc);
        return rc;
    }
    usage_acc_result(&acc, out);
    return 0;
}
