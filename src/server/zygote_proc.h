/*
 * serve's side of the processes it starts itself (zygote_proc.c): fork+exec
 * of a rouse subcommand, the zygote (worker/zygote.h) that forks templates
 * so that a start from zero does not pay an exec, and the system calls that
 * start, signal and reap the pool's processes. The lowest part of the
 * pool's process lifecycle (pool_proc.c calls it); it knows nothing of pools
 * or requests. A unit test replaces this file and plays the processes.
 *
 * The exchange with the zygote never blocks serve's loop: a spawn waits in
 * a queue, the oldest is sent, and its answer is read when the zygote's
 * socket (registered in serve's epoll with an EP_ZYGOTE tag) is readable.
 * A zygote that does not answer within ZYGOTE_ANSWER_MS (stopped, hung) is
 * killed, as is one whose socket fails; every spawn it held is handed back
 * (zygote_poll) for its caller to exec instead.
 *
 * Invariants:
 * - Only the oldest queued spawn has been sent (sent_ns != 0), and only
 *   while the zygote's socket is open.
 * - A spawn is either queued or handed back, once.
 */
#ifndef ROUSE_SERVER_ZYGOTE_PROC_H
#define ROUSE_SERVER_ZYGOTE_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rouse/err.h"
#include "server/ep.h"

#define ZYGOTE_ANSWER_NS (1000ull * 1000000ull)

typedef struct zygote_job zygote_job;

typedef struct zygote_proc {
    ep_tag tag; /* EP_ZYGOTE: the control socket in serve's epoll */
    int epfd;
    const char *exe;       /* borrowed from the pool's options */
    const char *log_level; /* borrowed */
    /* Its control socket (-1 when there is none: templates are then
     * exec'd), its warm-up socket, its pid (0 once reaped), and when serve
     * may start the next (a second after the last start). */
    int sock;
    int warm_sock;
    pid_t pid;
    uint64_t retry_ns;
    bool stopping;              /* serve is shutting down: no new zygote */
    bool sandbox;               /* isolation "sandbox": the zygote hardens itself */
    zygote_job *head, *tail;    /* spawns waiting for an answer, oldest first */
    uint64_t sent_ns;           /* when the oldest was sent, or 0 */
    zygote_job *lost;           /* spawns to hand back: the zygote was lost */
} zygote_proc;

/* What became of a spawn (zygote_poll). */
typedef struct zygote_outcome {
    void *owner;
    pid_t pid; /* forked; 0: not forked, exec it instead */
} zygote_outcome;

/* fork+exec of exe with argv (argv[0] the executable), child_fd as the
 * child's descriptor 3 and extra_fd (unless -1) as its descriptor 4, in
 * serve's environment with LD_BIND_NOW=1 (unless serve's sets it). */
int proc_fork_exec(const char *exe, char *const argv[], int child_fd, int extra_fd, pid_t *pid,
                   rouse_errbuf *eb);
/* SIGKILL to pid (> 0). */
void proc_kill_pid(pid_t pid);
/* Reaps one ended child without waiting: its pid and status; the zygote is
 * handled here (zygote_reaped) and never returned. 0 when none has ended,
 * -1 when serve has no children left. */
pid_t proc_reap_one(zygote_proc *z, int *wstatus);

/* Sets up z (no zygote yet). */
void zygote_init(zygote_proc *z, int epfd, const char *exe, const char *log_level);
/* Starts the zygote; on failure logs it and leaves templates to exec. */
void zygote_start(zygote_proc *z);
/* Queues a spawn for owner: the zygote forks argv (argc entries from the
 * subcommand on) with child_fd (taken: closed here once sent or handed
 * back) as its descriptor 3. False (child_fd untouched) when there is no
 * zygote: the caller execs; a new zygote is started for later spawns when
 * the last start is a second old. */
bool zygote_submit(zygote_proc *z, void *owner, int argc, char *const argv[], int child_fd,
                   uint64_t now);
/* The next settled spawn (after an EP_ZYGOTE event, a reap, or at a tick:
 * an overdue answer kills the zygote here). False when none. */
bool zygote_poll(zygote_proc *z, uint64_t now, zygote_outcome *out);
/* ms until the answer being waited for is overdue, or -1. */
int zygote_timeout_ms(const zygote_proc *z, uint64_t now);
/* Asks the zygote to warm the kernels of the model a template with these
 * arguments (from the subcommand on) would run; does not wait. */
void zygote_warm(zygote_proc *z, int argc, char *const argv[]);
/* True when pid was the zygote (reaped): it is forgotten. */
bool zygote_reaped(zygote_proc *z, pid_t pid, int wstatus);
/* Ends the zygote and reaps it, and forgets every queued spawn (shutdown). */
void zygote_stop(zygote_proc *z);

#endif
