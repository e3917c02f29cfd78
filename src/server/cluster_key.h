/*
 * The cluster key: the shared secret that calls between nodes carry
 * (forwarded requests, blob fetches) in the header Rouse-Cluster-Key, read
 * once at start from `serve --cluster-key-file` (its first line, at least
 * 32 characters, a file that only its owner may read). A call that carries
 * it is trusted to name the tenant it acts for; without TLS between nodes
 * (`--tls-cert`) the key crosses the network in the clear, so nodes on a
 * network others share must use TLS (docs/security.md).
 */
#ifndef ROUSE_CLUSTER_KEY_H
#define ROUSE_CLUSTER_KEY_H

#include <stdbool.h>

#include "rouse/err.h"

#define CLUSTER_KEY_HEADER "Rouse-Cluster-Key"
#define CLUSTER_KEY_MIN_LEN 32

typedef struct cluster_key cluster_key;

/* Reads the key from path. ROUSE_EINVAL (with the reason) for a key
 * shorter than CLUSTER_KEY_MIN_LEN or a file others may read.
 * Owned: free with cluster_key_destroy. */
int cluster_key_load(const char *path, cluster_key **out, rouse_errbuf *eb);
void cluster_key_destroy(cluster_key *k);

/* True when value (a header's value, NULL when absent) is the key; the
 * comparison takes the same time wherever the first difference is. */
bool cluster_key_check(const cluster_key *k, const char *value);

/* The key itself, for the calls this node makes to others. */
const char *cluster_key_secret(const cluster_key *k);

#endif
