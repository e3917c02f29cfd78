/*
 * The processes serve starts itself (see zygote_proc.h): fork+exec of a
 * rouse subcommand, the zygote's spawn queue, and the system calls that
 * start, signal and reap the pool's processes. Losing the zygote costs only
 * speed: templates are exec'd until a new one is up. Serve starts a new one as soon as it
 * reaps the last, or, when that one lived less than a second, when a
 * template is next needed a second after its start: at most one a second.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/zygote_proc.h"
#include "worker/zygote.h"

#define MOD "zygote"
#define ZYGOTE_RETRY_NS 1000000000ull

extern char **environ;

/* The environment of the rouse processes serve execs (the zygote, a
 * template without one, a deploy check): serve's own with LD_BIND_NOW=1,
 * so that the exec'd process resolves every symbol of rouse and its
 * libraries once, at its start. What it forks inherits the resolved
 * bindings: an instance no longer resolves, for itself, each function its
 * first request is the first to call (a symbol lookup each, and a
 * copy-on-write fault of each table page written, in every instance:
 * mlp's instances took 107 faults to the first requests with lazy
 * binding, 93 with this). Made once: serve's environment does not change
 * after its start. A value the caller set is kept. */
static char *const *exec_env(void)
{
    static char **env;
    static char bind_now[] = "LD_BIND_NOW=1";
    if (env) return env;
    size_t n = 0;
    for (char **e = environ; *e; e++, n++)
        if (strncmp(*e, "LD_BIND_NOW=", 12) == 0) return env = environ;
    char **made = malloc((n + 2) * sizeof(*made));
    if (!made) return environ;
    memcpy(made, environ, n * sizeof(*made));
    made[n] = bind_now;
    made[n + 1] = NULL;
    return env = made;
}

int proc_fork_exec(const char *exe, char *const argv[], int child_fd, int extra_fd, pid_t *pid,
                   rouse_errbuf *eb)
{
    pid_t parent = getpid();
    char *const *env = exec_env();
    pid_t p = fork();
    if (p < 0) return rouse_err_set(eb, ROUSE_EIO, "fork: %s", strerror(errno));
    if (p == 0) {
        /* Child: only async-signal-safe calls until exec. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(1);
        /* Copies out of the way first (close-on-exec), so that neither
         * descriptor is overwritten before it is moved. */
        int a = fcntl(child_fd, F_DUPFD_CLOEXEC, 10);
        int b = extra_fd >= 0 ? fcntl(extra_fd, F_DUPFD_CLOEXEC, 10) : -1;
        if (a < 0 || dup2(a, 3) < 0) _exit(1);
        if (extra_fd >= 0 && (b < 0 || dup2(b, 4) < 0)) _exit(1);
        execve(exe, argv, env);
        _exit(127);
    }
    *pid = p;
    return 0;
}

/* One queued spawn: its arguments in one block, its socket end. */
struct zygote_job {
    void *owner;
    int child_fd;
    int argc;
    char **argv;
    zygote_job *next;
};

void zygote_init(zygote_proc *z, int epfd, const char *exe, const char *log_level)
{
    z->tag.kind = EP_ZYGOTE;
    z->epfd = epfd;
    z->head = z->tail = z->lost = NULL;
    z->sent_ns = 0;
    z->exe = exe;
    z->log_level = log_level;
    z->sock = z->warm_sock = -1;
    z->pid = 0;
    z->retry_ns = 0;
    z->stopping = false;
    z->sandbox = false;
}

void zygote_start(zygote_proc *z)
{
    int sv[2], wv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        LOG_WARN(MOD, "socketpair: %s; templates will be exec'd", strerror(errno));
        return;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, wv) < 0) {
        LOG_WARN(MOD, "socketpair: %s; templates will be exec'd", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return;
    }
    /* Room for the titles of the templates it forks (common/proctitle.h). */
    static char room[2048];
    memset(room, ' ', sizeof(room) - 1);
    char *argv[] = {(char *)z->exe, "__zygote", "--fd", "3", "--warm-fd", "4", "--log-level",
                    (char *)z->log_level, "--sandbox", z->sandbox ? "on" : "off",
                    "--title-room", room, NULL};
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    pid_t pid;
    int rc = proc_fork_exec(z->exe, argv, sv[1], wv[1], &pid, &eb);
    close(sv[1]);
    close(wv[1]);
    if (rc < 0) {
        close(sv[0]);
        close(wv[0]);
        LOG_WARN(MOD, "cannot start the zygote: %s; templates will be exec'd", eb.msg);
        z->retry_ns = rouse_now_ns() + ZYGOTE_RETRY_NS;
        return;
    }
    z->sock = sv[0];
    z->warm_sock = wv[0];
    z->pid = pid;
    fcntl(z->sock, F_SETFL, fcntl(z->sock, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &z->tag};
    epoll_ctl(z->epfd, EPOLL_CTL_ADD, z->sock, &ev);
    z->retry_ns = rouse_now_ns() + ZYGOTE_RETRY_NS;
    LOG_DEBUG(MOD, "zygote %d started", (int)pid);
}

void zygote_warm(zygote_proc *z, int argc, char *const argv[])
{
    if (z->warm_sock < 0) return;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (zygote_warm_request(z->warm_sock, argc, argv, &eb) < 0)
        LOG_DEBUG(MOD, "no warm-up asked: %s", eb.msg);
}

static void job_free(zygote_job *j)
{
    if (j->child_fd >= 0) close(j->child_fd);
    free(j->argv);
    free(j);
}

/* Stops using the zygote: it ends at end of stream, or now. Every queued
 * spawn is handed back, the one it was answering included. */
static void zygote_drop(zygote_proc *z, bool kill_it)
{
    if (z->sock >= 0) {
        epoll_ctl(z->epfd, EPOLL_CTL_DEL, z->sock, NULL);
        close(z->sock);
    }
    if (z->warm_sock >= 0) close(z->warm_sock);
    z->sock = z->warm_sock = -1;
    if (kill_it && z->pid > 0) kill(z->pid, SIGKILL);
    if (z->head) {
        z->tail->next = z->lost;
        z->lost = z->head;
    }
    z->head = z->tail = NULL;
    z->sent_ns = 0;
}

/* Sends the oldest spawn unless it is out already. */
static void send_next(zygote_proc *z, uint64_t now)
{
    zygote_job *j = z->head;
    if (!j || z->sent_ns || z->sock < 0) return;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (zygote_spawn_request(z->sock, j->argc, j->argv, j->child_fd, &eb) < 0) {
        LOG_WARN(MOD, "zygote %d: %s; templates will be exec'd until a new one starts",
                 (int)z->pid, eb.msg);
        zygote_drop(z, true);
        return;
    }
    close(j->child_fd); /* the zygote holds it now */
    j->child_fd = -1;
    z->sent_ns = now ? now : 1;
}

bool zygote_submit(zygote_proc *z, void *owner, int argc, char *const argv[], int child_fd,
                   uint64_t now)
{
    if (z->sock < 0) {
        if (!z->stopping && z->pid <= 0 && rouse_now_ns() >= z->retry_ns)
            zygote_start(z); /* for the next template: this one is exec'd */
        return false;
    }
    size_t size = (size_t)(argc + 1) * sizeof(char *);
    for (int i = 0; i < argc; i++)
        size += strlen(argv[i]) + 1;
    zygote_job *j = calloc(1, sizeof(*j));
    char **copy = malloc(size);
    if (!j || !copy) {
        free(j);
        free(copy);
        return false;
    }
    char *at = (char *)(copy + argc + 1);
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]) + 1;
        memcpy(at, argv[i], n);
        copy[i] = at;
        at += n;
    }
    copy[argc] = NULL;
    j->owner = owner;
    j->child_fd = child_fd;
    j->argc = argc;
    j->argv = copy;
    if (z->tail)
        z->tail->next = j;
    else
        z->head = j;
    z->tail = j;
    send_next(z, now);
    return true;
}

bool zygote_poll(zygote_proc *z, uint64_t now, zygote_outcome *out)
{
    /* Only the oldest spawn is out, and only to an open socket. */
    assert(!z->sent_ns || (z->head && z->sock >= 0));
    if (z->head && z->sent_ns) {
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        pid_t pid = 0;
        int rc = zygote_spawn_answer(z->sock, &pid, &eb);
        if (rc == 0) {
            zygote_job *j = z->head;
            z->head = j->next;
            if (!z->head) z->tail = NULL;
            z->sent_ns = 0;
            out->owner = j->owner;
            out->pid = pid;
            job_free(j);
            send_next(z, now);
            return true;
        }
        if (rc == ROUSE_EBUSY && now - z->sent_ns > ZYGOTE_ANSWER_NS) {
            LOG_WARN(MOD, "zygote %d did not answer a spawn in %llu ms: killed; templates "
                          "will be exec'd until a new one starts",
                     (int)z->pid, ZYGOTE_ANSWER_NS / 1000000ull);
            zygote_drop(z, true);
        } else if (rc != ROUSE_EBUSY) {
            LOG_WARN(MOD, "zygote %d: %s; templates will be exec'd until a new one starts",
                     (int)z->pid, eb.msg);
            zygote_drop(z, true);
        }
    }
    send_next(z, now);
    if (!z->lost) return false;
    zygote_job *j = z->lost;
    z->lost = j->next;
    out->owner = j->owner;
    out->pid = 0;
    job_free(j);
    return true;
}

int zygote_timeout_ms(const zygote_proc *z, uint64_t now)
{
    if (z->lost) return 0;
    if (!z->head || !z->sent_ns) return -1;
    uint64_t due = z->sent_ns + ZYGOTE_ANSWER_NS;
    return due <= now ? 0 : (int)((due - now) / 1000000ull) + 1;
}

bool zygote_reaped(zygote_proc *z, pid_t pid, int wstatus)
{
    if (pid <= 0 || pid != z->pid) return false;
    if (!z->stopping && z->sock >= 0)
        LOG_WARN(MOD, "zygote %d ended (%s %d); templates will be exec'd until a new one starts",
                 (int)pid, WIFSIGNALED(wstatus) ? "signal" : "status",
                 WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : WEXITSTATUS(wstatus));
    zygote_drop(z, false);
    z->pid = 0;
    if (!z->stopping && rouse_now_ns() >= z->retry_ns) zygote_start(z);
    return true;
}

void zygote_stop(zygote_proc *z)
{
    zygote_drop(z, false);
    while (z->lost) {
        zygote_job *j = z->lost;
        z->lost = j->next;
        job_free(j);
    }
    if (z->pid <= 0) return;
    /* It exits at end of stream; give it a moment, then insist. */
    for (int i = 0; i < 500; i++) {
        pid_t r = waitpid(z->pid, NULL, WNOHANG);
        if (r != 0) { /* reaped, or not ours to reap any more */
            z->pid = 0;
            return;
        }
        usleep(2000);
    }
    kill(z->pid, SIGKILL);
    waitpid(z->pid, NULL, 0);
    z->pid = 0;
}

void proc_kill_pid(pid_t pid)
{
    if (pid > 0) kill(pid, SIGKILL);
}

pid_t proc_reap_one(zygote_proc *z, int *wstatus)
{
    for (;;) {
        pid_t pid = waitpid(-1, wstatus, WNOHANG);
        if (pid < 0) return errno == EINTR ? 0 : -1;
        if (pid == 0) return 0;
        if (!zygote_reaped(z, pid, *wstatus)) return pid;
    }
}
