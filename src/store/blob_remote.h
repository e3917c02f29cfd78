/*
 * Blobs from elsewhere: the fetcher that brings a blob this node lacks
 * into the local blob store, by digest, from the other nodes (peers) or
 * an S3-compatible bucket; the write-through of committed uploads to that
 * bucket; and the read-ahead that puts a blob in the page cache before
 * the loop sends it.
 *
 * A fetch asks each source in order: every peer (GET
 * {peer}/v1/blobs/{digest} carrying Rouse-Cluster-Key), then the bucket.
 * The body streams into the blob store's writer, which hashes it while
 * writing; blob_write_commit_expect names it only when its sha256 is the
 * digest asked for, so a body that differs is never stored (the error
 * names both digests) and the next source is asked. Nothing is ever
 * served that the local store has not verified.
 *
 * Threads: the transfers run on threads of their own (BLOB_REMOTE_THREADS,
 * libcurl easy handles); everything else, the callbacks included, belongs
 * to one thread (serve's loop), which watches blob_remote_fd and calls
 * blob_remote_complete when it is readable. Jobs for the same blob and
 * kind share one transfer: every waiter gets its outcome.
 */
#ifndef ROUSE_STORE_BLOB_REMOTE_H
#define ROUSE_STORE_BLOB_REMOTE_H

#include <stdbool.h>
#include <stdint.h>

#include "rouse/err.h"
#include "store/blob.h"
#include "store/blob_s3.h"

#define BLOB_REMOTE_THREADS 2
#define BLOB_PEERS_MAX 16
#define BLOB_PEER_URL_MAX 256
#define BLOB_REMOTE_CONNECT_MS 3000
/* A transfer slower than this many bytes a second for that long ends. */
#define BLOB_REMOTE_LOW_SPEED 1024
#define BLOB_REMOTE_LOW_SPEED_S 30

/* The base URLs of the other nodes (http(s)://host:port, no path), at most
 * max; returns how many. Called on the loop when a fetch starts. */
typedef int (*blob_peers_fn)(void *user, char urls[][BLOB_PEER_URL_MAX], int max);

typedef struct blob_remote_opts {
    blobstore *blobs;   /* where fetched blobs go (used from the threads) */
    uint64_t max_bytes; /* the largest blob fetched */
    blob_peers_fn peers; /* NULL: no peers */
    void *peers_user;
    const char *cluster_key; /* sent to peers (Rouse-Cluster-Key); NULL: none */
    const blob_s3 *s3;       /* the bucket (copied); NULL: none */
} blob_remote_opts;

typedef struct blob_remote blob_remote;

/* rc: 0 done; for a fetch ROUSE_ENOTFOUND when no source has the blob and
 * another code when a source failed (msg names each source and why). */
typedef void (*blob_remote_done)(void *user, int rc, const char *msg);

/* Owned: free with blob_remote_destroy. */
int blob_remote_create(const blob_remote_opts *o, blob_remote **out, rouse_errbuf *eb);
/* Ends the transfers in progress (promptly), stops the threads and drops
 * every job without its callback. NULL is a no-op. */
void blob_remote_destroy(blob_remote *r);
/* The eventfd to watch for EPOLLIN. */
int blob_remote_fd(const blob_remote *r);
/* Whether any source is configured (peers or a bucket). */
bool blob_remote_has_sources(const blob_remote *r);
/* Whether uploads are written through to a bucket. */
bool blob_remote_has_bucket(const blob_remote *r);
/* "s3://BUCKET/PREFIX", or "" without a bucket. */
const char *blob_remote_bucket_name(const blob_remote *r);

/* Fetches digest into the local store. *ticket identifies the waiter for
 * blob_remote_cancel. 0, or an error (the callback never runs). */
int blob_remote_fetch(blob_remote *r, const char *digest, blob_remote_done done, void *user,
                      uint64_t *ticket);
/* Writes the local blob digest to the bucket (skipped when the bucket has
 * an object of its size already). */
int blob_remote_push(blob_remote *r, const char *digest, blob_remote_done done, void *user,
                     uint64_t *ticket);
/* Reads the local blob into the page cache (readahead), so that sending
 * it from the loop finds its pages in memory. */
int blob_remote_read_ahead(blob_remote *r, const char *digest, blob_remote_done done, void *user,
                           uint64_t *ticket);
/* The job goes on, but this waiter's callback will not run. */
void blob_remote_cancel(blob_remote *r, uint64_t ticket);
/* Runs the callbacks of finished jobs. */
void blob_remote_complete(blob_remote *r);
/* Jobs not completed on the loop's side yet. */
int blob_remote_pending(const blob_remote *r);

/* Transfers completed since the start (each shared by all its waiters). */
typedef struct blob_remote_stats {
    uint64_t fetches, fetch_failures; /* a failure: no source gave the blob */
    uint64_t pushes, push_failures;
} blob_remote_stats;
void blob_remote_stats_get(const blob_remote *r, blob_remote_stats *out);

#endif
