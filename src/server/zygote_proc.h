/*
 * serve's side of the processes it starts itself (zygote_proc.c): fork+exec
 * of a rouse subcommand, and the zygote (worker/zygote.h) that forks
 * templates so that a start from zero does not pay an exec. Part of the
 * pool's process lifecycle; it knows nothing of pools or requests.
 */
#ifndef ROUSE_SERVER_ZYGOTE_PROC_H
#define ROUSE_SERVER_ZYGOTE_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rouse/err.h"

typedef struct zygote_proc {
    const char *exe;       /* borrowed from the pool's options */
    const char *log_level; /* borrowed */
    /* Its control socket (-1 when there is none: templates are then
     * exec'd), its warm-up socket, its pid (0 once reaped), and when serve
     * may start the next (a second after the last start). */
    int sock;
    int warm_sock;
    pid_t pid;
    uint64_t retry_ns;
    bool stopping; /* serve is shutting down: no new zygote */
} zygote_proc;

/* fork+exec of exe with argv (argv[0] the executable), child_fd as the
 * child's descriptor 3 and extra_fd (unless -1) as its descriptor 4. */
int proc_fork_exec(const char *exe, char *const argv[], int child_fd, int extra_fd, pid_t *pid,
                   rouse_errbuf *eb);
/* Sets up z (no zygote yet). */
void zygote_init(zygote_proc *z, const char *exe, const char *log_level);
/* Starts the zygote; on failure logs it and leaves templates to exec. */
void zygote_start(zygote_proc *z);
/* Forks a template through the zygote: argv from the subcommand on, child_fd
 * its control socket. 0 and *pid set; < 0 when there is no zygote or it
 * failed (then it is dropped, and the caller execs the template with a new
 * socket: a late fork by the lost zygote must find its own socket closed). */
int zygote_fork_template(zygote_proc *z, int argc, char *const argv[], int child_fd, pid_t *pid);
/* Asks the zygote to warm the kernels of the model a template with these
 * arguments (from the subcommand on) would run; does not wait. */
void zygote_warm(zygote_proc *z, int argc, char *const argv[]);
/* True when pid was the zygote (reaped): it is forgotten. */
bool zygote_reaped(zygote_proc *z, pid_t pid, int wstatus);
/* Ends the zygote and reaps it (shutdown). */
void zygote_stop(zygote_proc *z);

#endif
