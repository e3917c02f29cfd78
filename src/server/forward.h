/*
 * The forwarder: sends calls to other nodes over HTTP(S) from a thread of
 * its own (libcurl's multi interface), so that serve's loop never waits
 * for a peer. It knows nothing of routing or of serve's requests: each
 * send is an id, a URL, headers and a body (a POST) or none (a GET); its outcome (the peer's
 * status, the headers that matter and the body, or how it failed and
 * whether the peer can have started the call) comes back through an
 * eventfd that the loop watches, to be taken with forward_take.
 *
 * TLS: a peer whose URL is https is verified (name and chain) against the
 * system's store and, when given, a file of extra trusted certificates
 * (serve's own --tls-cert chain, so that nodes sharing a private CA trust
 * each other).
 *
 * Threads: every function but the thread's own belongs to the loop.
 */
#ifndef ROUSE_SERVER_FORWARD_H
#define ROUSE_SERVER_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rouse/err.h"

/* Connecting to a peer takes at most this long before the call is tried
 * elsewhere. */
#define FORWARD_CONNECT_TIMEOUT_MS 1000
/* A peer's reply larger than this fails the call (502). */
#define FORWARD_REPLY_MAX (256ull << 20)
#define FORWARD_HEADERS_MAX 8

typedef struct forwarder forwarder;

typedef struct forward_send_req {
    uint64_t id;
    const char *url; /* the whole URL (copied) */
    const char *headers[FORWARD_HEADERS_MAX]; /* "Name: value", copied; NULL ends */
    char *body;      /* malloc'd, taken whatever forward_send returns */
    size_t len;
    bool get;        /* a GET (body and len unused) instead of a POST */
} forward_send_req;

typedef struct forward_result {
    uint64_t id;
    /* The peer answered (status > 0), or the call failed: started says
     * whether the peer may have begun running it (connected and sent),
     * error why. */
    int status;
    bool started;
    char error[256];
    char content_type[64];
    char timing[128];
    char node[64];       /* Rouse-Node of the peer's reply */
    char request_id[32]; /* X-Request-Id */
    char start[12];      /* Rouse-Start */
    int64_t version;     /* X-Rouse-Version, 0 when absent */
    int64_t json_len;    /* Inference-Header-Content-Length, -1 when absent */
    int retry_after;
    char *body; /* malloc'd, the taker's */
    size_t len;
} forward_result;

/* extra_ca: a PEM file of certificates to trust besides the system's, or
 * NULL. Owned: free with forward_destroy. */
int forward_create(const char *extra_ca, forwarder **out, rouse_errbuf *eb);
/* Stops the thread; calls in flight are dropped. NULL is a no-op. */
void forward_destroy(forwarder *f);
int forward_fd(const forwarder *f);
int forward_send(forwarder *f, forward_send_req *rq);
/* Takes up to max finished calls; returns how many. */
int forward_take(forwarder *f, forward_result *out, int max);
/* Calls sent and not taken back yet. */
int forward_pending(const forwarder *f);

#endif
