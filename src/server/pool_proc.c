/*
 * The pool's process lifecycle (see pool_proc.h): linking processes, their
 * sockets in epoll, the pid map, reaping, late pids and freeing.
 */
#include "server/pool_proc.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"

#define MOD "pool"

void proc_table_init(proc_table *t, int epfd, const char *exe, const char *log_level)
{
    t->epfd = epfd;
    zygote_init(&t->zyg, epfd, exe, log_level);
}

static unsigned bucket(pid_t pid)
{
    return (unsigned)pid % PROC_MAP_BUCKETS;
}

static void map_insert(proc_table *t, proc *pr)
{
    assert(pr->pid > 0);
    proc **b = &t->map[bucket(pr->pid)];
    for (const proc *k = *b; k; k = k->map_next)
        assert(k->pid != pr->pid);
    pr->map_next = *b;
    *b = pr;
}

/* Takes pr out of the pid map; false when it was not there. */
static bool map_remove(proc_table *t, proc *pr)
{
    if (pr->pid <= 0) return false;
    for (proc **pp = &t->map[bucket(pr->pid)]; *pp; pp = &(*pp)->map_next) {
        if (*pp == pr) {
            *pp = pr->map_next;
            pr->map_next = NULL;
            return true;
        }
    }
    return false;
}

static proc *map_find(proc_table *t, pid_t pid)
{
    for (proc *k = t->map[bucket(pid)]; k; k = k->map_next)
        if (k->pid == pid) return k;
    return NULL;
}

void proc_add(proc_table *t, proc *pr, proc_kind kind, int sock, pid_t pid, uint64_t now)
{
    pr->tag.kind = EP_PROC;
    pr->kind = kind;
    pr->state = PROC_STARTING;
    pr->sock = sock;
    pr->started_ns = now;
    fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &pr->tag};
    epoll_ctl(t->epfd, EPOLL_CTL_ADD, sock, &ev);
    pr->all_prev = NULL;
    pr->all_next = t->all;
    if (t->all) t->all->all_prev = pr;
    t->all = pr;
    t->n_all++;
    pr->pid = pid;
    if (pid > 0) map_insert(t, pr);
}

/* A copy of argv in one allocation (free() frees it all), or NULL. */
static char **argv_copy(char *const argv[], int argc)
{
    size_t size = (size_t)(argc + 1) * sizeof(char *);
    for (int i = 0; i < argc; i++)
        size += strlen(argv[i]) + 1;
    char **copy = malloc(size);
    if (!copy) return NULL;
    char *at = (char *)(copy + argc + 1);
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]) + 1;
        memcpy(at, argv[i], n);
        copy[i] = at;
        at += n;
    }
    copy[argc] = NULL;
    return copy;
}

int proc_spawn(proc_table *t, proc *pr, proc_kind kind, char *const argv[], int argc,
               uint64_t now, bool *pending, rouse_errbuf *eb)
{
    *pending = false;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "socketpair: %s", strerror(errno));
    if (kind == PROC_TEMPLATE && (pr->start_argv = argv_copy(argv, argc))) {
        if (zygote_submit(&t->zyg, pr, argc - 1, argv + 1, sv[1], now)) {
            proc_add(t, pr, kind, sv[0], 0, now);
            *pending = true;
            return 0;
        }
        free(pr->start_argv);
        pr->start_argv = NULL;
    }
    pid_t pid = 0;
    int rc = proc_fork_exec(argv[0], argv, sv[1], -1, &pid, eb);
    close(sv[1]);
    if (rc < 0) {
        close(sv[0]);
        return rc;
    }
    proc_add(t, pr, kind, sv[0], pid, now);
    return 0;
}

/* Execs a template the zygote did not fork, with a new socket: whatever a
 * lost zygote may still do with the old one, the exec'd process does not
 * share it. */
static int exec_instead(proc_table *t, proc *pr, rouse_errbuf *eb)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "socketpair: %s", strerror(errno));
    pid_t pid = 0;
    int rc = proc_fork_exec(pr->start_argv[0], pr->start_argv, sv[1], -1, &pid, eb);
    close(sv[1]);
    if (rc < 0) {
        close(sv[0]);
        return rc;
    }
    proc_close(t, pr);
    pr->sock = sv[0];
    fcntl(pr->sock, F_SETFL, fcntl(pr->sock, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &pr->tag};
    epoll_ctl(t->epfd, EPOLL_CTL_ADD, pr->sock, &ev);
    pr->pid = pid;
    map_insert(t, pr);
    return 0;
}

bool proc_next_event(proc_table *t, uint64_t now, proc_event *ev)
{
    zygote_outcome o;
    if (!zygote_poll(&t->zyg, now, &o)) return false;
    proc *pr = o.owner;
    memset(ev, 0, sizeof(*ev));
    ev->pr = pr;
    char **argv = pr->start_argv;
    if (o.pid > 0) {
        pr->start_argv = NULL;
        free(argv);
        ev->forked = true;
        ev->type = proc_set_pid(t, pr, o.pid, &ev->wstatus) ? PROC_EV_ENDED : PROC_EV_STARTED;
        return true;
    }
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (pr->sock < 0) {
        ev->type = PROC_EV_FAILED;
        snprintf(ev->msg, sizeof(ev->msg), "stopped before it started");
    } else if (exec_instead(t, pr, &eb) < 0) {
        ev->type = PROC_EV_FAILED;
        snprintf(ev->msg, sizeof(ev->msg), "%.150s", eb.msg);
    } else {
        ev->type = PROC_EV_STARTED;
    }
    pr->start_argv = NULL;
    free(argv);
    return true;
}

int proc_timeout_ms(const proc_table *t, uint64_t now)
{
    return zygote_timeout_ms(&t->zyg, now);
}

bool proc_set_pid(proc_table *t, proc *pr, pid_t pid, int *wstatus)
{
    if (pr->pid > 0 || pid <= 0) return false;
    pr->pid = pid;
    for (int k = 0; k < ORPHANS_KEPT; k++) {
        if (t->orphans[k].pid != pid) continue;
        t->orphans[k].pid = 0;
        *wstatus = t->orphans[k].wstatus;
        return true;
    }
    map_insert(t, pr);
    return false;
}

void proc_close(proc_table *t, proc *pr)
{
    if (pr->sock < 0) return;
    epoll_ctl(t->epfd, EPOLL_CTL_DEL, pr->sock, NULL);
    close(pr->sock);
    pr->sock = -1;
}

void proc_kill(proc_table *t, proc *pr)
{
    if (pr->pid > 0) proc_kill_pid(pr->pid);
    proc_close(t, pr);
}

/* The control groups of an ended process: removed (or kept for a later
 * try while processes are still in them), and whether it was OOM-killed. */
static bool cg_ended(proc_table *t, pid_t pid)
{
    if (!t->cg) return false;
    for (int i = 0; i < t->n_cg_busy;)
        if (cgroup_remove(t->cg, t->cg_busy[i]))
            t->cg_busy[i] = t->cg_busy[--t->n_cg_busy];
        else
            i++;
    bool busy = false;
    bool oom = cgroup_instance_ended(t->cg, pid, &busy);
    /* A full list leaves the group to serve's removal of its root at exit. */
    if (busy && t->n_cg_busy < PROC_CG_BUSY_MAX) t->cg_busy[t->n_cg_busy++] = pid;
    return oom;
}

proc *proc_reap(proc_table *t, int *wstatus)
{
    for (;;) {
        pid_t pid = proc_reap_one(&t->zyg, wstatus);
        if (pid <= 0) return NULL;
        bool oom = cg_ended(t, pid);
        proc *pr = map_find(t, pid);
        if (pr && pr->kind == PROC_TEMPLATE && t->cg) {
            /* The groups it had made for its next instance. */
            char prefix[24];
            snprintf(prefix, sizeof(prefix), "n%d-", (int)pid);
            cgroup_remove_prefix(t->cg, prefix);
        }
        if (pr) {
            map_remove(t, pr);
            pr->oom_killed = oom;
            return pr;
        }
        t->orphans[t->orphan_head].pid = pid;
        t->orphans[t->orphan_head].wstatus = *wstatus;
        t->orphan_head = (t->orphan_head + 1) % ORPHANS_KEPT;
    }
}

static void unlink_all(proc_table *t, proc *pr)
{
    if (pr->all_prev)
        pr->all_prev->all_next = pr->all_next;
    else
        t->all = pr->all_next;
    if (pr->all_next) pr->all_next->all_prev = pr->all_prev;
    pr->all_prev = pr->all_next = NULL;
    t->n_all--;
}

void proc_bury(proc_table *t, proc *pr)
{
    assert(!pr->dead);
    assert(!pr->start_argv); /* its spawn is settled first */
    proc_close(t, pr);
    map_remove(t, pr);
    unlink_all(t, pr);
    pr->dead = true;
    pr->all_next = t->dead;
    t->dead = pr;
}

void proc_collect(proc_table *t)
{
    while (t->dead) {
        proc *n = t->dead->all_next;
        free(t->dead->start_argv);
        free(t->dead);
        t->dead = n;
    }
}

void proc_stop_all(proc_table *t)
{
    zygote_stop(&t->zyg);
    proc_collect(t);
    for (proc *pr = t->all, *n; pr; pr = n) {
        n = pr->all_next;
        proc_close(t, pr);
        if (pr->pid <= 0 || map_find(t, pr->pid) != pr) { /* no process serve knows of */
            unlink_all(t, pr);
            free(pr->start_argv);
            free(pr);
        }
    }
    /* Processes exit at end of stream; give them a moment, then insist. */
    uint64_t until = rouse_now_ns() + 2000000000ull;
    while (t->all) {
        int wstatus;
        pid_t pid = proc_reap_one(&t->zyg, &wstatus);
        if (pid > 0) cg_ended(t, pid);
        if (pid > 0) {
            proc *pr = map_find(t, pid);
            if (pr) {
                map_remove(t, pr);
                unlink_all(t, pr);
                free(pr);
            }
            continue;
        }
        if (pid < 0) break; /* no children left */
        if (rouse_now_ns() > until) {
            for (proc *pr = t->all; pr; pr = pr->all_next)
                proc_kill_pid(pr->pid);
            until = UINT64_MAX;
        }
        usleep(2000);
    }
    while (t->all) {
        proc *n = t->all->all_next;
        free(t->all->start_argv);
        free(t->all);
        t->all = n;
    }
    t->n_all = 0;
    for (int b = 0; b < PROC_MAP_BUCKETS; b++)
        t->map[b] = NULL;
}

void proc_table_check(const proc_table *t)
{
    int n = 0, mapped = 0;
    for (const proc *pr = t->all; pr; pr = pr->all_next) {
        assert(!pr->dead);
        assert(pr->tag.kind == EP_PROC);
        if (pr->all_next) assert(pr->all_next->all_prev == pr);
        if (pr->pid > 0) {
            assert(map_find((proc_table *)t, pr->pid) == pr);
            mapped++;
        }
        if (pr->start_argv) assert(pr->pid == 0 && pr->kind == PROC_TEMPLATE);
        n++;
    }
    assert(n == t->n_all);
    int in_map = 0;
    for (int b = 0; b < PROC_MAP_BUCKETS; b++)
        for (const proc *pr = t->map[b]; pr; pr = pr->map_next) {
            assert(bucket(pr->pid) == (unsigned)b);
            in_map++;
        }
    assert(in_map == mapped);
    for (const proc *pr = t->dead; pr; pr = pr->all_next)
        assert(pr->dead);
}
