/*
 * Access control of serve (serve --auth; docs/security.md): API keys,
 * tenants and roles.
 *
 * Keys live in the registry (store/keys.h) as the SHA-256 of their secret;
 * serve loads them into an auth_table at start and keeps it current as the
 * keys API creates and revokes them, so checking a request touches no
 * database: it hashes the presented secret and compares it with every
 * key's hash in constant time. Keys of a --auth-file are in the table only.
 *
 * Roles nest: admin (everything, every tenant) > deploy (its tenant's
 * functions, blobs and jobs) > invoke (calling its tenant's functions,
 * reading its tenant's jobs). Each route declares the role it needs
 * (route_role, routes.c); auth_check is the one place a request is
 * checked against it, once, before its body is read.
 */
#ifndef ROUSE_SERVER_AUTH_H
#define ROUSE_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/sha256.h"
#include "rouse/err.h"
#include "store/keys.h"

typedef enum auth_role {
    AUTH_OPEN = 0,   /* no key needed (health) */
    AUTH_INVOKE = 1, /* any valid key */
    AUTH_DEPLOY = 2,
    AUTH_ADMIN = 3,
} auth_role;

/* "admin", "deploy", "invoke" ("open" for AUTH_OPEN). */
const char *auth_role_name(auth_role r);
/* 0, or ROUSE_EINVAL when s names no role a key can have. */
int auth_role_parse(const char *s, auth_role *out);

/* A secret: "rk_" and 43 base64url characters of 32 random bytes. */
#define AUTH_SECRET_LEN 46
/* The longest secret accepted at all (keys of an --auth-file included). */
#define AUTH_SECRET_MAX 512
/* The shortest secret an --auth-file or --auth-bootstrap-key-file may give. */
#define AUTH_SECRET_MIN 16

/* A new secret from getrandom: 0, or ROUSE_EIO. */
int auth_secret_new(char out[AUTH_SECRET_LEN + 1], rouse_errbuf *eb);
/* A new key id ("k" + 16 hex digits) from getrandom. */
int auth_key_id_new(char out[STORE_KEY_ID_MAX + 1], rouse_errbuf *eb);
/* The lower-case hex SHA-256 of a secret, as stored. */
int auth_secret_hash_hex(const char *secret, size_t len, char hex[ROUSE_SHA256_HEX_LEN + 1]);

/* One key in memory. */
typedef struct auth_key {
    store_key k; /* as stored (for keys of an --auth-file: id "static-N", never stored) */
    uint8_t hash[ROUSE_SHA256_LEN];
    auth_role role;
    bool from_file;
} auth_key;

typedef struct auth_table {
    auth_key *keys;
    int n, cap;
} auth_table;

void auth_table_init(auth_table *t);
void auth_table_fini(auth_table *t);
/* Adds a key (k->hash is its hex hash, k->role its role's name). */
int auth_table_add(auth_table *t, const store_key *k, bool from_file, rouse_errbuf *eb);
/* The key with this id, or NULL. Borrowed: valid until the table changes. */
auth_key *auth_table_find(auth_table *t, const char *id);

typedef enum auth_verdict {
    AUTH_VALID = 0,
    AUTH_MISSING,   /* no Authorization: Bearer header */
    AUTH_MALFORMED, /* an Authorization header of another form */
    AUTH_UNKNOWN,
    AUTH_REVOKED,
    AUTH_EXPIRED,
} auth_verdict;

/* Finds the key an Authorization header value (or NULL) presents: the
 * secret's hash is compared with every key's, in constant time, without
 * stopping at a match. *out is the key when it is known (also revoked or
 * expired), else NULL. */
auth_verdict auth_lookup(const auth_table *t, const char *authorization, int64_t now_ms,
                         const auth_key **out);
/* The message of a verdict other than AUTH_VALID. */
const char *auth_verdict_message(auth_verdict v);

/* --- the --auth-file (auth_file.c) ------------------------------------------
 * A YAML document whose top level is a mapping with a "keys" list; each
 * entry a mapping of "key" (the secret, AUTH_SECRET_MIN to AUTH_SECRET_MAX
 * printable characters), "tenant" and "role", all three required and no
 * other field. Errors name the line: "line 4: keys[1].role: must be admin,
 * deploy or invoke". */
typedef int (*auth_file_entry_fn)(void *user, const char *secret, const char *tenant,
                                  auth_role role, int line, rouse_errbuf *eb);
int auth_file_parse(const char *text, size_t len, auth_file_entry_fn fn, void *user,
                    rouse_errbuf *eb);
/* Reads path and adds its keys to t (ids "static-1", "static-2"...);
 * *n_admin counts its admin keys. */
int auth_file_load(const char *path, auth_table *t, int *n_admin, rouse_errbuf *eb);

#endif
