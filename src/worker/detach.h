/*
 * Forking a process that is not the caller's child: an intermediate child
 * forks it and exits at once, so the kernel hands it to the nearest child
 * subreaper among its ancestors (serve), which reaps it and learns how it
 * ended. Templates and the zygote's spares start this way; a template's
 * instances and spares start with worker_fork_sibling (below).
 */
#ifndef ROUSE_WORKER_DETACH_H
#define ROUSE_WORKER_DETACH_H

#include <sys/types.h>

/* 0 in the new process (*mid: the intermediate's pid, whose exit ends the
 * wait for the adoption); 1 in the caller, once the intermediate has been
 * reaped; -1 when a fork failed (errno set). */
int worker_fork_detached(pid_t *mid);

/* In a process forked by the intermediate mid: waits until mid has exited
 * and the kernel has handed this process to its new parent, and returns
 * that parent's pid. Until then the process is not serve's child, and a
 * parent death signal would be tied to mid. */
pid_t worker_wait_adopted(pid_t mid);

/* Forks a process whose parent is the caller's own parent (clone with
 * CLONE_PARENT): a template's instances and spares, whose parent is then
 * serve from their first instruction, with no intermediate and no
 * adoption to wait for, whatever pid namespace they start in. Returns as
 * fork does (0 in the new process, its pid as the caller sees it in the
 * caller, -1 with errno). The C library does not know of this fork: the
 * new process must not rely on its own thread id as the C library caches
 * it (pthread_self()-based calls on the main thread:
 * pthread_setaffinity_np, PI mutexes); raise(), pthread_kill() on the
 * calling thread and getpid() ask the kernel and are fine. The caller must be single-threaded, as
 * for fork(). */
pid_t worker_fork_sibling(void);

#endif
