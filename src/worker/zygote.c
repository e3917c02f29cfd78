/*
 * The zygote (see zygote.h). Invariants: the zygote handles one spawn at a
 * time and reaps its intermediate child before reading the next, so it
 * never holds zombies; every well-formed spawn gets exactly one reply, from
 * the intermediate (the template's pid, or why its fork failed) or from the
 * zygote (why the intermediate could not be forked).
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
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proctitle.h"

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

/* In the template-to-be: waits to be adopted by serve, then puts its socket
 * at descriptor 3. False when serve is gone. */
static bool become_child(int ctl, int fd, pid_t serve, pid_t mid)
{
    close(ctl);
    /* The intermediate exits right after its reply; until it has, a parent
     * death signal would be tied to it. */
    while (getppid() == mid) {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
    if (getppid() != serve) return false;
    if (fd != 3) {
        if (dup2(fd, 3) < 0) return false;
        close(fd);
    }
    return true;
}

/* The intermediate: forks the child, replies with its pid, exits. In the
 * child: returns its exit status with *is_child set. */
static int fork_child(int ctl, int fd, pid_t serve, char **argv, int argc, zygote_child_fn child,
                      bool *is_child)
{
    pid_t mid = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        *is_child = true;
        if (!become_child(ctl, fd, serve, mid)) _exit(1);
        rouse_proc_title_set(argc, argv);
        return child(argc, argv);
    }
    send_reply(ctl, pid < 0 ? errno : 0, pid < 0 ? 0 : pid);
    _exit(0);
}

int zygote_main(int ctl, zygote_child_fn child)
{
    /* Serve may die without closing us: die with it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    pid_t serve = getppid();
    static char buf[sizeof(zy_req) + ZYGOTE_ARGS_MAX];
    LOG_DEBUG(MOD, "ready");
    for (;;) {
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } cm;
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm)};
        ssize_t n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0) return 0; /* serve closed the socket: we are done */
        if (n < 0) {
            LOG_ERROR(MOD, "reading a request: %s", strerror(errno));
            return 1;
        }
        int fd = -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                c->cmsg_len == CMSG_LEN(sizeof(int)))
                memcpy(&fd, CMSG_DATA(c), sizeof(int));
        zy_req req;
        char *argv[ZYGOTE_ARGC_MAX + 1];
        bool ok = (size_t)n >= sizeof(req) && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && fd >= 0;
        if (ok) {
            memcpy(&req, buf, sizeof(req));
            ok = req.magic == ZYGOTE_MAGIC && req.len == (size_t)n - sizeof(req) &&
                 split_args(buf + sizeof(req), req.len, req.argc, argv);
        }
        if (!ok) {
            LOG_WARN(MOD, "malformed spawn request (%zd bytes) ignored", n);
            if (fd >= 0) close(fd);
            send_reply(ctl, EINVAL, 0);
            continue;
        }
        pid_t mid = fork();
        if (mid == 0) {
            bool is_child = false;
            int status = fork_child(ctl, fd, serve, argv, (int)req.argc, child, &is_child);
            return status; /* only the child gets here */
        }
        close(fd);
        if (mid < 0) {
            send_reply(ctl, errno, 0);
            continue;
        }
        int ws;
        while (waitpid(mid, &ws, 0) < 0 && errno == EINTR)
            ;
    }
}

int zygote_spawn(int sock, int argc, char *const argv[], int child_fd, int timeout_ms, pid_t *pid,
                 rouse_errbuf *eb)
{
    static char buf[sizeof(zy_req) + ZYGOTE_ARGS_MAX];
    size_t len = 0;
    if (argc < 1 || argc > ZYGOTE_ARGC_MAX)
        return rouse_err_set(eb, ROUSE_EINVAL, "zygote: %d arguments", argc);
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]) + 1;
        if (len + l > ZYGOTE_ARGS_MAX)
            return rouse_err_set(eb, ROUSE_EINVAL, "zygote: arguments too long");
        memcpy(buf + sizeof(zy_req) + len, argv[i], l);
        len += l;
    }
    zy_req req = {.magic = ZYGOTE_MAGIC, .argc = (uint32_t)argc, .len = (uint32_t)len};
    memcpy(buf, &req, sizeof(req));
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } cm;
    memset(&cm, 0, sizeof(cm));
    struct iovec iov = {.iov_base = buf, .iov_len = sizeof(req) + len};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &child_fd, sizeof(int));
    ssize_t n;
    do
        n = sendmsg(sock, &mh, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0) return rouse_err_set(eb, ROUSE_EIO, "zygote: send: %s", strerror(errno));
    struct pollfd p = {.fd = sock, .events = POLLIN};
    int r;
    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r == 0) return rouse_err_set(eb, ROUSE_ETIMEOUT, "zygote: no answer in %d ms", timeout_ms);
    zy_reply rep;
    do
        n = recv(sock, &rep, sizeof(rep), MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n == 0) return rouse_err_set(eb, ROUSE_EIO, "zygote: gone");
    if (n != (ssize_t)sizeof(rep) || rep.magic != ZYGOTE_MAGIC)
        return rouse_err_set(eb, ROUSE_EIO, "zygote: bad answer (%zd bytes)", n);
    if (rep.err != 0) return rouse_err_set(eb, ROUSE_EIO, "zygote: fork: %s", strerror(rep.err));
    if (rep.pid <= 0) return rouse_err_set(eb, ROUSE_EIO, "zygote: bad pid %d", (int)rep.pid);
    *pid = rep.pid;
    return 0;
}
