/*
 * API keys and blob ownership in the embedded registry (keys_sqlite.c):
 * the durable half of serve's access control (server/auth.h keeps the keys
 * in memory and checks requests against them).
 *
 * A key is stored as the lower-case hex SHA-256 of its secret, never the
 * secret itself; it is revoked by setting revoked_ms, never deleted, so that
 * a revoked key is told apart from an unknown one and its id is never
 * reused. The *_tx functions run on the registry's writer thread
 * (store/writer.h), inside the group's transaction; the others read through
 * any connection.
 */
#ifndef ROUSE_STORE_KEYS_H
#define ROUSE_STORE_KEYS_H

#include <stdbool.h>
#include <stdint.h>

#include "rouse/err.h"
#include "store/store.h"

#define STORE_KEY_ID_MAX 23   /* "k" + 16 hex digits, or "static-N" */
#define STORE_KEY_NAME_MAX 63 /* a label given at creation */

typedef struct store_key {
    char id[STORE_KEY_ID_MAX + 1];
    char tenant[STORE_NAME_MAX + 1];
    char role[8]; /* "admin", "deploy" or "invoke" */
    char hash[65]; /* hex SHA-256 of the secret */
    char name[STORE_KEY_NAME_MAX + 1];
    int64_t created_ms;
    int64_t expires_ms; /* 0: never */
    int64_t revoked_ms; /* 0: not revoked */
} store_key;

/* Calls fn for every stored key (revoked ones too), by creation; stops
 * early when fn returns nonzero. */
int store_keys_load(store *s, int (*fn)(void *user, const store_key *k), void *user,
                    rouse_errbuf *eb);
/* How many keys are stored (revoked ones too). */
int store_keys_count(store *s, int64_t *n, rouse_errbuf *eb);
/* Stores a new key; ROUSE_EXISTS when its id or hash is taken. */
int store_key_insert_tx(store *s, const store_key *k, rouse_errbuf *eb);
/* Revokes key id at now_ms (a second revocation keeps the first time);
 * ROUSE_ENOTFOUND for an unknown id. */
int store_key_revoke_tx(store *s, const char *id, int64_t now_ms, rouse_errbuf *eb);

/* Records that tenant uploaded blob digest (again: no change). */
int store_blob_owner_add_tx(store *s, const char *tenant, const char *digest, int64_t now_ms,
                            rouse_errbuf *eb);
/* Forgets tenant's ownership of digest; *others: how many other tenants
 * still own it. */
int store_blob_owner_remove_tx(store *s, const char *tenant, const char *digest, int64_t *others,
                               rouse_errbuf *eb);
/* Whether tenant may see blob digest: it uploaded it, or nobody recorded
 * an upload and tenant is "default" (blobs from before tenants, or from a
 * serve without access control). */
int store_blob_visible(store *s, const char *tenant, const char *digest, bool *visible,
                       rouse_errbuf *eb);

#endif
