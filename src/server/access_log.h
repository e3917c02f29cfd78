/*
 * The access log: one line per HTTP request, as text or JSON, to stderr or
 * a file that SIGHUP reopens (for logrotate). An inference request's line
 * carries its invocation record (server/invocation.h: function, version,
 * start kind, durations); others their method, path and status.
 *
 * The loop never writes the log itself. It fills a record in place in a
 * bounded single-producer queue (common/spsc.h: a memcpy, no lock, no
 * system call) and a thread of the log's own formats and writes the lines.
 * A thread rather than non-blocking writes because a regular file is never
 * "not ready" to poll(): a write to a slow or stalled disk blocks whatever
 * thread makes it, and only a thread of its own can afford that. When the
 * writer falls behind by the whole queue, further lines are dropped and
 * counted (rouse_access_log_dropped_total), never waited for.
 */
#ifndef ROUSE_SERVER_ACCESS_LOG_H
#define ROUSE_SERVER_ACCESS_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "rouse/err.h"
#include "server/invocation.h"

typedef enum access_log_format { ACCESS_LOG_TEXT = 0, ACCESS_LOG_JSON } access_log_format;

typedef struct access_log access_log;

/* Starts the writer for `path` (appended to, created 0644 less the umask:
 * 0600 under serve, whose umask is 077), or stderr when
 * path is NULL. Owned: free with access_log_destroy. */
int access_log_create(const char *path, access_log_format fmt, access_log **out, rouse_errbuf *eb);
/* Writes what is queued, stops the thread and closes the file. */
void access_log_destroy(access_log *al);

/* One request's line as queued: inv holds the invocation of an inference
 * request, or for any other request only its request id, status, total_us,
 * bytes and ts_us (function and trace id empty). */
#define ACCESS_PATH_MAX 160
typedef struct access_rec {
    invocation inv;
    bool is_invocation;
    char method[8];
    char path[ACCESS_PATH_MAX]; /* cut at ACCESS_PATH_MAX - 1 bytes */
} access_rec;

/* The slot for the next line (the loop fills it, then access_log_publish),
 * or NULL when the queue is full: the line is counted as dropped. */
access_rec *access_log_claim(access_log *al);
void access_log_publish(access_log *al);

/* SIGHUP: the writer reopens the file by its path before its next write
 * (a no-op for stderr). */
void access_log_reopen(access_log *al);

/* Lines dropped so far because the queue was full. */
uint64_t access_log_dropped(const access_log *al);

/* Appends the line of r (with its newline): exposed for tests. */
int access_log_format_line(access_log_format fmt, const access_rec *r, rouse_buf *out);

#endif
