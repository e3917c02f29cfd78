/*
 * The access log: one line per invocation (server/invocation.h), as text
 * or JSON, to stderr or a file that SIGHUP reopens (for logrotate).
 *
 * The loop never writes the log itself. The sink copies the record into a
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

#include <stdint.h>

#include "common/buf.h"
#include "rouse/err.h"
#include "server/invocation.h"

typedef enum access_log_format { ACCESS_LOG_TEXT = 0, ACCESS_LOG_JSON } access_log_format;

typedef struct access_log access_log;

/* Starts the writer for `path` (appended to, created 0644), or stderr when
 * path is NULL. Owned: free with access_log_destroy. */
int access_log_create(const char *path, access_log_format fmt, access_log **out, rouse_errbuf *eb);
/* Writes what is queued, stops the thread and closes the file. */
void access_log_destroy(access_log *al);

/* The invocation sink (invocation_sink_fn); user is the access_log. */
void access_log_on_invocation(void *user, const invocation *inv);

/* SIGHUP: the writer reopens the file by its path before its next write
 * (a no-op for stderr). */
void access_log_reopen(access_log *al);

/* Lines dropped so far because the queue was full. */
uint64_t access_log_dropped(const access_log *al);

/* Appends the line for inv (with its newline): exposed for tests. */
int access_log_format_line(access_log_format fmt, const invocation *inv, rouse_buf *out);

#endif
