/*
 * The zygote: one process per serve, started once by exec like any worker,
 * that starts templates by fork() instead of exec. A template exec'd from
 * zero pays the dynamic linking of oneDNN and of serve's libraries and
 * their start-up (about 6 ms here) before it opens its plan; forked from the
 * zygote, which paid that once, it starts in a fraction of a millisecond.
 *
 * The zygote never runs a model and never starts an OpenMP team, so its
 * children may use any thread count (see template.h). It forks each
 * template through an intermediate process that exits at once, so the
 * template is reparented to serve (a child subreaper) and serve reaps it as
 * it reaps an exec'd one.
 *
 * Conversation on the zygote's control socket (SOCK_SEQPACKET): serve sends
 * one spawn packet (the template's arguments, NUL-separated, as they would
 * be passed to exec, with the template's control socket attached); the
 * zygote (or its spare, see zygote.c) answers with one reply packet: the
 * template's pid, or an errno. Requests are answered in order; serve sends
 * the next once the last is answered, and never waits for an answer on its
 * loop (zygote_spawn_request, then zygote_spawn_answer when the socket is
 * readable).
 */
#ifndef ROUSE_WORKER_ZYGOTE_H
#define ROUSE_WORKER_ZYGOTE_H

#include <sys/types.h>

#include "rouse/err.h"

/* What a forked child runs: argv[0] is the subcommand name, like main's. */
typedef int (*zygote_child_fn)(int argc, char **argv);

/* Run in the zygote after it started a child with argv: prepares that
 * model's kernels there, so that later children find them in oneDNN's
 * primitive cache. 1 when it made new ones, 0 when there was nothing to do,
 * < 0 when it could not. It must never start an OpenMP team. */
typedef int (*zygote_warm_fn)(int argc, char **argv);

/* Serves spawn requests on control socket fd until serve closes it (0) or a
 * read fails (1). In each forked child, returns child's exit status
 * instead; the caller exits with it. The attached socket arrives as
 * descriptor 3 in the child, whatever else the zygote had open. warm may be
 * NULL; warm_in (or -1) is a socket on which serve names models to warm
 * ahead of their first start (zygote_warm_request), unanswered. */
int zygote_main(int fd, int warm_in, zygote_child_fn child, zygote_warm_fn warm);

/* serve's side, without waiting: asks the zygote on `sock` to fork a child
 * running argv (argc entries, argv[0] the subcommand) with `child_fd` as its
 * descriptor 3. The answer comes later (zygote_spawn_answer). */
int zygote_spawn_request(int sock, int argc, char *const argv[], int child_fd, rouse_errbuf *eb);
/* Reads the answer to the oldest request: 0 and *pid set; ROUSE_EBUSY when
 * none has come yet; another < 0 with eb set: the zygote is lost. */
int zygote_spawn_answer(int sock, pid_t *pid, rouse_errbuf *eb);

/* Both of the above, blocking (for tests and tools, never serve's loop):
 * waits at most timeout_ms for the answer. 0 and *pid set, or < 0 with eb
 * set: then the zygote is to be considered lost. */
int zygote_spawn(int sock, int argc, char *const argv[], int child_fd, int timeout_ms, pid_t *pid,
                 rouse_errbuf *eb);

/* serve's side: asks the zygote, on its warm-up socket, to warm the model
 * that a child with these arguments would run (a new deploy). Does not
 * wait; a full socket drops the request (ROUSE_EIO). */
int zygote_warm_request(int sock, int argc, char *const argv[], rouse_errbuf *eb);

#endif
