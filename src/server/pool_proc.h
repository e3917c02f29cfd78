/*
 * The pool's process lifecycle: the common header of every process the
 * pool runs (worker, template, validator: each kind's struct embeds a proc
 * as its first member), starting them, their sockets in serve's epoll,
 * killing them, reaping them through a pid -> process map, pids learned
 * after their process was already reaped ("late pids"), and freeing them
 * once no event of the current epoll batch can point at them.
 *
 * It knows nothing of pools, requests or scheduling; the scheduler
 * (pool_sched.c) calls it and never the other way round.
 *
 * Invariants:
 * - A proc is in the pid map exactly when its pid is known (> 0) and it has
 *   not been reaped; two procs never share a pid there.
 * - A proc is on the `all` list from proc_add until proc_bury; buried ones
 *   are on `dead` until proc_collect frees them (after the epoll batch).
 * - A proc's socket is registered in epoll exactly while sock >= 0.
 * - A proc with start_argv set has no pid and a spawn in the zygote's queue
 *   (or handed back); it is never buried before that spawn is settled.
 */
#ifndef ROUSE_SERVER_POOL_PROC_H
#define ROUSE_SERVER_POOL_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rouse/err.h"
#include "server/ep.h"
#include "server/zygote_proc.h"
#include "worker/cgroup.h"

typedef enum proc_kind {
    PROC_WORKER = 1, /* serves requests; forked by its pool's template */
    PROC_TEMPLATE,   /* a function version's template: forks workers */
    PROC_VALIDATOR,  /* a deploy's model check */
} proc_kind;

typedef enum proc_state {
    PROC_STARTING, /* started, waiting for READY */
    PROC_READY,    /* serving (a worker, a template) */
    PROC_STOPPING, /* told to stop or killed; waiting to be reaped */
} proc_state;

typedef struct proc proc;
struct proc {
    ep_tag tag; /* EP_PROC; first member */
    proc_kind kind;
    proc_state state;
    pid_t pid; /* 0 until known */
    int sock;  /* the control socket, -1 once closed */
    uint64_t started_ns, ready_ns;
    char fail_msg[256]; /* READY's error message */
    bool oom_killed;    /* reaped: its memory group saw an OOM kill (sandbox) */
    bool dead;          /* buried: freed at the end of the loop iteration */
    proc *map_next;     /* chain in the pid map */
    proc *all_prev, *all_next;
    /* A template waiting for the zygote (pid 0): its arguments, kept for an
     * exec if the zygote is lost. */
    char **start_argv;
};

#define PROC_MAP_BUCKETS 256
#define ORPHANS_KEPT 16
#define PROC_CG_BUSY_MAX 64

typedef struct proc_table {
    int epfd;
    zygote_proc zyg;
    proc *map[PROC_MAP_BUCKETS]; /* pid -> proc */
    proc *all;                   /* every proc not yet buried */
    int n_all;
    proc *dead; /* buried, freed by proc_collect */
    /* Processes reaped before serve learned their pid (a template's reply
     * still unread): matched when the pid arrives. */
    struct {
        pid_t pid;
        int wstatus;
    } orphans[ORPHANS_KEPT];
    int orphan_head;
    /* The sandbox's control groups (NULL without): an instance's are
     * removed when it is reaped, and an OOM kill noted. */
    const cgroup_roots *cg;
    /* Processes whose groups outlived them (a template's CPU group while
     * its instances serve): removed again at later reaps. */
    pid_t cg_busy[PROC_CG_BUSY_MAX];
    int n_cg_busy;
} proc_table;

void proc_table_init(proc_table *t, int epfd, const char *exe, const char *log_level);

/* What became of a start or a process (proc_next_event). */
typedef enum proc_event_type {
    PROC_EV_STARTED, /* a template the zygote was asked for has its pid */
    PROC_EV_ENDED,   /* ... and had already ended (reaped before its pid came) */
    PROC_EV_FAILED,  /* ... could not be started at all (no process) */
} proc_event_type;

typedef struct proc_event {
    proc_event_type type;
    proc *pr;
    bool forked;  /* STARTED: by the zygote (else exec'd after the zygote was lost) */
    int wstatus;  /* ENDED */
    char msg[160]; /* FAILED */
} proc_event;

/* Links pr (zeroed memory, the first member of its kind's struct, which
 * must come from calloc: proc_collect frees it) with its control socket
 * (made non-blocking and watched for input); pid may be 0. */
void proc_add(proc_table *t, proc *pr, proc_kind kind, int sock, pid_t pid, uint64_t now);
/* Starts a process running argv (argv[0] the executable) and links pr for
 * it. A template is asked of the zygote when there is one: pr then has no
 * pid yet (*pending), and proc_next_event says what became of it; else,
 * and for the other kinds, it is exec'd at once. */
int proc_spawn(proc_table *t, proc *pr, proc_kind kind, char *const argv[], int argc,
               uint64_t now, bool *pending, rouse_errbuf *eb);
/* The next start settled by the zygote (an EP_ZYGOTE event, a lost or too
 * slow zygote, whose spawns are exec'd here). False when none. */
bool proc_next_event(proc_table *t, uint64_t now, proc_event *ev);
/* ms until proc_next_event has something to do without an event, or -1. */
int proc_timeout_ms(const proc_table *t, uint64_t now);
/* Learns pr's pid. True when that process had already been reaped: then
 * *wstatus is how it ended, and the caller settles pr at once. */
bool proc_set_pid(proc_table *t, proc *pr, pid_t pid, int *wstatus);
/* Closes pr's socket (the process exits at end of stream). */
void proc_close(proc_table *t, proc *pr);
/* SIGKILL (when its pid is known) and closes its socket. */
void proc_kill(proc_table *t, proc *pr);
/* The next ended process the pool knows of, taken out of the pid map, and
 * how it ended; NULL when no more have ended. Pids not known yet are kept
 * as orphans for proc_set_pid. */
proc *proc_reap(proc_table *t, int *wstatus);
/* Unlinks a settled proc (closing its socket); freed by proc_collect. */
void proc_bury(proc_table *t, proc *pr);
/* Frees buried procs. */
void proc_collect(proc_table *t);
/* Asserts the invariants above (pool_check, sanitizer builds). */
void proc_table_check(const proc_table *t);
/* Shutdown: stops the zygote, closes every socket, waits for the processes
 * (2 s, then SIGKILL) and frees every proc. */
void proc_stop_all(proc_table *t);

#endif
