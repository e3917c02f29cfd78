/*
 * The kernel's control groups as rouse uses them: one group per sandboxed
 * instance in each of the memory, cpu and pids controllers, nested under
 * the group serve itself runs in (`<controller mount>/<serve's group>/
 * rouse-<serve pid>/<pid>`), so that whoever limits serve still limits all
 * of it. Each instance's CPU weight is its own (proportional to its
 * memory_mb), as its memory limit is: the group is prepared by its
 * template before the fork and merely renamed by the instance (see
 * cgroup_prepare), so the instance's start pays no move between groups.
 *
 * Both hierarchies are supported: cgroup v1 (a mount per controller:
 * memory.limit_in_bytes, cpu.shares, pids.max) and cgroup v2 (one mount:
 * memory.max, cpu.weight, pids.max), each controller from whichever
 * hierarchy has it. serve makes the roots at start (cgroup_roots_make)
 * and removes each instance's groups when it reaps the instance; the
 * instance makes its own groups and joins them (cgroup_join) through
 * directory descriptors its template opened before entering its sandbox,
 * so that the limits hold before it touches any memory.
 */
#ifndef ROUSE_WORKER_CGROUP_H
#define ROUSE_WORKER_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "rouse/err.h"

/* The controllers rouse limits instances with. */
typedef enum cgroup_ctl {
    CGROUP_MEMORY = 0,
    CGROUP_CPU = 1,
    CGROUP_PIDS = 2,
    CGROUP_N_CTL = 3
} cgroup_ctl;

/* "memory", "cpu", "pids". */
const char *cgroup_ctl_name(cgroup_ctl c);

/* Where each controller's root for rouse lies: dir[c] is "" when the
 * machine has no such controller for rouse (then v2[c] is meaningless). */
typedef struct cgroup_roots {
    char dir[CGROUP_N_CTL][PATH_MAX];
    bool v2[CGROUP_N_CTL];
} cgroup_roots;

/* serve's side: finds each controller (v1 first, then v2) under the group
 * serve runs in and makes `rouse-<pid>` there. A controller that is
 * missing or cannot be used is left out and described in why[c] (one
 * line, for the start-up log and GET /v2's fallbacks). Also removes the
 * roots of earlier serves that no longer run. */
void cgroup_roots_make(cgroup_roots *r, char why[CGROUP_N_CTL][160]);

/* serve's side, once a process it started has ended: whether its memory
 * group saw an OOM kill, then removes its groups. *busy is set when a
 * group stays because processes are still in it (a zombie keeps its
 * group until reaped): cgroup_remove it again later. */
bool cgroup_instance_ended(const cgroup_roots *r, pid_t pid, bool *busy);
/* Removes pid's groups; false when one is still in use. */
bool cgroup_remove(const cgroup_roots *r, pid_t pid);

/* serve's side at shutdown: removes the roots (once every instance is
 * gone). False when a group is still in use (a process not yet reaped:
 * even a zombie keeps its group). */
bool cgroup_roots_remove(const cgroup_roots *r);

/* The limits of one instance. */
typedef struct cgroup_limits {
    int64_t memory_mb;  /* memory, swap excluded; 0: none */
    int64_t cpu_weight; /* proportional to memory_mb (1024 MB = the default weight) */
    int64_t pids_max;   /* tasks (threads count); 0: none */
} cgroup_limits;

/* The controllers each instance has a group of its own in. */
#define CGROUP_MASK_INSTANCE ((1u << CGROUP_MEMORY) | (1u << CGROUP_CPU) | (1u << CGROUP_PIDS))

/* Makes a group named after the caller's pid under each root descriptor
 * of the controllers in mask (dirfd[c], -1 for none; v2[c] as in
 * cgroup_roots), writes its limits and moves the calling process into
 * it: an instance right after its fork (CGROUP_MASK_INSTANCE) when its
 * template had no prepared groups for it. */
int cgroup_join(const int dirfd[CGROUP_N_CTL], const bool v2[CGROUP_N_CTL], const cgroup_limits *l,
                unsigned mask, rouse_errbuf *eb);

/* Joining a group makes the kernel wait for an RCU grace period (the
 * write side of the lock that fork reads): a few milliseconds, more on a
 * loaded machine (14-20 ms measured), far too slow for an instance's
 * start. A forked process starts in its parent's groups for free, so the
 * template moves itself, after each fork and off any request's path, into
 * fresh groups made and limited for its next instance (cgroup_prepare,
 * named `name`), and renames them after the pid of the instance it forks
 * there (cgroup_claim; cgroup v1 only: v2 groups cannot be renamed, and an
 * instance joins its own there with cgroup_join). */
int cgroup_prepare(const int dirfd[CGROUP_N_CTL], const bool v2[CGROUP_N_CTL],
                   const cgroup_limits *l, unsigned mask, const char *name, rouse_errbuf *eb);
/* Renames the groups `from` of the controllers in mask after pid (the
 * template, once its fork has returned the new process's pid as serve
 * sees it). */
int cgroup_claim(const int dirfd[CGROUP_N_CTL], unsigned mask, const char *from, pid_t pid,
                 rouse_errbuf *eb);

/* Makes the groups `name` with their limits, as cgroup_prepare does, but
 * moves nothing: opens each one's cgroup.procs for writing into
 * procs_fd[c] (-1 elsewhere), through which a process forked afterwards
 * joins them itself (cgroup_enter_fds) before it touches its memory. For
 * a fork that finds no prepared groups (the template had no time to move
 * into fresh ones). */
int cgroup_make_open(const int dirfd[CGROUP_N_CTL], const bool v2[CGROUP_N_CTL],
                     const cgroup_limits *l, unsigned mask, const char *name,
                     int procs_fd[CGROUP_N_CTL], rouse_errbuf *eb);
/* Moves the calling process into the groups whose cgroup.procs are open in
 * procs_fd (-1: none). */
int cgroup_enter_fds(const int procs_fd[CGROUP_N_CTL], rouse_errbuf *eb);

/* serve's side: removes the groups whose names start with prefix (a dead
 * template's prepared groups), those still in use excepted. */
void cgroup_remove_prefix(const cgroup_roots *r, const char *prefix);

#endif
