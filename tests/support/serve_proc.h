/*
 * Test support: runs the real `rouse serve` as a child process on a free
 * loopback port (--port 0, the port read from its first stdout line) with a
 * given data directory, and stops it with SIGTERM or SIGKILL.
 * Test code: failures return -1 with a line on stderr.
 */
#ifndef ROUSE_TESTS_SERVE_PROC_H
#define ROUSE_TESTS_SERVE_PROC_H

#include <sys/types.h>

#include "cli/http_client.h"

typedef struct serve_proc {
    pid_t pid;
    int port;
    http_target target;
} serve_proc;

/* Starts `rouse serve --port 0 --data DATA_DIR [extra...]` and waits (10 s
 * at most) for its "listening on" line. extra is NULL-terminated or NULL. */
int serve_proc_start(serve_proc *p, const char *rouse, const char *data_dir,
                     const char *const *extra);

/* The same inside the network namespace at netns_path (test_net.h; NULL:
 * the caller's), reached by the test at host (NULL: 127.0.0.1). */
int serve_proc_start_in(serve_proc *p, const char *rouse, const char *data_dir,
                        const char *const *extra, const char *netns_path, const char *host);

/* SIGTERM, then waits for the exit; returns the exit status (or 128+signal). */
int serve_proc_stop(serve_proc *p);

/* SIGKILL and reap. */
void serve_proc_kill9(serve_proc *p);

#endif
