/*
 * Runs rouse serve for the integration tests (see serve_proc.h).
 */
#include "serve_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int serve_proc_start(serve_proc *p, const char *rouse, const char *data_dir,
                     const char *const *extra)
{
    return serve_proc_start_in(p, rouse, data_dir, extra, NULL, NULL);
}

int serve_proc_start_in(serve_proc *p, const char *rouse, const char *data_dir,
                        const char *const *extra, const char *netns_path, const char *host)
{
    memset(p, 0, sizeof(*p));
    int out[2];
    if (pipe(out) < 0) return -1;
    const char *argv[32] = {rouse, "serve", "--port", "0", "--data", data_dir};
    int n = 6;
    for (const char *const *e = extra; e && *e && n < 30; e++)
        argv[n++] = *e;
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        if (netns_path) {
            int nfd = open(netns_path, O_RDONLY | O_CLOEXEC);
            if (nfd < 0 || setns(nfd, CLONE_NEWNET) < 0) {
                fprintf(stderr, "serve_proc: setns %s: %s\n", netns_path, strerror(errno));
                _exit(126);
            }
            close(nfd);
        }
        execv(rouse, (char **)argv);
        _exit(127);
    }
    close(out[1]);
    char line[256];
    size_t len = 0;
    /* Read the first line, bounded in time. */
    while (len < sizeof(line) - 1) {
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        if (poll(&pfd, 1, 10000) <= 0) break;
        ssize_t r = read(out[0], line + len, 1);
        if (r <= 0) break;
        if (line[len] == '\n') break;
        len++;
    }
    line[len] = '\0';
    close(out[0]);
    const char *colon = strrchr(line, ':');
    if (strncmp(line, "listening on ", 13) != 0 || !colon) {
        fprintf(stderr, "serve did not start (first line: '%s')\n", line);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    p->pid = pid;
    p->port = atoi(colon + 1);
    snprintf(p->target.host, sizeof(p->target.host), "%s", host ? host : "127.0.0.1");
    p->target.port = p->port;
    return 0;
}

int serve_proc_stop(serve_proc *p)
{
    if (p->pid <= 0) return -1;
    kill(p->pid, SIGTERM);
    int st;
    while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR) {
    }
    p->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void serve_proc_kill9(serve_proc *p)
{
    if (p->pid <= 0) return;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}
