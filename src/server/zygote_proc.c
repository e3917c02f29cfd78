/*
 * The processes serve starts itself: fork+exec of a rouse subcommand, and
 * the zygote (worker/zygote.h) that forks templates so that a start from
 * zero does not pay an exec. Losing the zygote costs only speed: templates
 * are exec'd until a new one is up. Serve starts a new one as soon as it
 * reaps the last, or, when that one lived less than a second, when a
 * template is next needed a second after its start: at most one a second.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "server/server_int.h"
#include "worker/zygote.h"

#define MOD "zygote"
#define ZYGOTE_ANSWER_MS 1000
#define ZYGOTE_RETRY_NS 1000000000ull

int server_fork_exec(server *s, char *const argv[], int child_fd, int extra_fd, pid_t *pid,
                     rouse_errbuf *eb)
{
    pid_t parent = getpid();
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
        execv(s->exe, argv);
        _exit(127);
    }
    *pid = p;
    return 0;
}

void zygote_start(server *s)
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
    char *argv[] = {s->exe,        "__zygote",   "--fd",         "3",  "--warm-fd", "4",
                    "--log-level", s->log_level, "--title-room", room, NULL};
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    pid_t pid;
    int rc = server_fork_exec(s, argv, sv[1], wv[1], &pid, &eb);
    close(sv[1]);
    close(wv[1]);
    if (rc < 0) {
        close(sv[0]);
        close(wv[0]);
        LOG_WARN(MOD, "cannot start the zygote: %s; templates will be exec'd", eb.msg);
        s->zygote_retry_ns = rouse_now_ns() + ZYGOTE_RETRY_NS;
        return;
    }
    s->zygote_sock = sv[0];
    s->zygote_warm_sock = wv[0];
    s->zygote_pid = pid;
    s->zygote_retry_ns = rouse_now_ns() + ZYGOTE_RETRY_NS;
    LOG_DEBUG(MOD, "zygote %d started", (int)pid);
}

void zygote_warm(server *s, int argc, char *const argv[])
{
    if (s->zygote_warm_sock < 0) return;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (zygote_warm_request(s->zygote_warm_sock, argc, argv, &eb) < 0)
        LOG_DEBUG(MOD, "no warm-up asked: %s", eb.msg);
}

/* Stops using the zygote: it ends at end of stream, or now. */
static void zygote_drop(server *s, bool kill_it)
{
    if (s->zygote_sock >= 0) close(s->zygote_sock);
    if (s->zygote_warm_sock >= 0) close(s->zygote_warm_sock);
    s->zygote_sock = s->zygote_warm_sock = -1;
    if (kill_it && s->zygote_pid > 0) kill(s->zygote_pid, SIGKILL);
}

int zygote_fork_template(server *s, int argc, char *const argv[], int child_fd, pid_t *pid)
{
    if (s->zygote_sock < 0) {
        if (!s->stopping && s->zygote_pid <= 0 && rouse_now_ns() >= s->zygote_retry_ns)
            zygote_start(s); /* for the next template: this one is exec'd */
        return ROUSE_ESTATE;
    }
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int rc = zygote_spawn(s->zygote_sock, argc, argv, child_fd, ZYGOTE_ANSWER_MS, pid, &eb);
    if (rc < 0) {
        LOG_WARN(MOD, "zygote %d: %s; templates will be exec'd until a new one starts",
                 (int)s->zygote_pid, eb.msg);
        zygote_drop(s, true);
    }
    return rc;
}

bool zygote_reaped(server *s, pid_t pid, int wstatus)
{
    if (pid <= 0 || pid != s->zygote_pid) return false;
    if (!s->stopping && s->zygote_sock >= 0)
        LOG_WARN(MOD, "zygote %d ended (%s %d); templates will be exec'd until a new one starts",
                 (int)pid, WIFSIGNALED(wstatus) ? "signal" : "status",
                 WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : WEXITSTATUS(wstatus));
    zygote_drop(s, false);
    s->zygote_pid = 0;
    if (!s->stopping && rouse_now_ns() >= s->zygote_retry_ns) zygote_start(s);
    return true;
}

void zygote_stop(server *s)
{
    if (s->zygote_pid <= 0) return;
    zygote_drop(s, false);
    /* It exits at end of stream; give it a moment, then insist. */
    for (int i = 0; i < 500; i++) {
        pid_t r = waitpid(s->zygote_pid, NULL, WNOHANG);
        if (r != 0) { /* reaped, or not ours to reap any more */
            s->zygote_pid = 0;
            return;
        }
        usleep(2000);
    }
    kill(s->zygote_pid, SIGKILL);
    waitpid(s->zygote_pid, NULL, 0);
    s->zygote_pid = 0;
}
