/*
 * Function logs: what each function's processes print (their stdout and
 * stderr, through one pipe per template that its instances inherit) and
 * how they ended (crash reports from the pool), kept in a bounded ring per
 * function (FNLOG_MAX_LINES lines, FNLOG_MAX_BYTES of text; the oldest go
 * first) for GET /v1/functions/{name}/logs.
 *
 * Captured lines are also copied to serve's stderr, prefixed with the
 * function, version and pid, where the processes used to write them.
 *
 * Everything runs on serve's loop thread. Pipes are read non-blocking when
 * epoll says so (EP_OUTPUT), at most FNLOG_READ_MAX bytes per event, so a
 * chatty instance cannot hold the loop; a line longer than FNLOG_LINE_MAX
 * is cut there. Followers (Server-Sent Events) are woken by a callback
 * when their function gets a line, and every FNLOG_HEARTBEAT_MS they get a
 * comment line, so that a client that went away is noticed.
 */
#ifndef ROUSE_SERVER_FNLOG_H
#define ROUSE_SERVER_FNLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "rouse/err.h"
#include "server/ep.h"

#define FNLOG_MAX_LINES 2000
#define FNLOG_MAX_BYTES (256u << 10)
#define FNLOG_LINE_MAX 4096
#define FNLOG_READ_MAX (64u << 10)
#define FNLOG_HEARTBEAT_MS 15000

typedef struct fnlog fnlog;
typedef struct fnlog_follower fnlog_follower;

/* owned: free with fnlog_destroy (which closes every pipe). */
int fnlog_create(int epfd, fnlog **out, rouse_errbuf *eb);
void fnlog_destroy(fnlog *l);

/* Takes fd (the read end of a template's output pipe) and reads it into
 * name's ring as lines of `stream` "output" until its end. */
int fnlog_add_pipe(fnlog *l, const char *name, int64_t version, int pid, int fd);
/* An EP_OUTPUT event. */
void fnlog_on_event(fnlog *l, ep_tag *tag);

/* Appends one line (no newline needed) to name's ring. stream says what it
 * is: "output" or "crash". */
void fnlog_append(fnlog *l, const char *name, int64_t version, int pid, const char *stream,
                  const char *text, size_t len);

/* Appends {"name":...,"lines":[{"seq","time_ms","version","pid","stream","text"},...]}
 * with the lines logged at or after since_ms (wall clock, ms; 0: all). */
int fnlog_write_json(fnlog *l, const char *name, int64_t since_ms, rouse_buf *out);

/* Drops a deleted function's ring; its followers end. */
void fnlog_forget(fnlog *l, const char *name);

/* A follower of name from since_ms: wake(user) runs (on the loop) when it
 * has something to read. owned: free with fnlog_unfollow. */
int fnlog_follow(fnlog *l, const char *name, int64_t since_ms, void (*wake)(void *user),
                 void *user, fnlog_follower **out);
/* Copies up to max bytes of Server-Sent Events (one event per line:
 * "id: SEQ\ndata: {json}\n\n") into buf; 0 when nothing is ready, and
 * *ended once the stream is over (function deleted, serve stopping). */
size_t fnlog_follower_read(fnlog_follower *f, char *buf, size_t max, bool *ended);
void fnlog_unfollow(fnlog_follower *f);

/* serve is stopping: every follower ends (and is woken to say so). */
void fnlog_end_all(fnlog *l);

/* Heartbeats; returns ms until the next one is due, or -1 with no follower. */
int fnlog_tick(fnlog *l);

#endif
