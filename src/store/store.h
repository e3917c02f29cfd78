/*
 * The registry: functions, their immutable versions and aliases.
 *
 * A small backend-neutral interface (no SQLite types here): the embedded
 * backend is SQLite in WAL mode (store_sqlite.c); PostgreSQL can implement
 * the same operations later. Every call that returns 0 after a write has
 * made that write durable (it survives kill -9 of the process).
 *
 * Model: a function has versions 1, 2, 3... Each version is immutable: the
 * model blob digest plus the canonical JSON of its config. Aliases map a
 * name to weighted routes over versions; the alias "latest" is the default
 * one that deploys move and rollback moves back.
 */
#ifndef ROUSE_STORE_H
#define ROUSE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rouse/err.h"

#define STORE_DEFAULT_ALIAS "latest"
#define STORE_MAX_ROUTES 8
#define STORE_NAME_MAX 63   /* function and alias names: [a-z0-9][a-z0-9_-]* */
#define STORE_DIGEST_LEN 71 /* "sha256:" + 64 hex */

typedef struct store store;

typedef struct store_route {
    int64_t version;
    int weight; /* > 0; weights of an alias need not sum to 100 */
} store_route;

typedef struct store_alias {
    char name[STORE_NAME_MAX + 1];
    int n_routes;
    store_route routes[STORE_MAX_ROUTES];
} store_alias;

typedef struct store_version {
    int64_t version;
    char model_digest[STORE_DIGEST_LEN + 1];
    char *config_json;  /* owned by the enclosing object */
    int64_t created_ms; /* wall clock, ms since the epoch */
} store_version;

typedef struct store_function {
    char name[STORE_NAME_MAX + 1];
    int64_t created_ms;
    int n_versions;
    store_version *versions; /* ascending */
    int n_aliases;
    store_alias *aliases;
} store_function;

/* Frees what a store_function_get filled. */
void store_function_fini(store_function *f);

/* Opens (creating if needed) the registry in data_dir; runs migrations. */
int store_open(const char *data_dir, store **out, rouse_errbuf *eb);
void store_close(store *s);

/* True when name is a valid function or alias name. */
bool store_name_valid(const char *name);

/* --- tenants ----------------------------------------------------------------
 * A tenant is named [a-z0-9][a-z0-9-]{0,62}; without access control
 * everything belongs to "default". A function is stored under its key: its
 * name for the default tenant, "tenant:name" for any other, at most
 * STORE_NAME_MAX characters in all (so a tenant's name and a function's
 * together take at most 62). Every call below that takes a function name
 * takes such a key. */
#define STORE_DEFAULT_TENANT "default"

/* True when t is a valid tenant name. */
bool store_tenant_valid(const char *t);
/* True when key is a valid function key (a name, or "tenant:name" with a
 * tenant other than "default"). */
bool store_fn_key_valid(const char *key);
/* The key of tenant's function name into out: 0, ROUSE_EINVAL for an
 * invalid name, ROUSE_ERANGE when the key would be longer than
 * STORE_NAME_MAX. tenant NULL or "" is the default tenant. */
int store_fn_key(const char *tenant, const char *name, char *out, size_t cap);
/* The tenant of a key (into tenant) and its name within the tenant
 * (borrowed: a pointer into key). key must be valid. */
void store_fn_key_split(const char *key, char *tenant, size_t tenant_cap, const char **name);

/* Deploy: if the function's "latest" version has the same digest and config,
 * returns it with *created false; otherwise creates version N+1 (creating
 * the function if needed), points "latest" at it, *created true. */
int store_deploy(store *s, const char *name, const char *model_digest, const char *config_json,
                 int64_t *version, bool *created, rouse_errbuf *eb);

/* ROUSE_ENOTFOUND for an unknown function. */
int store_function_get(store *s, const char *name, store_function *out, rouse_errbuf *eb);

/* Calls fn for each function, by name; stops early when fn returns nonzero. */
int store_function_list(store *s, int (*fn)(void *user, const store_function *f), void *user,
                        rouse_errbuf *eb);

/* Deletes a function with its versions and aliases (blobs stay). */
int store_function_delete(store *s, const char *name, rouse_errbuf *eb);

/* Creates or replaces an alias. Every routed version must exist (ROUSE_ENOTFOUND). */
int store_alias_set(store *s, const char *function, const store_alias *alias, rouse_errbuf *eb);

/* Points "latest" at the highest version below the one it routes to now
 * (its first route). ROUSE_ESTATE when there is none. */
int store_rollback(store *s, const char *function, int64_t *version, rouse_errbuf *eb);

/* Picks a version for a request through alias `alias` (NULL = "latest"),
 * using r in [0, 1) against the weights. ROUSE_ENOTFOUND for unknown
 * function or alias. An all-digit alias ("3") is an explicit version, which
 * must exist (ROUSE_ENOTFOUND); store_alias_set refuses all-digit alias names
 * so the two never clash. ROUSE_EINVAL when r is outside [0, 1). */
int store_resolve(store *s, const char *function, const char *alias, double r, int64_t *version,
                  rouse_errbuf *eb);
/* An all-digit alias means an explicit version ("3"), so aliases may not be
 * named like that. True, with *version set, when s is such a number (one
 * that fits an int64_t). */
bool store_version_parse(const char *s, int64_t *version);
int store_version_get(store *s, const char *function, int64_t version, store_version *out,
                      rouse_errbuf *eb); /* free out->config_json with free() */

/* The index of the route that r in [0, 1) picks: routes cover consecutive
 * shares of [0, total weight) in their order (the choice store_resolve
 * makes, for callers that keep an alias's routes in memory). n > 0. */
int store_route_pick(const store_route *routes, int n, double r);

/* --- writes in groups -----------------------------------------------------
 * What the writer thread (store/writer.h) calls to put many writes into one
 * transaction, and so one fsync. Between store_tx_begin and
 * store_tx_commit (or store_tx_rollback) the connection is the caller's
 * alone. Each write runs between store_tx_savepoint and
 * store_tx_savepoint_end, which undoes it alone when keep is false. The
 * *_tx forms are the writes above without a transaction of their own;
 * nothing they did is durable before store_tx_commit returns 0. Later
 * writes (usage records, jobs) add *_tx forms here. */
int store_tx_begin(store *s, rouse_errbuf *eb);
int store_tx_commit(store *s, rouse_errbuf *eb);
void store_tx_rollback(store *s);
int store_tx_savepoint(store *s, rouse_errbuf *eb);
int store_tx_savepoint_end(store *s, bool keep, rouse_errbuf *eb);
int store_deploy_tx(store *s, const char *name, const char *model_digest, const char *config_json,
                    int64_t *version, bool *created, rouse_errbuf *eb);
int store_function_delete_tx(store *s, const char *name, rouse_errbuf *eb);
int store_alias_set_tx(store *s, const char *function, const store_alias *alias, rouse_errbuf *eb);
int store_rollback_tx(store *s, const char *function, int64_t *version, rouse_errbuf *eb);

/* --- the shared registry (serve --state postgres://...) ----------------------
 * With the shared state attached, this store's writer groups write the
 * registry (functions, versions, aliases, accuracy figures, API keys, blob
 * owners) to PostgreSQL at url, and after PostgreSQL's COMMIT copy the
 * objects they touched into this database, now a replica (store/replica.h),
 * inside the same local transaction, before store_tx_commit returns: a
 * node reads its own writes. Reads stay local. Other writes (usage, jobs)
 * stay in SQLite and commit with the group. A connection failure is
 * reported to health (store/pg_util.h, borrowed) and fails the group's
 * registry writes alone: store_tx_write_shared says after each apply
 * whether the write went to PostgreSQL, store_tx_shared_status after the
 * commit whether PostgreSQL's part failed (a code, eb says why). */
struct pg_health;
int store_attach_shared(store *s, const char *url, struct pg_health *health, rouse_errbuf *eb);
/* Detaches it again (closing the connection). */
void store_detach_shared(store *s);
bool store_tx_write_shared(store *s);
int store_tx_shared_status(store *s, rouse_errbuf *eb);
/* Called on the writer's thread after each group's PostgreSQL COMMIT, once
 * per function the group touched (fn_key) and once with fn_key "" when it
 * touched API keys or blob owners; seq is the group's registry_seq. */
typedef void (*store_shared_hook)(void *user, const char *fn_key, int64_t seq);
void store_set_shared_hook(store *s, store_shared_hook fn, void *user);

/* The references the registry holds to a blob ("sha256:<hex>"): the one
 * count that decides whether a blob (and the plan compiled from it) may be
 * removed: versions whose model it is, jobs whose result it holds, batches
 * whose input, output or errors it is (store/jobs.h). Inside the writer's transaction,
 * so that no write can add a reference between the count and the removal. */
int store_blob_refs_tx(store *s, const char *digest, int64_t *n, rouse_errbuf *eb);

#endif
