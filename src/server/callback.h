/*
 * Callback delivery: POSTs a body to a URL from a thread of its own
 * (libcurl), retrying with exponential backoff, so that a slow or dead
 * receiver never holds serve's loop. It knows nothing of jobs: each
 * delivery is an id, a URL and a body, and its outcome (delivered, or
 * failed after CALLBACK_MAX_ATTEMPTS) comes back through an eventfd that
 * the loop watches, to be taken with callbacks_take.
 *
 * Threads: every function but the thread's own belongs to the loop.
 */
#ifndef ROUSE_SERVER_CALLBACK_H
#define ROUSE_SERVER_CALLBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rouse/err.h"

#define CALLBACK_MAX_ATTEMPTS 5
#define CALLBACK_BACKOFF_MS 200
#define CALLBACK_TIMEOUT_MS 10000

typedef struct callbacks callbacks;

typedef struct callback_outcome {
    int64_t id;
    bool delivered;
    int attempts;
    char error[256]; /* the last failure, or "" */
} callback_outcome;

/* Owned: free with callbacks_destroy. */
int callbacks_create(callbacks **out, rouse_errbuf *eb);
/* Stops the thread (a delivery in progress ends within its timeout;
 * deliveries not done are dropped: the next start sends them again). */
void callbacks_destroy(callbacks *c);
/* The eventfd to watch for EPOLLIN. */
int callbacks_fd(const callbacks *c);
/* Queues a delivery; body (malloc'd) is taken whatever this returns. */
int callbacks_send(callbacks *c, int64_t id, const char *url, char *body, size_t len);
/* Takes up to max finished deliveries; returns how many. */
int callbacks_take(callbacks *c, callback_outcome *out, int max);
/* Deliveries queued or in progress. */
int callbacks_pending(const callbacks *c);

/* Whether url is an http(s) URL whose host is in allow (comma-separated,
 * exact, case-insensitive; NULL: loopback only). 0, or ROUSE_EINVAL with a
 * message that says why. */
int callback_url_check(const char *url, const char *allow, rouse_errbuf *eb);

#endif
