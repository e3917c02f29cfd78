/*
 * worker_fork_detached (see detach.h).
 */
#include "worker/detach.h"

#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

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
