/*
 * PostgreSQL helpers (see pg_util.h).
 *
 * A statement is sent with libpq's asynchronous calls and its answer
 * awaited with poll() against a deadline: a server that stopped answering
 * (stopped, partitioned away) costs the caller timeout_ms, never a hang.
 * The connection is then dropped: its state is unknown, and a new one
 * starts clean.
 */
#include "store/pg_util.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"

/* libpq's messages span lines ("...failed: Connection refused\n\tIs the
 * server running..."): one line, without trailing blanks. */
static void one_line(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    bool space = false;
    for (const char *p = in ? in : ""; *p && n + 1 < cap; p++) {
        bool blank = *p == '\n' || *p == '\t' || *p == '\r' || *p == ' ';
        if (blank) {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < cap) out[n++] = ' ';
        space = false;
        out[n++] = *p;
    }
    out[n] = '\0';
}

static int unavailable(PGconn **conn, const char *msg, rouse_errbuf *eb)
{
    char line[400];
    one_line(msg && *msg ? msg : "the connection to PostgreSQL was lost", line, sizeof(line));
    if (conn && *conn) {
        PQfinish(*conn);
        *conn = NULL;
    }
    return rouse_err_set(eb, ROUSE_EUNAVAILABLE, PG_UNAVAILABLE ": %s", line);
}

/* Notices ("relation ... already exists, skipping") are not errors: dropped. */
static void no_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

int pg_connect(const char *url, PGconn **out, rouse_errbuf *eb)
{
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", PG_CONNECT_TIMEOUT_S);
    /* Later keywords override what the URL says. */
    const char *const keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *const vals[] = {url, timeout, "rouse", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (!c) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory connecting to PostgreSQL");
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[400];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
        PQfinish(c);
        *out = NULL;
        return unavailable(NULL, msg, eb);
    }
    PQsetNoticeProcessor(c, no_notice, NULL);
    if (PQsetnonblocking(c, 1) != 0) {
        int rc = unavailable(&c, PQerrorMessage(c), eb);
        *out = NULL;
        return rc;
    }
    *out = c;
    return 0;
}

static int sqlstate_code(const char *st)
{
    if (!st || strlen(st) != 5) return ROUSE_EIO;
    if (strcmp(st, "23505") == 0) return ROUSE_EEXISTS;
    if (strncmp(st, "23", 2) == 0) return ROUSE_EINVAL;
    if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0 || strcmp(st, "55P03") == 0)
        return ROUSE_EBUSY;
    if (strncmp(st, "08", 2) == 0 || strncmp(st, "57P", 3) == 0 || strncmp(st, "53", 2) == 0)
        return ROUSE_EUNAVAILABLE;
    return ROUSE_EIO;
}

int pg_error(PGconn **conn, const PGresult *res, const char *what, rouse_errbuf *eb)
{
    PGconn *c = conn ? *conn : NULL;
    if (!c || PQstatus(c) != CONNECTION_OK)
        return unavailable(conn, c ? PQerrorMessage(c) : NULL, eb);
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    int rc = sqlstate_code(st);
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(c);
    if (rc == ROUSE_EUNAVAILABLE) return unavailable(conn, msg, eb);
    char line[400];
    one_line(msg, line, sizeof(line));
    return rouse_err_set(eb, rc, "shared state: %s: %s", what, line);
}

/* Waits until the socket is ready for events or the deadline passed. */
static int wait_socket(PGconn *c, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - (int64_t)(rouse_now_ns() / 1000000u);
        if (left <= 0) return 0;
        struct pollfd p = {.fd = PQsocket(c), .events = events};
        int n = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
        if (n > 0) return 1;
        if (n < 0 && errno != EINTR) return -1;
    }
}

int pg_exec(PGconn **conn, const char *sql, int n, const char *const *params, int timeout_ms,
            PGresult **res, const char *what, rouse_errbuf *eb)
{
    if (res) *res = NULL;
    PGconn *c = *conn;
    if (!c) return unavailable(conn, "not connected to PostgreSQL", eb);
    int64_t deadline = (int64_t)(rouse_now_ns() / 1000000u) + timeout_ms;
    int sent = n == 0 && !params ? PQsendQuery(c, sql)
                                 : PQsendQueryParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (!sent) return unavailable(conn, PQerrorMessage(c), eb);
    int f;
    while ((f = PQflush(c)) == 1) {
        int w = wait_socket(c, POLLOUT | POLLIN, deadline);
        if (w <= 0) goto out_timeout;
        if (!PQconsumeInput(c)) return unavailable(conn, PQerrorMessage(c), eb);
    }
    if (f < 0) return unavailable(conn, PQerrorMessage(c), eb);

    PGresult *last = NULL, *bad = NULL;
    for (;;) {
        while (PQisBusy(c)) {
            int w = wait_socket(c, POLLIN, deadline);
            if (w <= 0) {
                PQclear(last);
                PQclear(bad);
                goto out_timeout;
            }
            if (!PQconsumeInput(c)) {
                PQclear(last);
                PQclear(bad);
                return unavailable(conn, PQerrorMessage(c), eb);
            }
        }
        PGresult *r = PQgetResult(c);
        if (!r) break;
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
            if (!bad)
                bad = r;
            else
                PQclear(r);
            continue;
        }
        PQclear(last);
        last = r;
    }
    if (bad) {
        PQclear(last);
        int rc = pg_error(conn, bad, what, eb);
        PQclear(bad);
        return rc;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        PQclear(last);
        return unavailable(conn, PQerrorMessage(c), eb);
    }
    if (res)
        *res = last;
    else
        PQclear(last);
    return 0;

out_timeout:;
    char msg[128];
    snprintf(msg, sizeof(msg), "PostgreSQL did not answer within %d ms (%s)", timeout_ms, what);
    return unavailable(conn, msg, eb);
}

pg_int pg_i64(int64_t v)
{
    pg_int p;
    snprintf(p.s, sizeof(p.s), "%" PRId64, v);
    return p;
}

int64_t pg_get_i64(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col)) return 0;
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

int pg_migrate(PGconn **conn, const char *part, const char *const *migrations, int n,
               rouse_errbuf *eb)
{
    const int t = PG_STATEMENT_TIMEOUT_MS;
    int rc = pg_exec(conn, "BEGIN", 0, NULL, t, NULL, "starting the migrations", eb);
    if (rc < 0) return rc;
    rc = pg_exec(conn,
                 "SELECT pg_advisory_xact_lock(hashtext('rouse_schema'));"
                 "CREATE TABLE IF NOT EXISTS rouse_schema("
                 "  part text NOT NULL,"
                 "  version int NOT NULL,"
                 "  applied_ms bigint NOT NULL,"
                 "  PRIMARY KEY (part, version))",
                 0, NULL, t, NULL, "locking the schema", eb);
    PGresult *r = NULL;
    const char *p1[] = {part};
    if (rc == 0)
        rc = pg_exec(conn, "SELECT coalesce(max(version), 0) FROM rouse_schema WHERE part = $1",
                     1, p1, t, &r, "reading the schema version", eb);
    int64_t cur = rc == 0 ? pg_get_i64(r, 0, 0) : 0;
    PQclear(r);
    if (rc == 0 && cur > n)
        rc = rouse_err_set(eb, ROUSE_ESTATE,
                           "shared state: the %s schema is at version %" PRId64
                           ", newer than this rouse knows (%d): upgrade rouse",
                           part, cur, n);
    for (int64_t v = cur; rc == 0 && v < n; v++) {
        char what[64];
        snprintf(what, sizeof(what), "%s migration %" PRId64, part, v + 1);
        if ((rc = pg_exec(conn, migrations[v], 0, NULL, t, NULL, what, eb)) < 0) break;
        pg_int ver = pg_i64(v + 1), now = pg_i64(rouse_wall_ms());
        const char *p3[] = {part, ver.s, now.s};
        rc = pg_exec(conn, "INSERT INTO rouse_schema(part, version, applied_ms) VALUES ($1, $2, $3)",
                     3, p3, t, NULL, what, eb);
    }
    if (rc == 0) return pg_exec(conn, "COMMIT", 0, NULL, t, NULL, "committing the migrations", eb);
    rouse_errbuf ignore;
    if (*conn) pg_exec(conn, "ROLLBACK", 0, NULL, t, NULL, "rolling back", &ignore);
    return rc;
}

void pg_health_init(pg_health *h)
{
    memset(h, 0, sizeof(*h));
    pthread_mutex_init(&h->lock, NULL);
}

void pg_health_fini(pg_health *h)
{
    pthread_mutex_destroy(&h->lock);
}

void pg_health_up(pg_health *h)
{
    pthread_mutex_lock(&h->lock);
    h->down = false;
    h->since_ms = h->checked_ms = 0;
    h->msg[0] = '\0';
    pthread_mutex_unlock(&h->lock);
}

void pg_health_down(pg_health *h, const char *msg)
{
    pthread_mutex_lock(&h->lock);
    int64_t now = rouse_wall_ms();
    if (!h->down) h->since_ms = now;
    h->down = true;
    h->checked_ms = now;
    snprintf(h->msg, sizeof(h->msg), "%s", msg ? msg : "");
    pthread_mutex_unlock(&h->lock);
}

bool pg_health_get(pg_health *h, int64_t *since_ms, int64_t *checked_ms, char *msg, size_t cap)
{
    pthread_mutex_lock(&h->lock);
    bool down = h->down;
    if (since_ms) *since_ms = h->since_ms;
    if (checked_ms) *checked_ms = h->checked_ms;
    if (msg && cap) snprintf(msg, cap, "%s", h->msg);
    pthread_mutex_unlock(&h->lock);
    return down;
}
