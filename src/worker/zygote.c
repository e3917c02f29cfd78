/*
 * The zygote (see zygote.h). Forking a child takes two forks (the second
 * from an intermediate that exits, so that serve adopts the child) and a
 * wait for the adoption: about 1 ms on the machines measured, most of it
 * waking processes on other CPUs. So the zygote keeps one spare child made
 * ahead of need, already adopted, that reads serve's next request itself,
 * answers it and becomes the child; it tells the zygote what it started on
 * a channel of its own, and the zygote makes the next spare. Without a
 * spare (its fork failed) the zygote reads the request and forks the child
 * directly.
 *
 * After each start, and for each model serve names on the warm-up socket
 * (a deploy, a route change, serve's start), the zygote may warm that model
 * (zygote_warm_fn): it prepares the model's kernels in its own process,
 * where oneDNN's primitive cache keeps the generated code, and then
 * replaces its spare, so that the next template of that model, forked with
 * the cache, prepares from it. The spare it had keeps serving meanwhile:
 * serve waits for a warm-up only when that spare has been used up during
 * it, and then for that one warm-up at most.
 *
 * Invariants: only one process reads serve's requests at a time (the
 * spare, or the zygote when it has none); the zygote learns of every start
 * a spare makes (a spare being replaced either exits or reports the start
 * it made first), and handles its spare's reports before warm-ups; every
 * well-formed request gets exactly one reply (the child's pid, or why a
 * fork failed); the zygote reaps each intermediate at once, so it never
 * holds zombies.
 */
#include "worker/zygote.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proctitle.h"
#include "worker/detach.h"
#include "worker/ipc.h"

#define MOD "zygote"
#define ZYGOTE_MAGIC 0x7273757au /* "rsuz" */
#define ZYGOTE_ARGS_MAX 16384
#define ZYGOTE_ARGC_MAX 64

typedef struct zy_req {
    uint32_t magic;
    uint32_t argc;
    uint32_t len; /* bytes of NUL-terminated arguments after the header */
    uint32_t reserved;
} zy_req;

typedef struct zy_reply {
    uint32_t magic;
    int32_t err; /* 0, or the errno of the failed fork */
    int32_t pid;
    uint32_t reserved;
} zy_reply;

/* A request as read: the packet, its arguments split, the passed socket. */
typedef struct zy_packet {
    char buf[sizeof(zy_req) + ZYGOTE_ARGS_MAX];
    size_t len;
    int argc;
    char *argv[ZYGOTE_ARGC_MAX + 1];
    int fd;
} zy_packet;

/* The zygote's state: serve's pid and its control socket, what a child
 * runs, what warms a model, and the spare's channel (-1: none). */
typedef struct zygote {
    int ctl;
    int warm_in; /* serve's warm-up requests, or -1 */
    pid_t serve;
    zygote_child_fn child;
    zygote_warm_fn warm;
    int spare_chan;
} zygote;

static void send_reply(int ctl, int err, pid_t pid)
{
    zy_reply r = {.magic = ZYGOTE_MAGIC, .err = err, .pid = (int32_t)pid};
    /* Nothing to do on failure: serve reads end of stream or times out. */
    ssize_t n = send(ctl, &r, sizeof(r), MSG_NOSIGNAL);
    (void)n;
}

/* Splits the arguments of a request into argv; false when malformed. */
static bool split_args(char *args, uint32_t len, uint32_t argc, char **argv)
{
    if (argc == 0 || argc > ZYGOTE_ARGC_MAX || len == 0 || args[len - 1] != '\0') return false;
    uint32_t k = 0;
    for (uint32_t i = 0; i < len; k++) {
        if (k == argc) return false;
        argv[k] = args + i;
        i += (uint32_t)strlen(args + i) + 1;
    }
    argv[k] = NULL;
    return k == argc;
}

#define READ_AGAIN (-3)

/* Reads one request from sock (recvmsg flags; want_fd: a socket must come
 * with it). 1: a well-formed one in *p; 0: end of stream; -1: a read error
 * (errno); -2: a malformed packet (dropped, its descriptor closed);
 * READ_AGAIN: nothing there (MSG_DONTWAIT). */
static int read_request(int sock, zy_packet *p, int flags, bool want_fd)
{
    ssize_t n = ipc_recv_packet(sock, p->buf, sizeof(p->buf), &p->fd, flags);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return READ_AGAIN;
    if (n < 0 && errno != EMSGSIZE) return -1;
    if (n == 0 && p->fd < 0) return 0;
    zy_req req;
    bool ok = n >= (ssize_t)sizeof(req) && (p->fd >= 0) == want_fd;
    if (ok) {
        memcpy(&req, p->buf, sizeof(req));
        ok = req.magic == ZYGOTE_MAGIC && req.len == (size_t)n - sizeof(req) &&
             split_args(p->buf + sizeof(req), req.len, req.argc, p->argv);
    }
    if (!ok) {
        LOG_WARN(MOD, "malformed spawn request (%zd bytes) ignored", n);
        if (p->fd >= 0) close(p->fd);
        return -2;
    }
    p->len = (size_t)n;
    p->argc = (int)req.argc;
    return 1;
}

/* In a grandchild of the zygote: waits to be adopted by serve. False when
 * serve is gone. */
static bool wait_adopted(pid_t serve, pid_t mid)
{
    return worker_wait_adopted(mid) == serve;
}

/* In the new child: puts its socket at descriptor 3, takes its title and
 * runs. Returns the child's exit status. */
static int become_child(const zygote *z, zy_packet *p)
{
    if (p->fd != 3) {
        if (dup2(p->fd, 3) < 0) _exit(1);
        close(p->fd);
    }
    rouse_proc_title_set(p->argc, p->argv);
    return z->child(p->argc, p->argv);
}

/* The spare: adopted ahead of need, takes the next request from serve.
 * Returns the child's exit status; exits when the zygote ends or closes
 * the channel (it is being replaced), or when serve ends. */
static int spare_main(const zygote *z, int chan, pid_t mid)
{
    if (z->warm_in >= 0) close(z->warm_in);
    if (!wait_adopted(z->serve, mid)) _exit(1);
    char *title[] = {"__zygote-spare", NULL};
    rouse_proc_title_set(1, title);
    static zy_packet p;
    for (;;) {
        struct pollfd pf[2] = {{.fd = chan, .events = POLLIN}, {.fd = z->ctl, .events = POLLIN}};
        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR) continue;
            _exit(1);
        }
        if (pf[0].revents) _exit(0); /* the zygote ended, or replaces us */
        if (!pf[1].revents) continue;
        int rc = read_request(z->ctl, &p, MSG_DONTWAIT, true);
        if (rc == READ_AGAIN) continue;
        if (rc == 0 || rc == -1) _exit(rc == 0 ? 0 : 1);
        if (rc == -2) {
            send_reply(z->ctl, EINVAL, 0);
            continue;
        }
        send_reply(z->ctl, 0, getpid());
        /* What started, for the zygote to warm (no socket with it). */
        if (ipc_send_packet(chan, p.buf, p.len, -1) < 0)
            LOG_DEBUG(MOD, "spare: cannot tell the zygote: %s", strerror(errno));
        close(chan);
        close(z->ctl);
        return become_child(z, &p);
    }
}

/* The intermediate of a direct fork: forks the child, replies with its pid,
 * exits. In the child: returns its exit status with *is_child set. */
static int fork_child(const zygote *z, zy_packet *p, bool *is_child)
{
    pid_t mid = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        *is_child = true;
        close(z->ctl);
        if (z->warm_in >= 0) close(z->warm_in);
        if (!wait_adopted(z->serve, mid)) _exit(1);
        return become_child(z, p);
    }
    send_reply(z->ctl, pid < 0 ? errno : 0, pid < 0 ? 0 : pid);
    _exit(0);
}

/* Forks a new spare through an intermediate. In the zygote: sets
 * z->spare_chan (or leaves it -1), returns 0. In the spare: returns its
 * exit status with *is_child set. */
static int spare_start(zygote *z, bool *is_child)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return 0;
    pid_t mid;
    int r = worker_fork_detached(&mid);
    if (r == 0) {
        *is_child = true;
        close(sv[0]);
        return spare_main(z, sv[1], mid);
    }
    close(sv[1]);
    if (r < 0) {
        close(sv[0]);
        return 0;
    }
    z->spare_chan = sv[0];
    return 0;
}

/* Ends the spare, which exits at the end of its channel unless it took a
 * request first: then that start's arguments land in *p. True when it did. */
static bool spare_stop(zygote *z, zy_packet *p)
{
    shutdown(z->spare_chan, SHUT_WR);
    int rc = read_request(z->spare_chan, p, 0, false); /* its start, or its end */
    close(z->spare_chan);
    z->spare_chan = -1;
    return rc == 1;
}

/* Warms the model that *p started and, when that made new kernels,
 * replaces the spare by one forked with them; a start the old spare made
 * meanwhile is warmed the same way. In a new spare: returns its exit status
 * with *is_child set. */
static int after_start(zygote *z, zy_packet *p, bool *is_child)
{
    while (z->warm && z->warm(p->argc, p->argv) > 0) {
        bool took = z->spare_chan >= 0 && spare_stop(z, p);
        int status = spare_start(z, is_child);
        if (*is_child || !took) return status;
    }
    return 0;
}

int zygote_main(int ctl, int warm_in, zygote_child_fn child, zygote_warm_fn warm)
{
    /* Serve may die without closing us: die with it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    zygote z = {.ctl = ctl,
                .warm_in = warm_in,
                .serve = getppid(),
                .child = child,
                .warm = warm,
                .spare_chan = -1};
    static zy_packet p;
    bool is_child = false;
    int status;
    LOG_DEBUG(MOD, "ready");
    for (;;) {
        if (z.spare_chan < 0) {
            status = spare_start(&z, &is_child);
            if (is_child) return status;
        }
        bool spare = z.spare_chan >= 0;
        /* With a spare, serve's requests are its to read: only the end of
         * serve's socket (always reported) matters here. */
        struct pollfd pf[3] = {{.fd = ctl, .events = spare ? 0 : POLLIN},
                               {.fd = z.warm_in, .events = POLLIN},
                               {.fd = z.spare_chan, .events = POLLIN}};
        if (poll(pf, spare ? 3 : 2, -1) < 0) {
            if (errno == EINTR) continue;
            LOG_ERROR(MOD, "poll: %s", strerror(errno));
            return 1;
        }
        if (spare && pf[2].revents) {
            /* The spare started a child (what, follows) or died. */
            int rc = read_request(z.spare_chan, &p, MSG_DONTWAIT, false);
            close(z.spare_chan);
            z.spare_chan = -1;
            status = spare_start(&z, &is_child);
            if (is_child) return status;
            if (rc == 1) {
                status = after_start(&z, &p, &is_child);
                if (is_child) return status;
            }
            continue;
        }
        if (pf[1].revents) {
            /* A model to warm before its first start (a deploy). */
            int rc = read_request(z.warm_in, &p, MSG_DONTWAIT, false);
            if (rc == 0 || rc == -1) { /* serve stopped sending them: go on without */
                close(z.warm_in);
                z.warm_in = -1;
            } else if (rc == 1) {
                status = after_start(&z, &p, &is_child);
                if (is_child) return status;
            }
            continue;
        }
        if (spare) {
            if (pf[0].revents & (POLLHUP | POLLERR)) return 0; /* serve is gone */
            continue;
        }
        if (!pf[0].revents) continue;
        int rc = read_request(ctl, &p, MSG_DONTWAIT, true);
        if (rc == READ_AGAIN) continue;
        if (rc == 0) return 0; /* serve closed the socket: we are done */
        if (rc == -1) {
            LOG_ERROR(MOD, "reading a request: %s", strerror(errno));
            return 1;
        }
        if (rc == -2) {
            send_reply(ctl, EINVAL, 0);
            continue;
        }
        pid_t mid = fork();
        if (mid == 0) return fork_child(&z, &p, &is_child); /* only the child returns */
        if (mid < 0) send_reply(ctl, errno, 0);
        int ws;
        while (mid > 0 && waitpid(mid, &ws, 0) < 0 && errno == EINTR)
            ;
        close(p.fd);
        if (mid > 0) {
            status = after_start(&z, &p, &is_child);
            if (is_child) return status;
        }
    }
}

/* Lays out a request for argv in buf (sizeof(zy_req) + ZYGOTE_ARGS_MAX
 * bytes); *len its size. */
static int pack_request(char *buf, size_t *len, int argc, char *const argv[], rouse_errbuf *eb)
{
    size_t at = 0;
    if (argc < 1 || argc > ZYGOTE_ARGC_MAX)
        return rouse_err_set(eb, ROUSE_EINVAL, "zygote: %d arguments", argc);
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]) + 1;
        if (at + l > ZYGOTE_ARGS_MAX)
            return rouse_err_set(eb, ROUSE_EINVAL, "zygote: arguments too long");
        memcpy(buf + sizeof(zy_req) + at, argv[i], l);
        at += l;
    }
    zy_req req = {.magic = ZYGOTE_MAGIC, .argc = (uint32_t)argc, .len = (uint32_t)at};
    memcpy(buf, &req, sizeof(req));
    *len = sizeof(req) + at;
    return 0;
}

int zygote_spawn_request(int sock, int argc, char *const argv[], int child_fd, rouse_errbuf *eb)
{
    static char buf[sizeof(zy_req) + ZYGOTE_ARGS_MAX];
    size_t len = 0;
    int rc = pack_request(buf, &len, argc, argv, eb);
    if (rc < 0) return rc;
    if (ipc_send_packet(sock, buf, len, child_fd) < 0)
        return rouse_err_set(eb, ROUSE_EIO, "zygote: send: %s", strerror(errno));
    return 0;
}

int zygote_spawn_answer(int sock, pid_t *pid, rouse_errbuf *eb)
{
    zy_reply rep;
    ssize_t n;
    do
        n = recv(sock, &rep, sizeof(rep), MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return ROUSE_EBUSY;
    if (n < 0) return rouse_err_set(eb, ROUSE_EIO, "zygote: recv: %s", strerror(errno));
    if (n == 0) return rouse_err_set(eb, ROUSE_EIO, "zygote: gone");
    if (n != (ssize_t)sizeof(rep) || rep.magic != ZYGOTE_MAGIC)
        return rouse_err_set(eb, ROUSE_EIO, "zygote: bad answer (%zd bytes)", n);
    if (rep.err != 0) return rouse_err_set(eb, ROUSE_EIO, "zygote: fork: %s", strerror(rep.err));
    if (rep.pid <= 0) return rouse_err_set(eb, ROUSE_EIO, "zygote: bad pid %d", (int)rep.pid);
    *pid = rep.pid;
    return 0;
}

int zygote_spawn(int sock, int argc, char *const argv[], int child_fd, int timeout_ms, pid_t *pid,
                 rouse_errbuf *eb)
{
    int rc = zygote_spawn_request(sock, argc, argv, child_fd, eb);
    if (rc < 0) return rc;
    struct pollfd pf = {.fd = sock, .events = POLLIN};
    int r;
    do
        r = poll(&pf, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r == 0) return rouse_err_set(eb, ROUSE_ETIMEOUT, "zygote: no answer in %d ms", timeout_ms);
    rc = zygote_spawn_answer(sock, pid, eb);
    if (rc == ROUSE_EBUSY) return rouse_err_set(eb, ROUSE_EIO, "zygote: no answer");
    return rc;
}

int zygote_warm_request(int sock, int argc, char *const argv[], rouse_errbuf *eb)
{
    static char buf[sizeof(zy_req) + ZYGOTE_ARGS_MAX];
    size_t len = 0;
    int rc = pack_request(buf, &len, argc, argv, eb);
    if (rc < 0) return rc;
    ssize_t n;
    do
        n = send(sock, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0) return rouse_err_set(eb, ROUSE_EIO, "zygote: send: %s", strerror(errno));
    return 0;
}
