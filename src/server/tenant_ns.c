/*
 * Tenants' pid namespaces and their reapers (see tenant_ns.h). A reaper is
 * forked from serve by a raw clone (CLONE_NEWPID), and from then on makes
 * system calls only: serve has threads, and a copy of a multithreaded
 * process may not take the C library's locks.
 */
#include "server/tenant_ns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"

#define MOD "isolation"

typedef struct reaper {
    char tenant[64];
    pid_t pid;
    int pidfd; /* readable once the reaper has ended */
    uint64_t ino;
} reaper;

struct tenant_ns {
    reaper *r;
    int n, cap;
};

tenant_ns *tenant_ns_create(void)
{
    return calloc(1, sizeof(tenant_ns));
}

void tenant_ns_destroy(tenant_ns *t)
{
    if (!t) return;
    for (int i = 0; i < t->n; i++) {
        syscall(SYS_pidfd_send_signal, t->r[i].pidfd, SIGKILL, NULL, 0);
        close(t->r[i].pidfd);
    }
    free(t->r);
    free(t);
}

/* The reaper: pid 1 of its namespace. Reaps whatever is left to it, until
 * serve ends (the parent death signal) or kills it. Never returns. */
__attribute__((noreturn)) static void reaper_main(int ready)
{
    /* No capability: it needs none, and a template (which keeps only a
     * few) may open its namespace only when the reaper holds no more than
     * it does (the kernel's ptrace access check). */
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof(d));
    syscall(SYS_capset, &h, d);
    ssize_t n = write(ready, "r", 1);
    (void)n;
    /* prctl by its system call: serve has threads when it clones this
     * process, and a sanitizer's prctl wrapper takes a lock that one of
     * them may have held at the clone. */
    syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0UL, 0UL, 0UL);
    syscall(SYS_prctl, PR_SET_NAME, "rouse-reaper", 0UL, 0UL, 0UL);
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL); /* SIGCHLD stays pending for sigwaitinfo */
    syscall(SYS_close_range, 0U, ~0U, 0U);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        siginfo_t si;
        for (;;) {
            memset(&si, 0, sizeof(si));
            if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0) break;
        }
        sigwaitinfo(&chld, &si);
    }
}

/* Starts tenant's reaper into r. */
static int start(reaper *r, const char *tenant, rouse_errbuf *eb)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "a pid namespace for tenant %s: pipe: %s", tenant,
                             strerror(errno));
    pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_NEWPID | SIGCHLD), 0UL, NULL,
                               NULL, 0UL);
    if (pid == 0) reaper_main(pfd[1]);
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        return rouse_err_set(eb, ROUSE_EIO, "a pid namespace for tenant %s: clone: %s", tenant,
                             strerror(errno));
    }
    /* Its first steps are a few system calls: a short wait, once per
     * tenant, so that no template tries its namespace before it has
     * dropped its capabilities. */
    char c;
    ssize_t got;
    while ((got = read(pfd[0], &c, 1)) < 0 && errno == EINTR)
        ;
    close(pfd[0]);
    /* serve's child: its pid cannot be reused before serve reaps it. */
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
    struct stat st;
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0 || stat(path, &st) < 0) {
        int err = errno;
        kill(pid, SIGKILL);
        if (fd >= 0) close(fd);
        return rouse_err_set(eb, ROUSE_EIO, "a pid namespace for tenant %s: %s", tenant,
                             strerror(err));
    }
    snprintf(r->tenant, sizeof(r->tenant), "%s", tenant);
    r->pid = pid;
    r->pidfd = fd;
    r->ino = (uint64_t)st.st_ino;
    LOG_DEBUG(MOD, "tenant %s: pid namespace %llu, reaper %d", tenant,
              (unsigned long long)r->ino, (int)pid);
    return 0;
}

static bool alive(const reaper *r)
{
    struct pollfd pf = {.fd = r->pidfd, .events = POLLIN};
    return poll(&pf, 1, 0) == 0;
}

int tenant_ns_arg(tenant_ns *t, const char *tenant, char *out, size_t len, rouse_errbuf *eb)
{
    reaper *r = NULL;
    for (int i = 0; i < t->n && !r; i++)
        if (strcmp(t->r[i].tenant, tenant) == 0) r = &t->r[i];
    if (r && !alive(r)) {
        LOG_WARN(MOD, "tenant %s: the reaper of its pid namespace (%d) ended; starting another",
                 tenant, (int)r->pid);
        close(r->pidfd);
        int rc = start(r, tenant, eb);
        if (rc < 0) {
            *r = t->r[--t->n];
            return rc;
        }
    } else if (!r) {
        if (t->n == t->cap) {
            int cap = t->cap ? 2 * t->cap : 8;
            reaper *nr = realloc(t->r, (size_t)cap * sizeof(*nr));
            if (!nr) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
            t->r = nr;
            t->cap = cap;
        }
        int rc = start(&t->r[t->n], tenant, eb);
        if (rc < 0) return rc;
        r = &t->r[t->n++];
    }
    snprintf(out, len, "%d:%llu", (int)r->pid, (unsigned long long)r->ino);
    return 0;
}
