/*
 * The usage store on SQLite (usage.h): the records in usage_calls
 * (migration 10; the view usage_records shows them with the columns of
 * migrations 2 to 8) and the hourly tables of migration 2, in the
 * registry's database.
 *
 * Invariants:
 * - A record is either in usage_calls or counted in the hourly tables,
 *   never both: a roll-up inserts an hour's sums and deletes its records in
 *   the same transaction (the writer's group).
 * - Roll-ups take whole hours, oldest first, so an hour is rolled up once;
 *   its peak concurrency is computed from all of its records at once.
 * - SQL is constant text (assembled from constant fragments); values only
 *   travel through sqlite3_bind_*.
 * - A record's row id is its time key (usage_id_of): its arrival µs times
 *   USAGE_ID_PER_US plus a sequence number, unique in the table. Rows are
 *   in time order, so every time range is a range of row ids and the table
 *   needs no index: an insert writes one B-tree, not three.
 * - A row stores only what nothing else gives (migration 10): its arrival
 *   µs is id >> 10 unless ts_us holds it (a time before 1970 or after the
 *   year 2255, which the ids cannot tell apart); billed ms, error kind and
 *   latency bucket follow from run_us, status and total_us; the request
 *   id is an integer, the trace id 16 bytes or NULL, the default tenant
 *   NULL. Every column of a row costs the writer its bind, its copy into
 *   the virtual machine and its place in the record: fewer and smaller
 *   columns are fewer instructions per record.
 */
#include "store/usage.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"
#include "store/usage_agg.h"

int usage_bucket_of(int64_t us)
{
    if (us <= 1) return 0;
    int b = (int)floor(log2((double)us) * USAGE_BUCKETS_PER_DOUBLING);
    if (b < 0) b = 0;
    return b >= USAGE_BUCKETS ? USAGE_BUCKETS - 1 : b;
}

int64_t usage_bucket_upper(int b)
{
    if (b >= USAGE_BUCKETS - 1) return INT64_MAX;
    /* The largest whole µs whose bucket is b (log2's rounding decides the
     * edges, so step to them rather than trust pow). */
    int64_t u = (int64_t)floor(pow(2.0, (double)(b + 1) / USAGE_BUCKETS_PER_DOUBLING));
    while (u > 1 && usage_bucket_of(u) > b)
        u--;
    while (usage_bucket_of(u + 1) <= b)
        u++;
    return u;
}

int64_t usage_hist_percentile(const int64_t hist[USAGE_BUCKETS], double p)
{
    int64_t total = 0;
    for (int b = 0; b < USAGE_BUCKETS; b++)
        total += hist[b];
    if (total == 0) return 0;
    /* Nearest rank: the ceil(p * n)-th smallest. */
    int64_t rank = (int64_t)ceil(p * (double)total);
    if (rank < 1) rank = 1;
    int64_t seen = 0;
    for (int b = 0; b < USAGE_BUCKETS; b++) {
        seen += hist[b];
        if (seen >= rank) return usage_bucket_upper(b);
    }
    return usage_bucket_upper(USAGE_BUCKETS - 1);
}

/* The row ids of time t: [usage_id_of(t), usage_id_of(t) + USAGE_ID_PER_US).
 * Times before 1970 or after the year 2255 share the ends' ids (their
 * ts_us column keeps the exact time, and every range also filters on it). */
#define USAGE_ID_PER_US 1024
#define USAGE_ID_SHIFT "10" /* log2(USAGE_ID_PER_US), for SQL */
#define USAGE_TS_ID_MAX (INT64_MAX / USAGE_ID_PER_US - 1)

static int64_t usage_id_of(int64_t ts_us)
{
    if (ts_us < 0) ts_us = 0;
    if (ts_us > USAGE_TS_ID_MAX) ts_us = USAGE_TS_ID_MAX;
    return ts_us * USAGE_ID_PER_US;
}

/* Whether a record of time t needs its ts_us column. */
static bool ts_outside_ids(int64_t ts_us)
{
    return ts_us < 0 || ts_us > USAGE_TS_ID_MAX;
}

/* A row's arrival µs, and its billed ms (inv_billed_ms), in SQL. */
#define TS "ifnull(ts_us, id >> " USAGE_ID_SHIFT ")"
#define BILLED_MS "((run_us + 999) / 1000)"

static void sql_usage_bucket(sqlite3_context *c, int argc, sqlite3_value **v)
{
    (void)argc;
    sqlite3_result_int(c, usage_bucket_of(sqlite3_value_int64(v[0])));
}

int usage_sql_register(sqlite3 *db)
{
    return sqlite3_create_function(db, "usage_bucket", 1,
                                   SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                   sql_usage_bucket, NULL, NULL);
}

/* The sequence numbers of new rows, process-wide: rows of one µs get
 * different ids unless USAGE_ID_PER_US rows of that µs came between them;
 * a clash (that, or a record of an earlier run at the same µs) is resolved
 * by the next number (insert_rows). */
static _Atomic uint64_t next_seq;

static int prepare(store *st, const char *sql, sqlite3_stmt **out, rouse_errbuf *eb)
{
    int src = sqlite3_prepare_v2(store_db(st), sql, -1, out, NULL);
    if (src != SQLITE_OK) return store_db_error(st, eb, src, "preparing a usage statement");
    return 0;
}

static bool is_id_clash(int src)
{
    return src == SQLITE_CONSTRAINT_PRIMARYKEY || src == SQLITE_CONSTRAINT;
}

static int step_done(store *st, sqlite3_stmt *s, const char *what, rouse_errbuf *eb)
{
    int src = sqlite3_step(s);
    int rc = src == SQLITE_DONE || src == SQLITE_ROW ? 0 : store_db_error(st, eb, src, what);
    sqlite3_reset(s);
    return rc;
}

/* One more than the value of each lowercase hex digit; 0 for every other
 * byte (a table: the writer decodes 48 digits per record). */
static const uint8_t hex1[256] = {
    ['0'] = 1, ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

/* Exactly 2n lowercase hex digits at s (and its end) into n bytes. */
static bool unhex(const char *s, uint8_t *out, int n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (int i = 0; i < n; i++) {
        unsigned hi = hex1[u[2 * i]];
        if (!hi) return false;
        unsigned lo = hex1[u[2 * i + 1]];
        if (!lo) return false;
        out[i] = (uint8_t)((hi - 1) << 4 | (lo - 1));
    }
    return u[2 * n] == '\0';
}

/* Rows per INSERT statement: one statement of many rows pays the VDBE's
 * per-statement work (step, reset, opening the table) once per
 * INSERT_ROWS rows instead of per row, about a quarter of a row's CPU
 * when each row was a statement of its own. The many-row statement leaves
 * ts_us out (NULL): a group with a record whose time the id cannot hold
 * goes row by row (insert_rows). */
#define INSERT_ROWS 32
#define INSERT_COLS 15
#define INSERT_COLUMNS                                                                             \
    "id, request_id, function, version, tenant, start, queue_us, start_us, run_us, total_us, "     \
    "memory_mb, bytes_in, bytes_out, status, trace_id"
#define ROW1 "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
#define ROW4 ROW1 "," ROW1 "," ROW1 "," ROW1
#define ROW16 ROW4 "," ROW4 "," ROW4 "," ROW4
#define ROW32 ROW16 "," ROW16

/* The 16 bytes of a trace id, alive until the statement it is bound to
 * has run (bound SQLITE_STATIC). */
typedef struct trace_bytes {
    uint8_t b[16];
} trace_bytes;

/* Binds record r as the row whose first parameter (its id, with sequence
 * number seq) is `at`; tb holds its trace id's bytes. */
static void bind_rec(sqlite3_stmt *s, int at, const usage_rec *r, uint64_t seq, trace_bytes *tb)
{
    sqlite3_bind_int64(s, at, usage_id_of(r->ts_us) + (int64_t)(seq % USAGE_ID_PER_US));
    uint8_t rid[8];
    if (unhex(r->request_id, rid, 8)) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
            v = v << 8 | rid[i];
        sqlite3_bind_int64(s, at + 1, (int64_t)v);
    } else {
        sqlite3_bind_text(s, at + 1, r->request_id, -1, SQLITE_STATIC);
    }
    sqlite3_bind_text(s, at + 2, r->function, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, at + 3, r->version);
    if (strcmp(r->tenant, "default") == 0)
        sqlite3_bind_null(s, at + 4);
    else
        sqlite3_bind_text(s, at + 4, r->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, at + 5, r->start);
    sqlite3_bind_int64(s, at + 6, r->queue_us);
    sqlite3_bind_int64(s, at + 7, r->start_us);
    sqlite3_bind_int64(s, at + 8, r->run_us);
    sqlite3_bind_int64(s, at + 9, r->total_us);
    sqlite3_bind_int64(s, at + 10, r->memory_mb);
    sqlite3_bind_int64(s, at + 11, r->bytes_in);
    sqlite3_bind_int64(s, at + 12, r->bytes_out);
    sqlite3_bind_int(s, at + 13, r->status);
    if (!r->trace_id[0])
        sqlite3_bind_null(s, at + 14);
    else if (unhex(r->trace_id, tb->b, 16))
        sqlite3_bind_blob(s, at + 14, tb->b, 16, SQLITE_STATIC);
    else
        sqlite3_bind_text(s, at + 14, r->trace_id, -1, SQLITE_STATIC);
}

/* Constant arrays, so that the statement cache (keyed by address) keeps
 * them prepared on each connection. */
static const char insert_many[] = "INSERT INTO usage_calls(" INSERT_COLUMNS ") VALUES " ROW32;
static const char insert_one[] =
    "INSERT INTO usage_calls(" INSERT_COLUMNS ", ts_us) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

/* Inserts recs[0..n) a row per statement; a row whose id clashes with a
 * stored one takes the next sequence numbers until one is free. */
static int insert_rows(store *st, const usage_rec *recs, int n, rouse_errbuf *eb)
{
    sqlite3_stmt *s;
    int rc = store_stmt(st, insert_one, &s, eb);
    if (rc < 0) return rc;
    trace_bytes tb;
    for (int i = 0; i < n && rc == 0; i++) {
        int src = SQLITE_CONSTRAINT;
        for (int tries = 0; tries < USAGE_ID_PER_US && is_id_clash(src); tries++) {
            if (tries > 0) sqlite3_reset(s);
            bind_rec(s, 1, &recs[i], atomic_fetch_add_explicit(&next_seq, 1, memory_order_relaxed),
                     &tb);
            if (ts_outside_ids(recs[i].ts_us))
                sqlite3_bind_int64(s, INSERT_COLS + 1, recs[i].ts_us);
            else
                sqlite3_bind_null(s, INSERT_COLS + 1);
            src = sqlite3_step(s);
        }
        if (src != SQLITE_DONE) rc = store_db_error(st, eb, src, "writing a usage record");
        sqlite3_reset(s);
    }
    store_stmt_done(s);
    return rc;
}

int usage_insert_tx(store *st, const usage_rec *recs, int n, rouse_errbuf *eb)
{
    int rc = 0, i = 0;
    sqlite3_stmt *s;
    trace_bytes tb[INSERT_ROWS];
    if (n >= INSERT_ROWS) {
        if ((rc = store_stmt(st, insert_many, &s, eb)) < 0) return rc;
        for (; i + INSERT_ROWS <= n && rc == 0; i += INSERT_ROWS) {
            bool outside = false;
            for (int k = 0; k < INSERT_ROWS; k++)
                outside |= ts_outside_ids(recs[i + k].ts_us);
            int src = SQLITE_CONSTRAINT;
            if (!outside) {
                uint64_t seq =
                    atomic_fetch_add_explicit(&next_seq, INSERT_ROWS, memory_order_relaxed);
                for (int k = 0; k < INSERT_ROWS; k++)
                    bind_rec(s, k * INSERT_COLS + 1, &recs[i + k], seq + (uint64_t)k, &tb[k]);
                src = sqlite3_step(s);
                if (src != SQLITE_DONE && !is_id_clash(src))
                    rc = store_db_error(st, eb, src, "writing usage records");
                sqlite3_reset(s);
            }
            /* A clash undid this statement alone: its rows go one by one,
             * as do those of a group with a time outside the ids. */
            if (is_id_clash(src)) {
                store_stmt_done(s);
                rc = insert_rows(st, recs + i, INSERT_ROWS, eb);
                if (rc == 0) rc = store_stmt(st, insert_many, &s, eb);
                if (rc < 0) return rc;
            }
        }
        store_stmt_done(s);
    }
    if (i < n && rc == 0) rc = insert_rows(st, recs + i, n - i, eb);
    return rc;
}

/* Steps s (rows: function, ts_us, run start µs, run_us; in time order)
 * and adds each (function, hour of arrival)'s peak (usage_agg.h). */
static int peaks_in_order(store *st, sqlite3_stmt *s, usage_peaks *out, rouse_errbuf *eb);

/* --- roll-up ------------------------------------------------------------- */

/* The earliest record's time, if any (the first row: ids are in time
 * order). */
static int oldest(store *st, int64_t *ts, bool *any, rouse_errbuf *eb)
{
    sqlite3_stmt *s;
    int rc = prepare(st, "SELECT " TS " FROM usage_calls ORDER BY id LIMIT 1", &s, eb);
    if (rc < 0) return rc;
    int src = sqlite3_step(s);
    *any = false;
    if (src == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL) {
        *ts = sqlite3_column_int64(s, 0);
        *any = true;
    } else if (src != SQLITE_ROW && src != SQLITE_DONE) {
        rc = store_db_error(st, eb, src, "reading usage records");
    }
    sqlite3_finalize(s);
    return rc;
}

/* Binds the time range [lo, hi) of records: ?1 and ?2 the times, ?3 and
 * ?4 the ids that hold them (statements say "id >= ?3 AND id < ?4 AND
 * ts_us >= ?1 AND ts_us < ?2": a range of the table, filtered exactly). */
static void bind_range(sqlite3_stmt *s, int64_t lo, int64_t hi)
{
    sqlite3_bind_int64(s, 1, lo);
    sqlite3_bind_int64(s, 2, hi);
    sqlite3_bind_int64(s, 3, usage_id_of(lo));
    /* Up to the ids of the range's last µs (clamped as usage_id_of does). */
    sqlite3_bind_int64(s, 4, usage_id_of(hi > 0 ? hi - 1 : 0) + USAGE_ID_PER_US);
}

#define IN_RANGE "id >= ?3 AND id < ?4 AND " TS " >= ?1 AND " TS " < ?2"

/* Runs one statement over the records of [lo, hi) (bind_range). */
static int exec_range(store *st, const char *sql, int64_t lo, int64_t hi, const char *what,
                      rouse_errbuf *eb)
{
    sqlite3_stmt *s;
    int rc = prepare(st, sql, &s, eb);
    if (rc < 0) return rc;
    bind_range(s, lo, hi);
    rc = step_done(st, s, what, eb);
    sqlite3_finalize(s);
    return rc;
}

int usage_rollup_tx(store *st, int64_t cutoff_us, int64_t *n_rows, bool *more, rouse_errbuf *eb)
{
    *n_rows = 0;
    *more = false;
    int64_t first;
    bool any;
    int rc = oldest(st, &first, &any, eb);
    if (rc < 0 || !any || first >= cutoff_us) return rc;
    /* Every record of [lo, hi) is in hour lo; hi stops at the cutoff, so
     * with a cutoff inside an hour that hour is rolled up in parts. */
    int64_t lo = usage_hour_of(first);
    int64_t hi = lo + USAGE_HOUR_US < cutoff_us ? lo + USAGE_HOUR_US : cutoff_us;
    rc = exec_range(st,
                    "INSERT INTO usage_hourly(function, version, tenant, hour_us, invocations, "
                    "requests, errors, warm, cold_template, cold_zero, billed_ms, mb_ms, run_us, "
                    "bytes_in, bytes_out) "
                    "SELECT function, version, ifnull(tenant, 'default'), ?1, count(*), "
                    "sum(start != 0), sum(status >= 400), sum(start = 1), sum(start = 2), "
                    "sum(start = 3), sum(" BILLED_MS "), sum(" BILLED_MS " * memory_mb), "
                    "sum(run_us), sum(bytes_in), sum(bytes_out) FROM usage_calls "
                    "WHERE " IN_RANGE " "
                    "GROUP BY function, version, tenant "
                    "ON CONFLICT(function, version, tenant, hour_us) DO UPDATE SET "
                    "invocations = invocations + excluded.invocations, "
                    "requests = requests + excluded.requests, errors = errors + excluded.errors, "
                    "warm = warm + excluded.warm, "
                    "cold_template = cold_template + excluded.cold_template, "
                    "cold_zero = cold_zero + excluded.cold_zero, "
                    "billed_ms = billed_ms + excluded.billed_ms, mb_ms = mb_ms + excluded.mb_ms, "
                    "run_us = run_us + excluded.run_us, bytes_in = bytes_in + excluded.bytes_in, "
                    "bytes_out = bytes_out + excluded.bytes_out",
                    lo, hi, "rolling usage up into hours", eb);
    if (rc == 0)
        rc = exec_range(st,
                        "INSERT INTO usage_hourly_latency(function, version, tenant, hour_us, "
                        "bucket, n) SELECT function, version, ifnull(tenant, 'default'), ?1, "
                        "usage_bucket(total_us), count(*) FROM usage_calls WHERE " IN_RANGE " "
                        "GROUP BY function, version, tenant, 5 "
                        "ON CONFLICT(function, version, tenant, hour_us, bucket) DO UPDATE SET "
                        "n = n + excluded.n",
                        lo, hi, "rolling usage latencies up into hours", eb);
    if (rc == 0) {
        usage_peaks pk = {0};
        sqlite3_stmt *s = NULL;
        rc = prepare(st,
                     "SELECT function, " TS ", " TS " + queue_us + start_us, run_us "
                     "FROM usage_calls WHERE " IN_RANGE " AND start != 0 ORDER BY id",
                     &s, eb);
        if (rc == 0) {
            bind_range(s, lo, hi);
            rc = peaks_in_order(st, s, &pk, eb);
        }
        sqlite3_finalize(s);
        s = NULL;
        if (rc == 0)
            rc = prepare(st,
                         "INSERT INTO usage_hourly_peak(function, hour_us, peak) VALUES (?1, ?2, "
                         "?3) ON CONFLICT(function, hour_us) DO UPDATE SET peak = "
                         "max(peak, excluded.peak)",
                         &s, eb);
        for (int i = 0; rc == 0 && i < pk.n; i++) {
            sqlite3_bind_text(s, 1, pk.v[i].function, -1, SQLITE_STATIC);
            sqlite3_bind_int64(s, 2, pk.v[i].hour_us);
            sqlite3_bind_int64(s, 3, pk.v[i].peak);
            rc = step_done(st, s, "writing an hour's peak concurrency", eb);
        }
        sqlite3_finalize(s);
        free(pk.v);
    }
    if (rc == 0)
        rc = exec_range(st, "DELETE FROM usage_calls WHERE " IN_RANGE, lo, hi,
                        "removing rolled-up usage records", eb);
    if (rc == 0) *n_rows = sqlite3_changes(store_db(st));
    if (rc == 0) rc = oldest(st, &first, &any, eb);
    if (rc == 0) *more = any && first < cutoff_us;
    return rc;
}

/* --- queries ------------------------------------------------------------- */

static int peaks_in_order(store *st, sqlite3_stmt *s, usage_peaks *out, rouse_errbuf *eb)
{
    usage_hour_runs hr = {.hour = -1};
    int rc = 0, src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *f = (const char *)sqlite3_column_text(s, 0);
        int64_t h = usage_hour_of(sqlite3_column_int64(s, 1));
        if (h != hr.hour) {
            if (hr.hour >= 0 && (rc = usage_runs_flush(&hr, out)) < 0) break;
            hr.hour = h;
        }
        int64_t at = sqlite3_column_int64(s, 2);
        if ((rc = usage_runs_add(&hr, f ? f : "", at, at + sqlite3_column_int64(s, 3))) < 0) break;
    }
    if (rc == 0 && src != SQLITE_DONE) rc = store_db_error(st, eb, src, "reading usage records");
    if (rc == 0 && hr.hour >= 0) rc = usage_runs_flush(&hr, out);
    if (rc == ROUSE_ENOMEM) rouse_err_set(eb, rc, "out of memory reading usage records");
    usage_runs_fini(&hr);
    sqlite3_reset(s);
    return rc;
}

/* One pass over the records, summed in C: SQLite's GROUP BY sorts through
 * a temporary B-tree, several times slower than reading the rows. */
static int read_records(store *st, const usage_query *q, usage_acc *acc, rouse_errbuf *eb)
{
    /* In time order (the order of the table: no sort), so that with
     * streamed peaks each hour's peaks are computed when the next hour
     * begins. */
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "SELECT function, version, " TS ", total_us, start, status, run_us, memory_mb, "
             "bytes_in, bytes_out, queue_us + start_us FROM usage_calls "
             "WHERE " IN_RANGE "%s%s ORDER BY id",
             q->function[0] ? " AND function = ?5" : "", q->version > 0 ? " AND version = ?6" : "");
    sqlite3_stmt *s;
    int rc = prepare(st, sql, &s, eb);
    if (rc < 0) return rc;
    bind_range(s, q->since_us, q->until_us);
    if (q->function[0]) sqlite3_bind_text(s, 5, q->function, -1, SQLITE_STATIC);
    if (q->version > 0) sqlite3_bind_int64(s, 6, q->version);
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *f = (const char *)sqlite3_column_text(s, 0);
        usage_row r = {
            .function = f ? f : "",
            .version = sqlite3_column_int64(s, 1),
            .ts_us = sqlite3_column_int64(s, 2),
            .total_us = sqlite3_column_int64(s, 3),
            .start = sqlite3_column_int(s, 4),
            .status = sqlite3_column_int(s, 5),
            .run_us = sqlite3_column_int64(s, 6),
            .memory_mb = sqlite3_column_int64(s, 7),
            .bytes_in = sqlite3_column_int64(s, 8),
            .bytes_out = sqlite3_column_int64(s, 9),
            .wait_us = sqlite3_column_int64(s, 10),
        };
        if ((rc = usage_acc_record(acc, &r)) < 0) break;
    }
    if (rc == 0 && src != SQLITE_DONE) rc = store_db_error(st, eb, src, "reading usage records");
    if (rc == 0) rc = usage_acc_end_records(acc);
    if (rc == ROUSE_ENOMEM && !eb->msg[0]) rouse_err_set(eb, rc, "out of memory reading usage");
    sqlite3_finalize(s);
    return rc;
}

/* The key columns of the hourly tables for a grouping: a text (function
 * or '') and an integer (version or period start). */
static const char *key_sql(usage_by by)
{
    switch (by) {
    case USAGE_BY_FUNCTION:
        return "function, 0";
    case USAGE_BY_VERSION:
        return "function, version";
    case USAGE_BY_NODE: /* this node's only: usage_acc_group names it */
        return "'', 0";
    case USAGE_BY_MINUTE: /* not in the hourly tables: never asked */
    case USAGE_BY_HOUR:
        return "'', hour_us";
    case USAGE_BY_DAY:
        return "'', hour_us / 86400000000 * 86400000000";
    }
    return "function, 0";
}

/* Binds ?1 since, ?2 until, ?3 function (when filtered), ?4 version. */
static void bind_filter(sqlite3_stmt *s, const usage_query *q)
{
    sqlite3_bind_int64(s, 1, q->since_us);
    sqlite3_bind_int64(s, 2, q->until_us);
    if (q->function[0]) sqlite3_bind_text(s, 3, q->function, -1, SQLITE_STATIC);
    if (q->version > 0) sqlite3_bind_int64(s, 4, q->version);
}

static int query_prepare(store *st, const usage_query *q, const char *select, const char *from,
                         const char *tcol, const char *group_extra, sqlite3_stmt **out,
                         rouse_errbuf *eb)
{
    char sql[2048];
    int n = snprintf(sql, sizeof(sql), "SELECT %s, %s FROM %s WHERE %s >= ?1 AND %s < ?2%s%s",
                     key_sql(q->by), select, from, tcol, tcol,
                     q->function[0] ? " AND function = ?3" : "",
                     q->version > 0 ? " AND version = ?4" : "");
    if (group_extra)
        n += snprintf(sql + n, sizeof(sql) - (size_t)n, " GROUP BY 1, 2%s", group_extra);
    if (n >= (int)sizeof(sql)) return rouse_err_set(eb, ROUSE_EINTERNAL, "usage query too long");
    int rc = prepare(st, sql, out, eb);
    if (rc == 0) bind_filter(*out, q);
    return rc;
}

/* Rows of the hourly table: the two key columns, then the sums. */
static int read_sums(store *st, sqlite3_stmt *s, usage_acc *acc, rouse_errbuf *eb)
{
    int src;
    const int c = 2;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *f = (const char *)sqlite3_column_text(s, 0);
        usage_group *e = usage_acc_group(acc, f ? f : "", sqlite3_column_int64(s, 1));
        if (!e) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading usage");
        int64_t inv = sqlite3_column_int64(s, c);
        e->invocations += inv;
        e->requests += sqlite3_column_int64(s, c + 1);
        e->errors += sqlite3_column_int64(s, c + 2);
        int64_t warm = sqlite3_column_int64(s, c + 3), tmpl = sqlite3_column_int64(s, c + 4),
                zero = sqlite3_column_int64(s, c + 5);
        e->starts[0] += inv - warm - tmpl - zero;
        e->starts[1] += warm;
        e->starts[2] += tmpl;
        e->starts[3] += zero;
        e->billed_ms += sqlite3_column_int64(s, c + 6);
        e->mb_ms += sqlite3_column_int64(s, c + 7);
        e->run_us += sqlite3_column_int64(s, c + 8);
        e->bytes_in += sqlite3_column_int64(s, c + 9);
        e->bytes_out += sqlite3_column_int64(s, c + 10);
        int64_t t = sqlite3_column_int64(s, c + 11);
        if (inv > 0 && (acc->first == 0 || t < acc->first)) acc->first = t;
    }
    sqlite3_reset(s);
    return src == SQLITE_DONE ? 0 : store_db_error(st, eb, src, "reading usage");
}

static int read_hist(store *st, sqlite3_stmt *s, usage_acc *acc, rouse_errbuf *eb)
{
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *f = (const char *)sqlite3_column_text(s, 0);
        usage_group *e = usage_acc_group(acc, f ? f : "", sqlite3_column_int64(s, 1));
        if (!e) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory reading usage");
        int b = sqlite3_column_int(s, 2);
        if (b >= 0 && b < USAGE_BUCKETS) e->hist[b] += sqlite3_column_int64(s, 3);
    }
    sqlite3_reset(s);
    return src == SQLITE_DONE ? 0 : store_db_error(st, eb, src, "reading usage latencies");
}

static int run_query(store *st, const usage_query *q, usage_acc *acc, rouse_errbuf *eb)
{
    static const char hourly_sums[] =
        "sum(invocations), sum(requests), sum(errors), sum(warm), sum(cold_template), "
        "sum(cold_zero), sum(billed_ms), sum(mb_ms), sum(run_us), sum(bytes_in), sum(bytes_out), "
        "min(hour_us)";
    sqlite3_stmt *s;
    /* Peaks are per function (whatever version ran): streamed from this
     * pass unless a version filter leaves other versions' calls out. */
    bool stream_peaks = acc->stream_peaks;
    int rc = read_records(st, q, acc, eb);
    if (rc < 0) return rc;
    if (q->by != USAGE_BY_MINUTE) {
        rc = query_prepare(st, q, hourly_sums, "usage_hourly", "hour_us", "", &s, eb);
        if (rc < 0) return rc;
        rc = read_sums(st, s, acc, eb);
        sqlite3_finalize(s);
        if (rc < 0) return rc;
        rc = query_prepare(st, q, "bucket, sum(n)", "usage_hourly_latency", "hour_us", ", 3", &s,
                           eb);
        if (rc < 0) return rc;
        rc = read_hist(st, s, acc, eb);
        sqlite3_finalize(s);
        if (rc < 0) return rc;
    }
    if (!q->peaks) return 0;
    rc = prepare(st,
                 q->function[0] ? "SELECT function, hour_us, peak FROM usage_hourly_peak WHERE "
                                  "hour_us >= ?1 AND hour_us < ?2 AND function = ?3 "
                                  "ORDER BY function, hour_us"
                                : "SELECT function, hour_us, peak FROM usage_hourly_peak WHERE "
                                  "hour_us >= ?1 AND hour_us < ?2 ORDER BY function, hour_us",
                 &s, eb);
    if (rc < 0) return rc;
    sqlite3_bind_int64(s, 1, q->since_us);
    sqlite3_bind_int64(s, 2, q->until_us);
    if (q->function[0]) sqlite3_bind_text(s, 3, q->function, -1, SQLITE_STATIC);
    int src;
    while (rc == 0 && (src = sqlite3_step(s)) == SQLITE_ROW) {
        const char *f = (const char *)sqlite3_column_text(s, 0);
        rc = usage_peaks_add(&acc->pk, f ? f : "", sqlite3_column_int64(s, 1),
                             sqlite3_column_int64(s, 2));
    }
    if (rc == 0 && src != SQLITE_DONE) rc = store_db_error(st, eb, src, "reading usage peaks");
    sqlite3_finalize(s);
    if (rc < 0 || stream_peaks) return rc;
    rc = prepare(st,
                 q->function[0] ? "SELECT function, " TS ", " TS " + queue_us + start_us, run_us "
                                  "FROM usage_calls WHERE " IN_RANGE " AND function = ?5 AND "
                                  "start != 0 ORDER BY id"
                                : "SELECT function, " TS ", " TS " + queue_us + start_us, run_us "
                                  "FROM usage_calls WHERE " IN_RANGE " AND start != 0 ORDER BY id",
                 &s, eb);
    if (rc < 0) return rc;
    bind_range(s, q->since_us, q->until_us);
    if (q->function[0]) sqlite3_bind_text(s, 5, q->function, -1, SQLITE_STATIC);
    rc = peaks_in_order(st, s, &acc->pk, eb);
    sqlite3_finalize(s);
    return rc;
}

int usage_query_run(store *st, const usage_query *q, usage_result *out, rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    /* Peaks are per function (whatever version ran): streamed from the
     * pass over the records unless a version filter leaves other versions'
     * calls out. */
    usage_acc acc;
    usage_acc_init(&acc, q, q->peaks && q->version == 0);
    store_lock(st);
    sqlite3 *db = store_db(st);
    int src = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    int rc = src == SQLITE_OK ? 0 : store_db_error(st, eb, src, "starting a usage read");
    if (rc == 0) {
        rc = run_query(st, q, &acc, eb);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    store_unlock(st);
    if (rc < 0) {
        usage_acc_fini(&acc);
        return rc;
    }
    usage_acc_result(&acc, out);
    return 0;
}

void usage_result_fini(usage_result *r)
{
    free(r->groups);
    free(r->peaks);
    memset(r, 0, sizeof(*r));
}
/* --- the list of records to ship (usage.h) -------------------------------- */

int usage_outbox_create(store *st, rouse_errbuf *eb)
{
    store_lock(st);
    int src = sqlite3_exec(store_db(st),
                           "CREATE TABLE IF NOT EXISTS usage_unshipped("
                           "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                           "  id INTEGER NOT NULL);"
                           "CREATE TABLE IF NOT EXISTS usage_ship_id("
                           "  k INTEGER PRIMARY KEY CHECK (k = 1),"
                           "  store_id TEXT NOT NULL);"
                           "INSERT OR IGNORE INTO usage_ship_id VALUES (1, lower(hex(randomblob(16))));",
                           NULL, NULL, NULL);
    int rc = src == SQLITE_OK ? 0 : store_db_error(st, eb, src, "creating the usage shipping list");
    store_unlock(st);
    return rc;
}

int usage_outbox_tx(store *st, rouse_errbuf *eb)
{
    /* TEMP: this connection's alone (the writer's), gone with it. Its body
     * names usage_unshipped unqualified (SQLite's rule for triggers), which
     * resolves to the main database's. */
    int src = sqlite3_exec(store_db(st),
                           "CREATE TEMP TRIGGER IF NOT EXISTS usage_list_unshipped "
                           "AFTER INSERT ON main.usage_calls BEGIN "
                           "INSERT INTO usage_unshipped(id) VALUES (new.id); END",
                           NULL, NULL, NULL);
    return src == SQLITE_OK ? 0 : store_db_error(st, eb, src, "listing usage records to ship");
}

int usage_outbox_store_id(store *st, char out[33], rouse_errbuf *eb)
{
    sqlite3_stmt *s;
    out[0] = '\0';
    store_lock(st);
    int rc = prepare(st, "SELECT store_id FROM usage_ship_id WHERE k = 1", &s, eb);
    if (rc == 0) {
        int src = sqlite3_step(s);
        if (src == SQLITE_ROW)
            snprintf(out, 33, "%s", (const char *)sqlite3_column_text(s, 0));
        else
            rc = store_db_error(st, eb, src == SQLITE_DONE ? SQLITE_CORRUPT : src,
                                "reading the usage store's identity");
        sqlite3_finalize(s);
    }
    store_unlock(st);
    return rc;
}

static void hex_of(const uint8_t *b, int n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

int usage_outbox_read(store *st, int64_t after_seq, int max, usage_rec *recs, int64_t *ids,
                      int *n, int64_t *last_seq, rouse_errbuf *eb)
{
    *n = 0;
    *last_seq = after_seq;
    sqlite3_stmt *s;
    store_lock(st);
    int rc = prepare(st,
                     "SELECT o.seq, u.id, ifnull(u.ts_us, u.id >> " USAGE_ID_SHIFT "), u.request_id, u.function, u.version, u.tenant, "
                     "u.start, u.queue_us, u.start_us, u.run_us, u.total_us, u.memory_mb, "
                     "u.bytes_in, u.bytes_out, u.status, u.trace_id "
                     "FROM usage_unshipped o LEFT JOIN usage_calls u ON u.id = o.id "
                     "WHERE o.seq > ?1 ORDER BY o.seq LIMIT ?2",
                     &s, eb);
    if (rc < 0) {
        store_unlock(st);
        return rc;
    }
    sqlite3_bind_int64(s, 1, after_seq);
    sqlite3_bind_int(s, 2, max);
    int src;
    while ((src = sqlite3_step(s)) == SQLITE_ROW) {
        *last_seq = sqlite3_column_int64(s, 0);
        if (sqlite3_column_type(s, 1) == SQLITE_NULL) continue; /* its record is gone */
        usage_rec *r = &recs[*n];
        memset(r, 0, sizeof(*r));
        ids[*n] = sqlite3_column_int64(s, 1);
        r->ts_us = sqlite3_column_int64(s, 2);
        if (sqlite3_column_type(s, 3) == SQLITE_INTEGER) {
            uint64_t v = (uint64_t)sqlite3_column_int64(s, 3);
            uint8_t b[8];
            for (int i = 7; i >= 0; i--, v >>= 8)
                b[i] = (uint8_t)v;
            hex_of(b, 8, r->request_id);
        } else {
            const char *t = (const char *)sqlite3_column_text(s, 3);
            snprintf(r->request_id, sizeof(r->request_id), "%s", t ? t : "");
        }
        const char *f = (const char *)sqlite3_column_text(s, 4);
        snprintf(r->function, sizeof(r->function), "%s", f ? f : "");
        r->version = sqlite3_column_int64(s, 5);
        const char *t = (const char *)sqlite3_column_text(s, 6);
        snprintf(r->tenant, sizeof(r->tenant), "%s", t ? t : "default");
        r->start = sqlite3_column_int(s, 7);
        r->queue_us = sqlite3_column_int64(s, 8);
        r->start_us = sqlite3_column_int64(s, 9);
        r->run_us = sqlite3_column_int64(s, 10);
        r->total_us = sqlite3_column_int64(s, 11);
        r->memory_mb = sqlite3_column_int64(s, 12);
        r->bytes_in = sqlite3_column_int64(s, 13);
        r->bytes_out = sqlite3_column_int64(s, 14);
        r->status = sqlite3_column_int(s, 15);
        if (sqlite3_column_type(s, 16) == SQLITE_BLOB && sqlite3_column_bytes(s, 16) == 16)
            hex_of(sqlite3_column_blob(s, 16), 16, r->trace_id);
        else if (sqlite3_column_type(s, 16) == SQLITE_TEXT)
            snprintf(r->trace_id, sizeof(r->trace_id), "%s",
                     (const char *)sqlite3_column_text(s, 16));
        (*n)++;
    }
    if (src != SQLITE_DONE) rc = store_db_error(st, eb, src, "reading usage records to ship");
    sqlite3_finalize(s);
    store_unlock(st);
    return rc;
}

int usage_outbox_pending(store *st, int64_t after_seq, int64_t *n, rouse_errbuf *eb)
{
    *n = 0;
    sqlite3_stmt *s;
    store_lock(st);
    int rc = prepare(st, "SELECT count(*) FROM usage_unshipped WHERE seq > ?1", &s, eb);
    if (rc == 0) {
        sqlite3_bind_int64(s, 1, after_seq);
        int src = sqlite3_step(s);
        if (src == SQLITE_ROW)
            *n = sqlite3_column_int64(s, 0);
        else
            rc = store_db_error(st, eb, src, "counting usage records to ship");
        sqlite3_finalize(s);
    }
    store_unlock(st);
    return rc;
}

#define PRUNE_MAX 100000

int usage_prune_shipped_tx(store *st, int64_t cutoff_us, int64_t shipped_seq, int64_t *n_rows,
                           bool *more, rouse_errbuf *eb)
{
    *n_rows = 0;
    *more = false;
    sqlite3_stmt *s;
    int rc = prepare(st, "DELETE FROM usage_unshipped WHERE seq <= ?1", &s, eb);
    if (rc < 0) return rc;
    sqlite3_bind_int64(s, 1, shipped_seq);
    rc = step_done(st, s, "dropping shipped usage records from the list", eb);
    sqlite3_finalize(s);
    if (rc < 0) return rc;
    /* Whatever is still listed is not shipped yet: it stays. */
    rc = prepare(st,
                 "DELETE FROM usage_calls WHERE id IN (SELECT id FROM usage_calls WHERE id < ?1 "
                 "AND " TS " < ?2 AND id NOT IN (SELECT id FROM usage_unshipped) ORDER BY id "
                 "LIMIT ?3)",
                 &s, eb);
    if (rc < 0) return rc;
    sqlite3_bind_int64(s, 1, usage_id_of(cutoff_us));
    sqlite3_bind_int64(s, 2, cutoff_us);
    sqlite3_bind_int(s, 3, PRUNE_MAX);
    rc = step_done(st, s, "removing shipped usage records", eb);
    sqlite3_finalize(s);
    if (rc == 0) {
        *n_rows = sqlite3_changes(store_db(st));
        *more = *n_rows == PRUNE_MAX;
    }
    return rc;
}
