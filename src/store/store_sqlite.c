/*
 * The registry on SQLite: <data_dir>/rouse.db in WAL mode.
 *
 * Invariants:
 * - Durability: synchronous=FULL, so a write transaction has reached the
 *   disk when COMMIT returns; every write call returns 0 only after COMMIT.
 * - Consistency: each call is one transaction (writes take the write lock
 *   up front with BEGIN IMMEDIATE, so they never fail half-way on a lock
 *   upgrade); foreign keys tie versions and aliases to their function and
 *   routes to existing versions, so deleting a function removes everything
 *   of it and no route can name a missing version.
 * - Versions are immutable and numbered 1, 2, 3... per function (max + 1):
 *   a deleted and re-created function starts again at 1.
 * - Every alias has 1..STORE_MAX_ROUTES routes with positive weights; its
 *   first route is its primary version (the one rollback moves from).
 * - SQL is constant text; user data only travels through sqlite3_bind_*.
 *
 * One connection per store, its prepared statements cached; a mutex makes
 * the store safe to share between threads. serve opens two: one that its
 * event loop reads through, and one that its writer thread (store/writer.c)
 * owns and writes through, in groups: store_tx_begin, a savepoint per
 * write (one failing write is undone alone), one COMMIT for the group. WAL
 * lets the reader go on while the writer commits.
 */
#include "store/store.h"
#include "store/store_int.h"

#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "store/blob.h"
#include "store/fsutil.h"
#include "store/registry_pg.h"
#include "store/replica.h"

#define DB_FILE "rouse.db"
#define BUSY_TIMEOUT_MS 5000

/* Schema migrations: entry i takes the schema from version i to i + 1. Only
 * append; never edit a released entry. */
static const char *const migrations[] = {
    /* 1: functions, versions, aliases and their routes. */
    "CREATE TABLE functions("
    "  name TEXT PRIMARY KEY,"
    "  created_ms INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE versions("
    "  function TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,"
    "  version INTEGER NOT NULL CHECK (version > 0),"
    "  model_digest TEXT NOT NULL,"
    "  config_json TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (function, version)"
    ") WITHOUT ROWID;"
    "CREATE TABLE aliases("
    "  function TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  PRIMARY KEY (function, name)"
    ") WITHOUT ROWID;"
    "CREATE TABLE alias_routes("
    "  function TEXT NOT NULL,"
    "  alias TEXT NOT NULL,"
    "  position INTEGER NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  weight INTEGER NOT NULL CHECK (weight > 0),"
    "  PRIMARY KEY (function, alias, position),"
    "  FOREIGN KEY (function, alias) REFERENCES aliases(function, name) ON DELETE CASCADE,"
    "  FOREIGN KEY (function, version) REFERENCES versions(function, version) ON DELETE CASCADE"
    ") WITHOUT ROWID;",
    /* 2: usage metering (usage_sqlite.c): one row per invocation, and the
     * hourly aggregates older rows are rolled up into. No foreign keys:
     * usage outlives a deleted function. */
    "CREATE TABLE usage_records("
    "  id INTEGER PRIMARY KEY,"
    "  ts_us INTEGER NOT NULL,"
    "  request_id TEXT NOT NULL,"
    "  function TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  tenant TEXT NOT NULL,"
    "  start INTEGER NOT NULL,"
    "  queue_us INTEGER NOT NULL,"
    "  start_us INTEGER NOT NULL,"
    "  run_us INTEGER NOT NULL,"
    "  total_us INTEGER NOT NULL,"
    "  billed_ms INTEGER NOT NULL,"
    "  memory_mb INTEGER NOT NULL,"
    "  bytes_in INTEGER NOT NULL,"
    "  bytes_out INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  error INTEGER NOT NULL,"
    "  lat_bucket INTEGER NOT NULL,"
    "  trace_id TEXT NOT NULL"
    ");"
    "CREATE INDEX usage_records_ts ON usage_records(ts_us);"
    "CREATE INDEX usage_records_fn_ts ON usage_records(function, ts_us);"
    "CREATE TABLE usage_hourly("
    "  function TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  tenant TEXT NOT NULL,"
    "  hour_us INTEGER NOT NULL,"
    "  invocations INTEGER NOT NULL,"
    "  requests INTEGER NOT NULL,"
    "  errors INTEGER NOT NULL,"
    "  warm INTEGER NOT NULL,"
    "  cold_template INTEGER NOT NULL,"
    "  cold_zero INTEGER NOT NULL,"
    "  billed_ms INTEGER NOT NULL,"
    "  mb_ms INTEGER NOT NULL,"
    "  run_us INTEGER NOT NULL,"
    "  bytes_in INTEGER NOT NULL,"
    "  bytes_out INTEGER NOT NULL,"
    "  PRIMARY KEY (function, version, tenant, hour_us)"
    ") WITHOUT ROWID;"
    "CREATE INDEX usage_hourly_hour ON usage_hourly(hour_us);"
    "CREATE TABLE usage_hourly_latency("
    "  function TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  tenant TEXT NOT NULL,"
    "  hour_us INTEGER NOT NULL,"
    "  bucket INTEGER NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  PRIMARY KEY (function, version, tenant, hour_us, bucket)"
    ") WITHOUT ROWID;"
    "CREATE TABLE usage_hourly_peak("
    "  function TEXT NOT NULL,"
    "  hour_us INTEGER NOT NULL,"
    "  peak INTEGER NOT NULL,"
    "  PRIMARY KEY (function, hour_us)"
    ") WITHOUT ROWID;",
    /* 3: asynchronous jobs and batch files (jobs_sqlite.c). A job's id is
     * its place in the FIFO order of acceptance; ids are never reused. */
    "CREATE TABLE jobs("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  function TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL,"
    "  started_ms INTEGER,"
    "  finished_ms INTEGER,"
    "  run_after_ms INTEGER NOT NULL DEFAULT 0,"
    "  idem_key TEXT,"
    "  body_sha TEXT,"
    "  callback TEXT,"
    "  cb_state INTEGER NOT NULL DEFAULT 0,"
    "  cb_attempts INTEGER NOT NULL DEFAULT 0,"
    "  cb_error TEXT,"
    "  status INTEGER,"
    "  last_error TEXT,"
    "  result BLOB,"
    "  result_digest TEXT,"
    "  result_type TEXT,"
    "  result_json_len INTEGER,"
    "  expires_ms INTEGER,"
    "  batch INTEGER,"
    "  batch_index INTEGER"
    ");"
    "CREATE INDEX jobs_queue ON jobs(function, state, id);"
    /* Bodies apart: a job's row is rewritten at each change of state, its
     * body never. */
    "CREATE TABLE job_bodies("
    "  id INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,"
    "  json_len INTEGER NOT NULL DEFAULT -1,"
    "  body BLOB NOT NULL"
    ");"
    "CREATE UNIQUE INDEX jobs_idem ON jobs(function, idem_key) WHERE idem_key IS NOT NULL;"
    "CREATE INDEX jobs_batch ON jobs(batch, batch_index) WHERE batch IS NOT NULL;"
    "CREATE INDEX jobs_expiry ON jobs(expires_ms) WHERE expires_ms IS NOT NULL;"
    "CREATE INDEX jobs_result_blob ON jobs(result_digest) WHERE result_digest IS NOT NULL;"
    "CREATE TABLE batches("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  function TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  input_digest TEXT NOT NULL,"
    "  n_items INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  finished_ms INTEGER,"
    "  output_digest TEXT,"
    "  errors_digest TEXT,"
    "  expires_ms INTEGER"
    ");",
    /* 4: a batch item's body is its line of the batch's input blob, read in
     * place (body_off, body_len), not a copy in job_bodies; a batch's
     * counts by state are kept by triggers, so that reading them is a
     * primary-key lookup, not a count of its items. */
    "ALTER TABLE jobs ADD COLUMN body_off INTEGER;"
    "ALTER TABLE jobs ADD COLUMN body_len INTEGER;"
    "CREATE TABLE batch_counts("
    "  batch INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  n INTEGER NOT NULL,"
    "  PRIMARY KEY(batch, state)"
    ") WITHOUT ROWID;"
    "INSERT INTO batch_counts(batch, state, n)"
    "  SELECT batch, state, COUNT(*) FROM jobs WHERE batch IS NOT NULL GROUP BY batch, state;"
    "CREATE TRIGGER batch_item_in AFTER INSERT ON jobs WHEN new.batch IS NOT NULL BEGIN"
    "  INSERT INTO batch_counts(batch, state, n) VALUES (new.batch, new.state, 1)"
    "    ON CONFLICT(batch, state) DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER batch_item_state AFTER UPDATE OF state ON jobs"
    "  WHEN new.batch IS NOT NULL AND new.state <> old.state BEGIN"
    "  UPDATE batch_counts SET n = n - 1 WHERE batch = old.batch AND state = old.state;"
    "  INSERT INTO batch_counts(batch, state, n) VALUES (new.batch, new.state, 1)"
    "    ON CONFLICT(batch, state) DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER batch_item_out AFTER DELETE ON jobs WHEN old.batch IS NOT NULL BEGIN"
    "  UPDATE batch_counts SET n = n - 1 WHERE batch = old.batch AND state = old.state;"
    " END;"
    "CREATE TRIGGER batch_out AFTER DELETE ON batches BEGIN"
    "  DELETE FROM batch_counts WHERE batch = old.id;"
    " END;",
    /* 5: API keys and tenants (keys_sqlite.c, server/auth.h). A key is
     * stored as the SHA-256 of its secret, never the secret. A function of
     * tenant T other than "default" is keyed "T:name" (store_fn_key_valid),
     * so names are unique per tenant and every table that names a function
     * (versions, aliases, jobs, batches, usage) is per tenant without a
     * change; the tenant columns below are derived from that key, so they
     * can never disagree with it. Blobs are content-addressed files shared
     * by whoever uploaded the same bytes: blob_owners says which tenants
     * did (a blob without a row belongs to "default"). */
    "CREATE TABLE api_keys("
    "  id TEXT PRIMARY KEY,"
    "  tenant TEXT NOT NULL,"
    "  role TEXT NOT NULL CHECK (role IN ('admin', 'deploy', 'invoke')),"
    "  hash TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER,"
    "  revoked_ms INTEGER"
    ") WITHOUT ROWID;"
    "CREATE TABLE blob_owners("
    "  tenant TEXT NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (digest, tenant)"
    ") WITHOUT ROWID;"
    "ALTER TABLE functions ADD COLUMN tenant TEXT GENERATED ALWAYS AS ("
    "  CASE WHEN instr(name, ':') > 0 THEN substr(name, 1, instr(name, ':') - 1)"
    "  ELSE 'default' END) VIRTUAL;"
    "ALTER TABLE jobs ADD COLUMN tenant TEXT GENERATED ALWAYS AS ("
    "  CASE WHEN instr(function, ':') > 0 THEN substr(function, 1, instr(function, ':') - 1)"
    "  ELSE 'default' END) VIRTUAL;"
    "ALTER TABLE batches ADD COLUMN tenant TEXT GENERATED ALWAYS AS ("
    "  CASE WHEN instr(function, ':') > 0 THEN substr(function, 1, instr(function, ':') - 1)"
    "  ELSE 'default' END) VIRTUAL;",
    /* 6: the accuracy figures of a version's plan against fp32, as the
     * deploy check measured them (store/accuracy.h). */
    "CREATE TABLE version_accuracy("
    "  function TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  figures TEXT NOT NULL,"
    "  PRIMARY KEY (function, version),"
    "  FOREIGN KEY (function, version) REFERENCES versions(function, version) ON DELETE CASCADE"
    ") WITHOUT ROWID;",
    /* 7: a batch's counts by state are moved by the statements that move
     * its items (jobs_sqlite.c), in bulk: all its items counted once when
     * it is created, a lease or a settle write of many items as one move
     * per batch and state. A trigger per item fired inside the writer's
     * savepoint cost more than the item's own update. The trigger on the
     * removal of items (expiry) stays. */
    ("DROP TRIGGER batch_item_in;"
     "DROP TRIGGER batch_item_state;"),
    /* 8: usage records keyed by time (usage_sqlite.c): the row id is the
     * arrival time in µs times 1024 plus a sequence number, so that a time
     * range is a range of the table itself and no index is kept beside it
     * (the two indexes, by time and by function and time, were two thirds
     * of a record's insert). Old records keep their order within a µs. */
    ("CREATE TABLE usage_records_by_time("
     "  id INTEGER PRIMARY KEY,"
     "  ts_us INTEGER NOT NULL,"
     "  request_id TEXT NOT NULL,"
     "  function TEXT NOT NULL,"
     "  version INTEGER NOT NULL,"
     "  tenant TEXT NOT NULL,"
     "  start INTEGER NOT NULL,"
     "  queue_us INTEGER NOT NULL,"
     "  start_us INTEGER NOT NULL,"
     "  run_us INTEGER NOT NULL,"
     "  total_us INTEGER NOT NULL,"
     "  billed_ms INTEGER NOT NULL,"
     "  memory_mb INTEGER NOT NULL,"
     "  bytes_in INTEGER NOT NULL,"
     "  bytes_out INTEGER NOT NULL,"
     "  status INTEGER NOT NULL,"
     "  error INTEGER NOT NULL,"
     "  lat_bucket INTEGER NOT NULL,"
     "  trace_id TEXT NOT NULL"
     ");"
     "INSERT INTO usage_records_by_time SELECT"
     "  max(0, min(ts_us, 9007199254740990)) * 1024"
     "    + ((row_number() OVER (PARTITION BY ts_us ORDER BY id) - 1) & 1023),"
     "  ts_us, request_id, function, version, tenant, start, queue_us, start_us, run_us,"
     "  total_us, billed_ms, memory_mb, bytes_in, bytes_out, status, error, lat_bucket,"
     "  trace_id FROM usage_records;"
     "DROP TABLE usage_records;"
     "ALTER TABLE usage_records_by_time RENAME TO usage_records;"),
    /* 9: a batch's items are created in chunks after its POST answered
     * (jobs_sqlite.c), so that its first items run while the rest are
     * still being inserted. first_id: the ids its items have (first_id +
     * batch_index), reserved when it is accepted, so that they come before
     * every job accepted after it (FIFO); n_created: how many exist;
     * create_off: where in the input the next chunk starts, NULL once every
     * item exists (older batches were created whole). */
    ("ALTER TABLE batches ADD COLUMN first_id INTEGER;"
     "ALTER TABLE batches ADD COLUMN n_created INTEGER;"
     "ALTER TABLE batches ADD COLUMN create_off INTEGER;"
     "UPDATE batches SET n_created = n_items;"
     "CREATE INDEX batches_creating ON batches(function) WHERE create_off IS NOT NULL;"),
    /* 10: usage records packed (usage_sqlite.c) into usage_calls: what
     * follows from the rest is not stored (the billed ms from run_us, the
     * error kind from the status, the latency bucket from total_us), the
     * arrival µs only when the id does not hold it (NULL: id >> 10), the
     * request id as a 64-bit integer and the trace id as 16 bytes (NULL:
     * none), the default tenant as NULL. The view usage_records shows the
     * records with the columns they had but the latency bucket (ids as
     * hex text, the error kind as inv_error_of gives it); records from
     * before keep their ids as the text they were. */
    ("CREATE TABLE usage_calls("
     "  id INTEGER PRIMARY KEY,"
     "  ts_us INTEGER,"
     "  request_id BLOB,"
     "  function TEXT NOT NULL,"
     "  version INTEGER NOT NULL,"
     "  tenant TEXT,"
     "  start INTEGER NOT NULL,"
     "  queue_us INTEGER NOT NULL,"
     "  start_us INTEGER NOT NULL,"
     "  run_us INTEGER NOT NULL,"
     "  total_us INTEGER NOT NULL,"
     "  memory_mb INTEGER NOT NULL,"
     "  bytes_in INTEGER NOT NULL,"
     "  bytes_out INTEGER NOT NULL,"
     "  status INTEGER NOT NULL,"
     "  trace_id BLOB"
     ");"
     "INSERT INTO usage_calls SELECT"
     "  id, CASE WHEN id >> 10 = ts_us THEN NULL ELSE ts_us END, request_id, function, version,"
     "  nullif(tenant, 'default'), start, queue_us, start_us, run_us, total_us, memory_mb,"
     "  bytes_in, bytes_out, status, nullif(trace_id, '') FROM usage_records;"
     "DROP TABLE usage_records;"
     "CREATE VIEW usage_records AS SELECT"
     "  id, ifnull(ts_us, id >> 10) AS ts_us,"
     "  CASE typeof(request_id) WHEN 'integer' THEN printf('%016x', request_id)"
     "    ELSE request_id END AS request_id,"
     "  function, version, ifnull(tenant, 'default') AS tenant, start, queue_us, start_us,"
     "  run_us, total_us, (run_us + 999) / 1000 AS billed_ms, memory_mb, bytes_in, bytes_out,"
     "  status, CASE WHEN status < 400 THEN 0 WHEN status = 404 THEN 2 WHEN status = 429 THEN 3"
     "    WHEN status = 504 THEN 4 WHEN status = 503 THEN 5 WHEN status < 500 THEN 1"
     "    ELSE 6 END AS error,"
     "  CASE typeof(trace_id) WHEN 'blob' THEN lower(hex(trace_id))"
     "    ELSE ifnull(trace_id, '') END AS trace_id"
     "  FROM usage_calls;"),
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* The cached statements; ?1, ?2... are bound per call. */
#define STMT_MAP(X)                                                                                \
    X(BEGIN_WRITE, "BEGIN IMMEDIATE")                                                              \
    X(BEGIN_READ, "BEGIN")                                                                         \
    X(COMMIT, "COMMIT")                                                                            \
    X(ROLLBACK, "ROLLBACK")                                                                        \
    X(SAVEPOINT, "SAVEPOINT op")                                                                   \
    X(SP_RELEASE, "RELEASE op")                                                                    \
    X(SP_ROLLBACK, "ROLLBACK TO op")                                                               \
    X(FN_GET, "SELECT created_ms FROM functions WHERE name = ?1")                                  \
    X(FN_INSERT, "INSERT INTO functions(name, created_ms) VALUES (?1, ?2)")                        \
    X(FN_DELETE, "DELETE FROM functions WHERE name = ?1")                                          \
    X(FN_NAMES, "SELECT name FROM functions ORDER BY name")                                        \
    X(VER_NEXT, "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE function = ?1")          \
    X(VER_INSERT, "INSERT INTO versions(function, version, model_digest, config_json, created_ms)" \
                  " VALUES (?1, ?2, ?3, ?4, ?5)")                                                  \
    X(VER_GET, "SELECT model_digest, config_json, created_ms FROM versions"                        \
               " WHERE function = ?1 AND version = ?2")                                            \
    X(VER_LIST, "SELECT version, model_digest, config_json, created_ms FROM versions"              \
                " WHERE function = ?1 ORDER BY version")                                           \
    X(VER_BELOW, "SELECT MAX(version) FROM versions WHERE function = ?1 AND version < ?2")         \
    X(ALIAS_INSERT, "INSERT OR IGNORE INTO aliases(function, name) VALUES (?1, ?2)")               \
    X(ROUTES_DELETE, "DELETE FROM alias_routes WHERE function = ?1 AND alias = ?2")                \
    X(ROUTE_INSERT, "INSERT INTO alias_routes(function, alias, position, version, weight)"         \
                    " VALUES (?1, ?2, ?3, ?4, ?5)")                                                \
    X(ROUTES_GET, "SELECT version, weight FROM alias_routes"                                       \
                  " WHERE function = ?1 AND alias = ?2 ORDER BY position")                         \
    X(ROUTES_ALL, "SELECT alias, version, weight FROM alias_routes"                                \
                  " WHERE function = ?1 ORDER BY alias, position")                                 \
    X(BLOB_REFS, "SELECT (SELECT COUNT(*) FROM versions WHERE model_digest = ?1"                   \
                 "    OR instr(config_json, '\"' || ?1 || '\"') > 0)"                              \
                 " + (SELECT COUNT(*) FROM jobs WHERE result_digest = ?1)"                         \
                 " + (SELECT COUNT(*) FROM batches WHERE input_digest = ?1"                        \
                 "    OR output_digest = ?1 OR errors_digest = ?1)")

enum stmt_id {
#define STMT_ENUM_(id, sql) ST_##id,
    STMT_MAP(STMT_ENUM_)
#undef STMT_ENUM_
        ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
#define STMT_SQL_(id, sql) sql,
    STMT_MAP(STMT_SQL_)
#undef STMT_SQL_
};

/* Statements of the store's other files (store_stmt, store_int.h): jobs,
 * keys, usage and accuracy hold about 60 between them. */
#define EXT_STMT_MAX 96

struct store {
    sqlite3 *db;
    pthread_mutex_t lock; /* one call at a time on the connection */
    sqlite3_stmt *st[ST_COUNT];
    const char *ext_sql[EXT_STMT_MAX];
    sqlite3_stmt *ext_st[EXT_STMT_MAX];
    int n_ext;
    registry_pg *pg; /* the shared registry, or NULL (store_attach_shared) */
    store_shared_hook hook;
    void *hook_user;
};

/* --- small helpers ------------------------------------------------------- */

bool store_name_valid(const char *name)
{
    if (!name) return false;
    size_t i = 0;
    for (; name[i]; i++) {
        char c = name[i];
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '_' || c == '-'));
        if (!ok || i >= STORE_NAME_MAX) return false;
    }
    return i > 0;
}

bool store_tenant_valid(const char *t)
{
    if (!t) return false;
    size_t i = 0;
    for (; t[i]; i++) {
        char c = t[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && c == '-');
        if (!ok || i >= STORE_NAME_MAX) return false;
    }
    return i > 0;
}

bool store_fn_key_valid(const char *key)
{
    if (!key) return false;
    const char *colon = strchr(key, ':');
    if (!colon) return store_name_valid(key);
    if (strlen(key) > STORE_NAME_MAX) return false;
    char tenant[STORE_NAME_MAX + 1];
    memcpy(tenant, key, (size_t)(colon - key));
    tenant[colon - key] = '\0';
    return strcmp(tenant, STORE_DEFAULT_TENANT) != 0 && store_tenant_valid(tenant) &&
           store_name_valid(colon + 1);
}

int store_fn_key(const char *tenant, const char *name, char *out, size_t cap)
{
    if (!store_name_valid(name)) return ROUSE_EINVAL;
    int n = !tenant || !*tenant || strcmp(tenant, STORE_DEFAULT_TENANT) == 0
                ? snprintf(out, cap, "%s", name)
                : snprintf(out, cap, "%s:%s", tenant, name);
    if (n < 0 || (size_t)n >= cap || n > STORE_NAME_MAX) return ROUSE_ERANGE;
    return 0;
}

void store_fn_key_split(const char *key, char *tenant, size_t tenant_cap, const char **name)
{
    const char *colon = strchr(key, ':');
    if (!colon) {
        snprintf(tenant, tenant_cap, "%s", STORE_DEFAULT_TENANT);
        *name = key;
        return;
    }
    snprintf(tenant, tenant_cap, "%.*s", (int)(colon - key), key);
    *name = colon + 1;
}

bool store_version_parse(const char *s, int64_t *version)
{
    int64_t v = 0;
    if (!*s) return false;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        if (v > (INT64_MAX - (*p - '0')) / 10) return false;
        v = v * 10 + (*p - '0');
    }
    *version = v;
    return true;
}

static int sqlite_to_rouse(int src)
{
    switch (src & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return ROUSE_EBUSY;
    case SQLITE_NOMEM:
        return ROUSE_ENOMEM;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return ROUSE_EFORMAT;
    case SQLITE_CONSTRAINT:
        return ROUSE_EINVAL;
    default:
        return ROUSE_EIO;
    }
}

/* Records a SQLite failure; call before the statement is reset, which
 * would replace the connection's message. */
static int db_err(store *s, rouse_errbuf *eb, int src, const char *what)
{
    return rouse_err_set(eb, sqlite_to_rouse(src), "registry database: %s: %s", what,
                         sqlite3_errmsg(s->db));
}

static void stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int bind_text(sqlite3_stmt *st, int i, const char *text)
{
    return sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
}

/* Runs a statement that returns no rows. */
static int exec_stmt(store *s, sqlite3_stmt *st, const char *what, rouse_errbuf *eb)
{
    int src = sqlite3_step(st);
    int rc = src == SQLITE_DONE ? 0 : db_err(s, eb, src, what);
    stmt_done(st);
    return rc;
}

static int tx_begin(store *s, bool write, rouse_errbuf *eb)
{
    return exec_stmt(s, s->st[write ? ST_BEGIN_WRITE : ST_BEGIN_READ], "starting a transaction",
                     eb);
}

static void tx_rollback(store *s)
{
    if (sqlite3_get_autocommit(s->db)) return; /* SQLite already rolled back */
    sqlite3_step(s->st[ST_ROLLBACK]);
    stmt_done(s->st[ST_ROLLBACK]);
}

static int tx_commit(store *s, rouse_errbuf *eb)
{
    int rc = exec_stmt(s, s->st[ST_COMMIT], "committing", eb);
    if (rc < 0) tx_rollback(s);
    return rc;
}

/* Ends a transaction: commits when rc is 0, otherwise rolls back and keeps rc. */
static int tx_end(store *s, int rc, rouse_errbuf *eb)
{
    if (rc == 0) return tx_commit(s, eb);
    tx_rollback(s);
    return rc;
}

/* A function as messages name it: a key's name within its tenant (the
 * caller knows its tenant; the key form is the registry's own). */
static const char *shown(const char *key)
{
    const char *colon = key ? strchr(key, ':') : NULL;
    return colon ? colon + 1 : key;
}

static int check_name(const char *kind, const char *name, rouse_errbuf *eb)
{
    /* Functions are named by their key (a name, or "tenant:name"). */
    if (strcmp(kind, "function") == 0 ? store_fn_key_valid(name) : store_name_valid(name)) return 0;
    return rouse_err_set(eb, ROUSE_EINVAL,
                         "%s name '%.80s' is invalid: use 1 to %d characters of a-z, 0-9, '_' "
                         "and '-', starting with a letter or digit",
                         kind, name ? name : "(null)", STORE_NAME_MAX);
}

/* 0 when the function exists, ROUSE_ENOTFOUND naming it otherwise. */
static int function_exists(store *s, const char *name, int64_t *created_ms, rouse_errbuf *eb)
{
    sqlite3_stmt *st = s->st[ST_FN_GET];
    bind_text(st, 1, name);
    int src = sqlite3_step(st);
    int rc = 0;
    if (src == SQLITE_ROW) {
        if (created_ms) *created_ms = sqlite3_column_int64(st, 0);
    } else if (src == SQLITE_DONE) {
        rc = rouse_err_set(eb, ROUSE_ENOTFOUND, "no function named '%s'", shown(name));
    } else {
        rc = db_err(s, eb, src, "reading a function");
    }
    stmt_done(st);
    return rc;
}

/* Copies a version row (digest, config, created) from columns col.. of st. */
static int read_version(sqlite3_stmt *st, int col, store_version *out)
{
    const char *digest = (const char *)sqlite3_column_text(st, col);
    const char *config = (const char *)sqlite3_column_text(st, col + 1);
    snprintf(out->model_digest, sizeof(out->model_digest), "%s", digest ? digest : "");
    out->config_json = strdup(config ? config : "");
    out->created_ms = sqlite3_column_int64(st, col + 2);
    return out->config_json ? 0 : ROUSE_ENOMEM;
}

/* Reads one version; ROUSE_ENOTFOUND names the function and the version. */
static int version_get(store *s, const char *function, int64_t version, store_version *out,
                       rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st = s->st[ST_VER_GET];
    bind_text(st, 1, function);
    sqlite3_bind_int64(st, 2, version);
    int src = sqlite3_step(st);
    int rc;
    if (src == SQLITE_ROW) {
        out->version = version;
        rc = read_version(st, 0, out);
        if (rc < 0) rouse_err_set(eb, rc, "out of memory reading a version");
    } else if (src == SQLITE_DONE) {
        rc = rouse_err_set(eb, ROUSE_ENOTFOUND, "function '%s' has no version %lld",
                           shown(function), (long long)version);
    } else {
        rc = db_err(s, eb, src, "reading a version");
    }
    stmt_done(st);
    return rc;
}

/* Reads an alias's routes; *n = 0 when the alias does not exist. */
static int routes_get(store *s, const char *function, const char *alias, store_route *routes,
                      int *n, rouse_errbuf *eb)
{
    sqlite3_stmt *st = s->st[ST_ROUTES_GET];
    bind_text(st, 1, function);
    bind_text(st, 2, alias);
    *n = 0;
    int src, rc = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == STORE_MAX_ROUTES) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT,
                               "alias '%s' of function '%s' has more than %d routes", alias,
                               function, STORE_MAX_ROUTES);
            break;
        }
        routes[*n].version = sqlite3_column_int64(st, 0);
        routes[*n].weight = sqlite3_column_int(st, 1);
        (*n)++;
    }
    if (rc == 0 && src != SQLITE_DONE) rc = db_err(s, eb, src, "reading an alias");
    stmt_done(st);
    return rc;
}

/* Replaces the routes of an alias (creating it). Inside a write transaction;
 * the routes were validated by the caller. */
static int routes_put(store *s, const char *function, const char *alias, const store_route *routes,
                      int n, rouse_errbuf *eb)
{
    sqlite3_stmt *st = s->st[ST_ALIAS_INSERT];
    bind_text(st, 1, function);
    bind_text(st, 2, alias);
    int rc = exec_stmt(s, st, "creating an alias", eb);
    if (rc < 0) return rc;
    st = s->st[ST_ROUTES_DELETE];
    bind_text(st, 1, function);
    bind_text(st, 2, alias);
    if ((rc = exec_stmt(s, st, "replacing an alias", eb)) < 0) return rc;
    for (int i = 0; i < n; i++) {
        st = s->st[ST_ROUTE_INSERT];
        bind_text(st, 1, function);
        bind_text(st, 2, alias);
        sqlite3_bind_int(st, 3, i);
        sqlite3_bind_int64(st, 4, routes[i].version);
        sqlite3_bind_int(st, 5, routes[i].weight);
        if ((rc = exec_stmt(s, st, "writing an alias route", eb)) < 0) return rc;
    }
    return 0;
}

/* --- open, migrate, close ------------------------------------------------ */

static int exec_sql(sqlite3 *db, const char *sql, const char *what, rouse_errbuf *eb)
{
    char *msg = NULL;
    int src = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (src == SQLITE_OK) return 0;
    int rc = rouse_err_set(eb, sqlite_to_rouse(src), "registry database: %s: %s", what,
                           msg ? msg : sqlite3_errstr(src));
    sqlite3_free(msg);
    return rc;
}

/* Runs a one-row query (a pragma); copies its first column as text. */
static int query_text(sqlite3 *db, const char *sql, char *out, size_t out_len, rouse_errbuf *eb)
{
    sqlite3_stmt *st;
    int src = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (src != SQLITE_OK)
        return rouse_err_set(eb, sqlite_to_rouse(src), "registry database: %s: %s", sql,
                             sqlite3_errmsg(db));
    out[0] = '\0';
    src = sqlite3_step(st);
    int rc = 0;
    if (src == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        snprintf(out, out_len, "%s", t ? t : "");
    } else if (src != SQLITE_DONE) {
        rc = rouse_err_set(eb, sqlite_to_rouse(src), "registry database: %s: %s", sql,
                           sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc;
}

/* Brings the schema to SCHEMA_VERSION in one transaction. */
static int migrate(sqlite3 *db, rouse_errbuf *eb)
{
    int rc = exec_sql(db, "BEGIN IMMEDIATE", "starting the schema migration", eb);
    if (rc < 0) return rc;
    rc = exec_sql(db,
                  "CREATE TABLE IF NOT EXISTS schema_version("
                  " id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
                  "creating the schema_version table", eb);
    char text[32];
    if (rc == 0)
        rc = query_text(db, "SELECT COALESCE(MAX(version), 0) FROM schema_version", text,
                        sizeof(text), eb);
    int current = rc == 0 ? atoi(text) : 0;
    if (rc == 0 && (current < 0 || current > SCHEMA_VERSION))
        rc = rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                           "the registry database has schema version %d; this rouse knows up to "
                           "%d (was it written by a newer rouse?)",
                           current, SCHEMA_VERSION);
    for (int v = current; rc == 0 && v < SCHEMA_VERSION; v++) {
        char what[64];
        snprintf(what, sizeof(what), "migrating the schema to version %d", v + 1);
        rc = exec_sql(db, migrations[v], what, eb);
    }
    if (rc == 0 && current < SCHEMA_VERSION) {
        sqlite3_stmt *st;
        int src = sqlite3_prepare_v2(
            db, "INSERT OR REPLACE INTO schema_version(id, version) VALUES (1, ?1)", -1, &st, NULL);
        if (src == SQLITE_OK) {
            sqlite3_bind_int(st, 1, SCHEMA_VERSION);
            src = sqlite3_step(st);
            if (src == SQLITE_DONE) src = SQLITE_OK;
        }
        if (src != SQLITE_OK)
            rc = rouse_err_set(eb, sqlite_to_rouse(src),
                               "registry database: recording the "
                               "schema version: %s",
                               sqlite3_errmsg(db));
        sqlite3_finalize(st);
    }
    if (rc == 0) return exec_sql(db, "COMMIT", "committing the schema migration", eb);
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Connection settings that durability and integrity rely on. */
static int configure(sqlite3 *db, const char *path, rouse_errbuf *eb)
{
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    if (usage_sql_register(db) != SQLITE_OK)
        return rouse_err_set(eb, ROUSE_EINTERNAL, "registry database %s: cannot add usage_bucket()",
                             path);
    char mode[16];
    int rc = query_text(db, "PRAGMA journal_mode=WAL", mode, sizeof(mode), eb);
    if (rc < 0) return rc;
    if (strcmp(mode, "wal") != 0)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                             "registry database %s: cannot use WAL mode (journal mode is '%s')",
                             path, mode);
    if ((rc = exec_sql(db, "PRAGMA synchronous=FULL", "setting synchronous=FULL", eb)) < 0)
        return rc;
    if ((rc = exec_sql(db, "PRAGMA foreign_keys=ON", "enabling foreign keys", eb)) < 0) return rc;
    /* Statement journals in memory: each write of the writer runs in its
     * own savepoint, where a statement that fires triggers (a batch item's
     * state change counted in batch_counts) journals the pages it touches;
     * in a temporary file that tripled the cost of a batch's updates. They
     * hold one statement's pages, never a durable state. */
    if ((rc = exec_sql(db, "PRAGMA temp_store=MEMORY", "keeping temporary data in memory", eb)) < 0)
        return rc;
    char fk[8];
    if ((rc = query_text(db, "PRAGMA foreign_keys", fk, sizeof(fk), eb)) < 0) return rc;
    if (strcmp(fk, "1") != 0)
        return rouse_err_set(eb, ROUSE_EUNSUPPORTED,
                             "registry database: this SQLite does not enforce foreign keys");
    return 0;
}

int store_open(const char *data_dir, store **out, rouse_errbuf *eb)
{
    *out = NULL;
    if (!data_dir || !*data_dir)
        return rouse_err_set(eb, ROUSE_EINVAL, "the data directory path is empty");
    int rc = store_fs_mkdirs(data_dir, eb);
    if (rc < 0) return rc;
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/" DB_FILE, data_dir) >= (int)sizeof(path))
        return rouse_err_set(eb, ROUSE_ERANGE, "data directory path is too long: %.80s...",
                             data_dir);

    store *s = calloc(1, sizeof(*s));
    if (!s) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory opening the registry");
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        rc = rouse_err_set(eb, ROUSE_EINTERNAL, "cannot create the registry lock");
        goto out_free;
    }
    /* NOMUTEX: the store's own lock serializes use of the connection. */
    int src = sqlite3_open_v2(
        path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
        rc = rouse_err_set(eb, sqlite_to_rouse(src), "cannot open registry database %s: %s", path,
                           s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(src));
        goto out_close_db;
    }
    if ((rc = configure(s->db, path, eb)) < 0) goto out_close_db;
    if ((rc = migrate(s->db, eb)) < 0) goto out_close_db;
    for (int i = 0; i < ST_COUNT; i++) {
        src =
            sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (src != SQLITE_OK) {
            rc = rouse_err_set(eb, sqlite_to_rouse(src), "registry database: preparing '%s': %s",
                               stmt_sql[i], sqlite3_errmsg(s->db));
            goto out_finalize;
        }
    }
    *out = s;
    return 0;

out_finalize:
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
out_close_db:
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
out_free:
    free(s);
    return rc;
}

void store_close(store *s)
{
    if (!s) return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    for (int i = 0; i < s->n_ext; i++)
        sqlite3_finalize(s->ext_st[i]);
    registry_pg_close(s->pg);
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* --- writes of their own with the shared registry attached ------------------
 * The call forms without _tx (tests, tools) then run as a group of one:
 * PostgreSQL first, the replica after. */
typedef struct alone_arg {
    const char *name, *digest, *config;
    const store_alias *alias;
    int64_t *version;
    bool *created;
} alone_arg;

static int alone_deploy(store *s, alone_arg *a, rouse_errbuf *eb)
{
    return store_deploy_tx(s, a->name, a->digest, a->config, a->version, a->created, eb);
}

static int alone_delete(store *s, alone_arg *a, rouse_errbuf *eb)
{
    return store_function_delete_tx(s, a->name, eb);
}

static int alone_alias(store *s, alone_arg *a, rouse_errbuf *eb)
{
    return store_alias_set_tx(s, a->name, a->alias, eb);
}

static int alone_rollback(store *s, alone_arg *a, rouse_errbuf *eb)
{
    return store_rollback_tx(s, a->name, a->version, eb);
}

static int shared_alone(store *s, int (*w)(store *, alone_arg *, rouse_errbuf *), alone_arg *a,
                        rouse_errbuf *eb)
{
    int rc = store_tx_begin(s, eb);
    if (rc < 0) return rc;
    rc = w(s, a, eb);
    rouse_errbuf ceb;
    rouse_errbuf_clear(&ceb);
    int crc = store_tx_commit(s, &ceb);
    if (rc < 0) return rc;
    if (crc < 0) return rouse_err_set(eb, crc, "%s", ceb.msg);
    return store_tx_shared_status(s, eb);
}

/* --- operations ---------------------------------------------------------- */

/* The body of store_deploy, inside a write transaction. */
static int deploy_locked(store *s, const char *name, const char *digest, const char *config,
                         int64_t *version, bool *created, rouse_errbuf *eb)
{
    rouse_errbuf ignore;
    int rc = function_exists(s, name, NULL, &ignore);
    if (rc == 0) {
        /* Unchanged when "latest" already routes to exactly this model and config. */
        store_route routes[STORE_MAX_ROUTES];
        int n;
        if ((rc = routes_get(s, name, STORE_DEFAULT_ALIAS, routes, &n, eb)) < 0) return rc;
        if (n > 0) {
            store_version cur;
            if ((rc = version_get(s, name, routes[0].version, &cur, eb)) < 0) return rc;
            bool same =
                strcmp(cur.model_digest, digest) == 0 && strcmp(cur.config_json, config) == 0;
            free(cur.config_json);
            if (same) {
                *version = routes[0].version;
                *created = false;
                return 0;
            }
        }
    } else if (rc == ROUSE_ENOTFOUND) {
        sqlite3_stmt *st = s->st[ST_FN_INSERT];
        bind_text(st, 1, name);
        sqlite3_bind_int64(st, 2, rouse_wall_ms());
        if ((rc = exec_stmt(s, st, "creating a function", eb)) < 0) return rc;
    } else {
        return rouse_err_set(eb, rc, "%s", ignore.msg);
    }

    sqlite3_stmt *st = s->st[ST_VER_NEXT];
    bind_text(st, 1, name);
    int src = sqlite3_step(st);
    int64_t v = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    rc = src == SQLITE_ROW ? 0 : db_err(s, eb, src, "numbering a new version");
    stmt_done(st);
    if (rc < 0) return rc;

    st = s->st[ST_VER_INSERT];
    bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, v);
    bind_text(st, 3, digest);
    bind_text(st, 4, config);
    sqlite3_bind_int64(st, 5, rouse_wall_ms());
    if ((rc = exec_stmt(s, st, "creating a version", eb)) < 0) return rc;

    store_route latest = {.version = v, .weight = 1};
    if ((rc = routes_put(s, name, STORE_DEFAULT_ALIAS, &latest, 1, eb)) < 0) return rc;
    *version = v;
    *created = true;
    return 0;
}

static int check_deploy(const char *name, const char *model_digest, const char *config_json,
                        rouse_errbuf *eb)
{
    int rc = check_name("function", name, eb);
    if (rc < 0) return rc;
    if (!blob_digest_valid(model_digest))
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "model digest '%.80s' of function '%s' is not \"sha256:\" followed by "
                             "64 lower-case hex digits",
                             model_digest ? model_digest : "(null)", name);
    if (!config_json) return rouse_err_set(eb, ROUSE_EINVAL, "function '%s' has no config", name);
    return 0;
}

int store_deploy(store *s, const char *name, const char *model_digest, const char *config_json,
                 int64_t *version, bool *created, rouse_errbuf *eb)
{
    int rc = check_deploy(name, model_digest, config_json, eb);
    if (rc < 0) return rc;
    if (s->pg)
        return shared_alone(s, alone_deploy,
                            &(alone_arg){.name = name, .digest = model_digest,
                                         .config = config_json, .version = version,
                                         .created = created},
                            eb);

    pthread_mutex_lock(&s->lock);
    if ((rc = tx_begin(s, true, eb)) == 0) {
        rc = deploy_locked(s, name, model_digest, config_json, version, created, eb);
        rc = tx_end(s, rc, eb);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int store_deploy_tx(store *s, const char *name, const char *model_digest, const char *config_json,
                    int64_t *version, bool *created, rouse_errbuf *eb)
{
    int rc = check_deploy(name, model_digest, config_json, eb);
    if (rc < 0) return rc;
    if (s->pg) return registry_pg_deploy(s->pg, name, model_digest, config_json, version, created, eb);
    return deploy_locked(s, name, model_digest, config_json, version, created, eb);
}

void store_function_fini(store_function *f)
{
    if (!f) return;
    for (int i = 0; i < f->n_versions; i++)
        free(f->versions[i].config_json);
    free(f->versions);
    free(f->aliases);
    memset(f, 0, sizeof(*f));
}

static int load_versions(store *s, store_function *f, rouse_errbuf *eb)
{
    sqlite3_stmt *st = s->st[ST_VER_LIST];
    bind_text(st, 1, f->name);
    int src, rc = 0, cap = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (f->n_versions == cap) {
            int ncap = cap ? 2 * cap : 8;
            store_version *nv = realloc(f->versions, (size_t)ncap * sizeof(*nv));
            if (!nv) {
                rc = ROUSE_ENOMEM;
                break;
            }
            f->versions = nv;
            cap = ncap;
        }
        store_version *v = &f->versions[f->n_versions];
        memset(v, 0, sizeof(*v));
        v->version = sqlite3_column_int64(st, 0);
        f->n_versions++;
        if ((rc = read_version(st, 1, v)) < 0) break;
    }
    if (rc == ROUSE_ENOMEM)
        rouse_err_set(eb, rc, "out of memory listing versions of '%s'", f->name);
    else if (src != SQLITE_DONE)
        rc = db_err(s, eb, src, "listing versions");
    stmt_done(st);
    return rc;
}

static int load_aliases(store *s, store_function *f, rouse_errbuf *eb)
{
    sqlite3_stmt *st = s->st[ST_ROUTES_ALL];
    bind_text(st, 1, f->name);
    int src, rc = 0, cap = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *alias = (const char *)sqlite3_column_text(st, 0);
        if (!alias) alias = "";
        store_alias *a = f->n_aliases ? &f->aliases[f->n_aliases - 1] : NULL;
        if (!a || strcmp(a->name, alias) != 0) {
            if (f->n_aliases == cap) {
                int ncap = cap ? 2 * cap : 4;
                store_alias *na = realloc(f->aliases, (size_t)ncap * sizeof(*na));
                if (!na) {
                    rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory listing aliases of '%s'",
                                       f->name);
                    break;
                }
                f->aliases = na;
                cap = ncap;
            }
            a = &f->aliases[f->n_aliases++];
            memset(a, 0, sizeof(*a));
            snprintf(a->name, sizeof(a->name), "%s", alias);
        }
        if (a->n_routes == STORE_MAX_ROUTES) {
            rc = rouse_err_set(eb, ROUSE_EFORMAT,
                               "alias '%s' of function '%s' has more than %d routes", a->name,
                               f->name, STORE_MAX_ROUTES);
            break;
        }
        a->routes[a->n_routes].version = sqlite3_column_int64(st, 1);
        a->routes[a->n_routes].weight = sqlite3_column_int(st, 2);
        a->n_routes++;
    }
    if (rc == 0 && src != SQLITE_DONE) rc = db_err(s, eb, src, "listing aliases");
    stmt_done(st);
    return rc;
}

int store_function_get(store *s, const char *name, store_function *out, rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    int rc = check_name("function", name, eb);
    if (rc < 0) return rc;
    snprintf(out->name, sizeof(out->name), "%s", name);

    pthread_mutex_lock(&s->lock);
    /* One read transaction: versions and aliases from the same snapshot. */
    if ((rc = tx_begin(s, false, eb)) == 0) {
        rc = function_exists(s, name, &out->created_ms, eb);
        if (rc == 0) rc = load_versions(s, out, eb);
        if (rc == 0) rc = load_aliases(s, out, eb);
        tx_rollback(s); /* read-only: nothing to commit */
    }
    pthread_mutex_unlock(&s->lock);
    if (rc < 0) store_function_fini(out);
    return rc;
}

int store_function_list(store *s, int (*fn)(void *user, const store_function *f), void *user,
                        rouse_errbuf *eb)
{
    /* Collect the names first, so that fn runs without the lock held (it may
     * call back into the store). */
    char(*names)[STORE_NAME_MAX + 1] = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, src;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = s->st[ST_FN_NAMES];
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 16;
            void *nn = realloc(names, ncap * sizeof(*names));
            if (!nn) {
                rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory listing functions");
                break;
            }
            names = nn;
            cap = ncap;
        }
        const char *name = (const char *)sqlite3_column_text(st, 0);
        snprintf(names[n++], sizeof(names[0]), "%s", name ? name : "");
    }
    if (rc == 0 && src != SQLITE_DONE) rc = db_err(s, eb, src, "listing functions");
    stmt_done(st);
    pthread_mutex_unlock(&s->lock);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        store_function f;
        rc = store_function_get(s, names[i], &f, eb);
        if (rc == ROUSE_ENOTFOUND) { /* deleted meanwhile */
            rc = 0;
            continue;
        }
        if (rc < 0) break;
        int stop = fn(user, &f);
        store_function_fini(&f);
        if (stop) break;
    }
    free(names);
    return rc;
}

static int delete_locked(store *s, const char *name, rouse_errbuf *eb)
{
    sqlite3_stmt *st = s->st[ST_FN_DELETE];
    bind_text(st, 1, name);
    int rc = exec_stmt(s, st, "deleting a function", eb);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = rouse_err_set(eb, ROUSE_ENOTFOUND, "no function named '%s'", shown(name));
    return rc;
}

int store_function_delete(store *s, const char *name, rouse_errbuf *eb)
{
    int rc = check_name("function", name, eb);
    if (rc < 0) return rc;
    if (s->pg) return shared_alone(s, alone_delete, &(alone_arg){.name = name}, eb);
    pthread_mutex_lock(&s->lock);
    if ((rc = tx_begin(s, true, eb)) == 0) {
        rc = delete_locked(s, name, eb);
        rc = tx_end(s, rc, eb);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int store_function_delete_tx(store *s, const char *name, rouse_errbuf *eb)
{
    int rc = check_name("function", name, eb);
    if (rc == 0 && s->pg) return registry_pg_delete(s->pg, name, eb);
    return rc < 0 ? rc : delete_locked(s, name, eb);
}

static int check_alias(const char *function, const store_alias *alias, rouse_errbuf *eb)
{
    int rc = check_name("alias", alias->name, eb);
    if (rc < 0) return rc;
    int64_t v;
    if (store_version_parse(alias->name, &v))
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "alias name '%s' is a number; numbers stand for versions",
                             alias->name);
    if (alias->n_routes < 1 || alias->n_routes > STORE_MAX_ROUTES)
        return rouse_err_set(eb, ROUSE_EINVAL,
                             "alias '%s' of function '%s' needs 1 to %d routes, "
                             "not %d",
                             alias->name, function, STORE_MAX_ROUTES, alias->n_routes);
    for (int i = 0; i < alias->n_routes; i++) {
        const store_route *r = &alias->routes[i];
        if (r->weight <= 0)
            return rouse_err_set(eb, ROUSE_EINVAL,
                                 "route %d of alias '%s' has weight %d; weights must be positive",
                                 i + 1, alias->name, r->weight);
        for (int j = 0; j < i; j++)
            if (alias->routes[j].version == r->version)
                return rouse_err_set(eb, ROUSE_EINVAL,
                                     "alias '%s' routes to version %lld twice (routes %d and %d)",
                                     alias->name, (long long)r->version, j + 1, i + 1);
    }
    return 0;
}

static int alias_set_locked(store *s, const char *function, const store_alias *alias,
                            rouse_errbuf *eb)
{
    int rc = function_exists(s, function, NULL, eb);
    for (int i = 0; rc == 0 && i < alias->n_routes; i++) {
        store_version v;
        rc = version_get(s, function, alias->routes[i].version, &v, eb);
        free(v.config_json);
    }
    if (rc == 0) rc = routes_put(s, function, alias->name, alias->routes, alias->n_routes, eb);
    return rc;
}

int store_alias_set(store *s, const char *function, const store_alias *alias, rouse_errbuf *eb)
{
    int rc = check_name("function", function, eb);
    if (rc < 0) return rc;
    if ((rc = check_alias(function, alias, eb)) < 0) return rc;
    if (s->pg)
        return shared_alone(s, alone_alias, &(alone_arg){.name = function, .alias = alias}, eb);
    pthread_mutex_lock(&s->lock);
    if ((rc = tx_begin(s, true, eb)) == 0) {
        rc = alias_set_locked(s, function, alias, eb);
        rc = tx_end(s, rc, eb);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int store_alias_set_tx(store *s, const char *function, const store_alias *alias, rouse_errbuf *eb)
{
    int rc = check_name("function", function, eb);
    if (rc < 0) return rc;
    if ((rc = check_alias(function, alias, eb)) < 0) return rc;
    if (s->pg) return registry_pg_alias_set(s->pg, function, alias, eb);
    return alias_set_locked(s, function, alias, eb);
}

static int rollback_locked(store *s, const char *function, int64_t *version, rouse_errbuf *eb)
{
    int rc = function_exists(s, function, NULL, eb);
    if (rc < 0) return rc;
    store_route routes[STORE_MAX_ROUTES];
    int n;
    if ((rc = routes_get(s, function, STORE_DEFAULT_ALIAS, routes, &n, eb)) < 0) return rc;
    if (n == 0)
        return rouse_err_set(eb, ROUSE_ESTATE, "function '%s' has no '%s' alias to roll back",
                             function, STORE_DEFAULT_ALIAS);
    sqlite3_stmt *st = s->st[ST_VER_BELOW];
    bind_text(st, 1, function);
    sqlite3_bind_int64(st, 2, routes[0].version);
    int src = sqlite3_step(st);
    bool none = src == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_NULL;
    int64_t prev = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    rc = src == SQLITE_ROW ? 0 : db_err(s, eb, src, "finding the previous version");
    stmt_done(st);
    if (rc < 0) return rc;
    if (none)
        return rouse_err_set(eb, ROUSE_ESTATE,
                             "function '%s' has no version before %lld to roll back to", function,
                             (long long)routes[0].version);
    store_route r = {.version = prev, .weight = 1};
    if ((rc = routes_put(s, function, STORE_DEFAULT_ALIAS, &r, 1, eb)) < 0) return rc;
    *version = prev;
    return 0;
}

int store_rollback(store *s, const char *function, int64_t *version, rouse_errbuf *eb)
{
    int rc = check_name("function", function, eb);
    if (rc < 0) return rc;
    if (s->pg)
        return shared_alone(s, alone_rollback, &(alone_arg){.name = function, .version = version},
                            eb);
    pthread_mutex_lock(&s->lock);
    if ((rc = tx_begin(s, true, eb)) == 0) {
        rc = rollback_locked(s, function, version, eb);
        rc = tx_end(s, rc, eb);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int store_rollback_tx(store *s, const char *function, int64_t *version, rouse_errbuf *eb)
{
    int rc = check_name("function", function, eb);
    if (rc == 0 && s->pg) return registry_pg_rollback(s->pg, function, version, eb);
    return rc < 0 ? rc : rollback_locked(s, function, version, eb);
}

int store_blob_refs_tx(store *s, const char *digest, int64_t *n, rouse_errbuf *eb)
{
    /* Every table that names a blob adds its count here: versions (their
     * model), jobs (a large result), batches (input, output, errors). */
    sqlite3_stmt *st = s->st[ST_BLOB_REFS];
    bind_text(st, 1, digest);
    int src = sqlite3_step(st);
    *n = src == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    int rc = src == SQLITE_ROW ? 0 : db_err(s, eb, src, "counting the references to a blob");
    stmt_done(st);
    /* Versions this group wrote to PostgreSQL are not in the replica yet. */
    int64_t shared = 0;
    if (rc == 0 && s->pg && (rc = registry_pg_blob_refs(s->pg, digest, &shared, eb)) == 0)
        *n += shared;
    return rc;
}

/* --- prepared statements of the store's other files (store_int.h) ---------- */

int store_stmt(store *s, const char *sql, sqlite3_stmt **out, rouse_errbuf *eb)
{
    for (int i = 0; i < s->n_ext; i++) {
        if (s->ext_sql[i] != sql) continue;
        *out = s->ext_st[i];
        return 0;
    }
    if (s->n_ext == EXT_STMT_MAX)
        return rouse_err_set(eb, ROUSE_EINTERNAL, "registry database: too many statements");
    int src = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
    if (src != SQLITE_OK) return db_err(s, eb, src, "preparing a statement");
    s->ext_sql[s->n_ext] = sql;
    s->ext_st[s->n_ext++] = *out;
    return 0;
}

void store_stmt_done(sqlite3_stmt *st)
{
    stmt_done(st);
}

/* --- transactions of the writer (store/writer.c) -------------------------- */

int store_tx_begin(store *s, rouse_errbuf *eb)
{
    pthread_mutex_lock(&s->lock);
    int rc = tx_begin(s, true, eb);
    if (rc < 0) pthread_mutex_unlock(&s->lock);
    if (rc == 0 && s->pg) registry_pg_group_begin(s->pg);
    return rc;
}

/* PostgreSQL's COMMIT, then the copy of what it touched into the replica
 * (inside the local transaction). A failure of PostgreSQL's part stays in
 * store_tx_shared_status; the local writes commit regardless. */
static void shared_commit(store *s)
{
    replica_snap *snap = NULL;
    rouse_errbuf peb;
    rouse_errbuf_clear(&peb);
    if (registry_pg_group_commit(s->pg, &snap, &peb) < 0 || !snap) return;
    rouse_errbuf ceb;
    rouse_errbuf_clear(&ceb);
    /* Committed in PostgreSQL: if the copy fails, the sync thread makes it. */
    if (replica_apply_tx(s, snap, &ceb) < 0)
        LOG_ERROR("store", "registry replica: %s (the next sync copies it)", ceb.msg);
    if (s->hook) {
        bool other = false;
        for (int i = 0; i < replica_snap_count(snap); i++) {
            const replica_ref *r = replica_snap_ref(snap, i);
            if (r->kind == 'f')
                s->hook(s->hook_user, r->name, replica_snap_seq(snap));
            else
                other = true;
        }
        if (other) s->hook(s->hook_user, "", replica_snap_seq(snap));
    }
    replica_snap_free(snap);
}

int store_tx_commit(store *s, rouse_errbuf *eb)
{
    if (s->pg) shared_commit(s);
    int rc = tx_commit(s, eb);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void store_tx_rollback(store *s)
{
    if (s->pg) registry_pg_group_rollback(s->pg);
    tx_rollback(s);
    pthread_mutex_unlock(&s->lock);
}

int store_tx_savepoint(store *s, rouse_errbuf *eb)
{
    if (s->pg) registry_pg_write_begin(s->pg);
    return exec_stmt(s, s->st[ST_SAVEPOINT], "opening a savepoint", eb);
}

int store_tx_savepoint_end(store *s, bool keep, rouse_errbuf *eb)
{
    if (s->pg) registry_pg_write_end(s->pg, keep);
    int rc = 0;
    if (!keep) rc = exec_stmt(s, s->st[ST_SP_ROLLBACK], "undoing a failed write", eb);
    int rc2 = exec_stmt(s, s->st[ST_SP_RELEASE], "closing a savepoint", eb);
    return rc < 0 ? rc : rc2;
}

bool store_tx_write_shared(store *s)
{
    return s->pg && registry_pg_write_shared(s->pg);
}

int store_tx_shared_status(store *s, rouse_errbuf *eb)
{
    return s->pg ? registry_pg_group_status(s->pg, eb) : 0;
}

int store_attach_shared(store *s, const char *url, struct pg_health *health, rouse_errbuf *eb)
{
    int rc = replica_prepare(s, eb);
    if (rc < 0) return rc;
    registry_pg *g;
    if ((rc = registry_pg_open(url, health, &g, eb)) < 0) return rc;
    pthread_mutex_lock(&s->lock);
    registry_pg_close(s->pg);
    s->pg = g;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void store_detach_shared(store *s)
{
    pthread_mutex_lock(&s->lock);
    registry_pg_close(s->pg);
    s->pg = NULL;
    pthread_mutex_unlock(&s->lock);
}

void store_set_shared_hook(store *s, store_shared_hook fn, void *user)
{
    s->hook = fn;
    s->hook_user = user;
}

struct registry_pg *store_shared(store *s)
{
    return s->pg;
}

int store_route_pick(const store_route *routes, int n, double r)
{
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        total += routes[i].weight;
    double x = r * (double)total;
    int64_t cum = 0;
    for (int i = 0; i < n; i++) {
        cum += routes[i].weight;
        if (x < (double)cum) return i;
    }
    return n - 1; /* r * total rounded up to total */
}

static int resolve_locked(store *s, const char *function, const char *alias, double r,
                          int64_t *version, rouse_errbuf *eb)
{
    int64_t explicit_version;
    if (store_version_parse(alias, &explicit_version)) {
        store_version v;
        rouse_errbuf inner;
        int rc = version_get(s, function, explicit_version, &v, &inner);
        free(v.config_json);
        if (rc == ROUSE_ENOTFOUND && function_exists(s, function, NULL, eb) < 0) return rc;
        if (rc < 0) return rouse_err_set(eb, rc, "%s", inner.msg);
        *version = explicit_version;
        return 0;
    }
    store_route routes[STORE_MAX_ROUTES];
    int n;
    int rc = routes_get(s, function, alias, routes, &n, eb);
    if (rc < 0) return rc;
    if (n == 0) {
        if ((rc = function_exists(s, function, NULL, eb)) < 0) return rc;
        return rouse_err_set(eb, ROUSE_ENOTFOUND, "function '%s' has no alias '%s'",
                             shown(function), alias);
    }
    *version = routes[store_route_pick(routes, n, r)].version;
    return 0;
}

int store_resolve(store *s, const char *function, const char *alias, double r, int64_t *version,
                  rouse_errbuf *eb)
{
    int rc = check_name("function", function, eb);
    if (rc < 0) return rc;
    if (!alias) alias = STORE_DEFAULT_ALIAS;
    if (!store_name_valid(alias))
        return rouse_err_set(eb, ROUSE_ENOTFOUND, "function '%s' has no alias or version '%.80s'",
                             function, alias);
    if (!(r >= 0.0 && r < 1.0))
        return rouse_err_set(eb, ROUSE_EINVAL, "route choice %g is outside [0, 1)", r);
    pthread_mutex_lock(&s->lock);
    /* Several reads: one snapshot, so a concurrent delete cannot split them. */
    if ((rc = tx_begin(s, false, eb)) == 0) {
        rc = resolve_locked(s, function, alias, r, version, eb);
        tx_rollback(s);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int store_version_get(store *s, const char *function, int64_t version, store_version *out,
                      rouse_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    int rc = check_name("function", function, eb);
    if (rc < 0) return rc;
    pthread_mutex_lock(&s->lock);
    if ((rc = tx_begin(s, false, eb)) == 0) {
        rc = version_get(s, function, version, out, eb);
        if (rc == ROUSE_ENOTFOUND) {
            rouse_errbuf ignore;
            if (function_exists(s, function, NULL, &ignore) == ROUSE_ENOTFOUND)
                rouse_err_set(eb, ROUSE_ENOTFOUND, "no function named '%s'", shown(function));
        }
        tx_rollback(s);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc < 0) {
        free(out->config_json);
        out->config_json = NULL;
    }
    return rc;
}

/* --- for the store's other files (store_int.h) ---------------------------- */

sqlite3 *store_db(store *s)
{
    return s->db;
}

void store_lock(store *s)
{
    pthread_mutex_lock(&s->lock);
}

void store_unlock(store *s)
{
    pthread_mutex_unlock(&s->lock);
}

int store_db_error(store *s, rouse_errbuf *eb, int src, const char *what)
{
    return db_err(s, eb, src, what);
}
