/*
 * worker_fork_detached and worker_wait_adopted (see detach.h).
 */
#include "worker/detach.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

pid_t worker_wait_adopted(pid_t mid)
{
    /* The intermediate exits right after its fork (having, at most, sent
     * one message): a short wait. */
    pid_t pp;
    while ((pp = getppid()) == mid) {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
    return pp;
}

int worker_fork_detached(pid_t *mid)
{
    pid_t m = fork();
    if (m < 0) return -1;
    if (m == 0) {
        *mid = getpid();
        pid_t p = fork();
        if (p == 0) return 0;
        _exit(p < 0 ? 1 : 0);
    }
    int ws;
    while (waitpid(m, &ws, 0) < 0)
        if (errno != EINTR) return -1;
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        errno = EAGAIN; /* the second fork failed */
        return -1;
    }
    return 1;
}

pid_t worker_fork_sibling(void)
{
    /* The exit signal is the caller's own (SIGCHLD), as CLONE_PARENT
     * ignores the one given; no new stack: the child returns here on a
     * copy of the caller's, as with fork. */
    return (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_PARENT | SIGCHLD), 0UL, NULL, NULL, 0UL);
}
