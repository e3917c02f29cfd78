/*
 * The server's life and its epoll loop. One thread owns everything: MHD's
 * epoll descriptor, a signalfd (SIGTERM/SIGINT: shut down; SIGCHLD: reap
 * instances; SIGHUP: reopen the access log, reload the TLS certificate), the
 * listening socket and the connections at the gate, the
 * eventfds of the two writer threads, the storage collection's timerfd and
 * one socket per process of the pool are all watched here, as are the
 * sockets of clients waiting for an instance (to notice when they hang up),
 * and each wait is bounded by the nearest deadline (MHD timeouts, the gate's
 * head timeouts, request deadlines, idle instances, the shutdown grace
 * period). The loop measures itself: the longest iteration, and the longest
 * one in which it slept (GET /v1/stats).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rouse/weight_pages.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "server/fnlog.h"
#include "server/http.h"
#include "server/pool.h"
#include "server/server_int.h"
#include "server/conn_table.h"
#include "server/tls.h"
#include "server/cluster_key.h"
#include <nats/nats.h>
#include <ftw.h>

#define MOD "serve"

double server_random(server *s)
{
    /* xorshift64*: plenty for spreading requests over weighted routes. */
    uint64_t x = s->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static int make_listen_socket(const char *bind_addr, int port, int *out_fd, int *out_port,
                              rouse_errbuf *eb)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1)
        return rouse_err_set(eb, ROUSE_EINVAL, "--bind: not an IPv4 address: %s", bind_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return rouse_err_set(eb, ROUSE_EIO, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        close(fd);
        return rouse_err_set(eb, ROUSE_EIO, "cannot listen on %s:%d: %s", bind_addr, port,
                             strerror(e));
    }
    socklen_t len = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *out_fd = fd;
    *out_port = ntohs(sa.sin_port);
    return 0;
}

/* One daemon per data directory: the registry cache, upload temporaries and
 * plan files assume that nothing else writes there. The lock is an flock on
 * data_dir/serve.lock, released by the kernel however the daemon ends (a
 * SIGKILLed daemon does not block its restart); the file holds the owner's
 * pid for the message. Instances and templates never inherit it (CLOEXEC). */
static int lock_data_dir(server *s, rouse_errbuf *eb)
{
    char path[sizeof(s->data_dir) + 16];
    snprintf(path, sizeof(path), "%s/serve.lock", s->data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return rouse_err_set(eb, ROUSE_EIO, "cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char owner[32] = "";
        ssize_t n = pread(fd, owner, sizeof(owner) - 1, 0);
        owner[n > 0 ? n : 0] = '\0';
        owner[strcspn(owner, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return rouse_err_set(eb, ROUSE_ESTATE,
                                 "data directory %s is in use by another rouse serve%s%s%s",
                                 s->data_dir, owner[0] ? " (pid " : "", owner, owner[0] ? ")" : "");
        return rouse_err_set(eb, ROUSE_EIO, "cannot lock %s: %s", path, strerror(e));
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        LOG_WARN(MOD, "cannot write the pid into %s: %s", path, strerror(errno));
    s->lock_fd = fd;
    return 0;
}

/* The data directory is serve's alone: it holds every tenant's models,
 * plans and the registry. New files and directories get no group or other
 * bits (serve's umask, inherited by its children), and what an older serve
 * left readable is tightened here, at start: directories 0700, files
 * without group and other bits (blobs 0400, the rest 0600). Links are not
 * followed. */
static int tighten_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    mode_t want = type == FTW_D || type == FTW_DP ? 0700 : st->st_mode & 0700;
    if (type == FTW_SL || type == FTW_SLN) return 0;
    if ((st->st_mode & 07777) != want && chmod(path, want) < 0)
        LOG_WARN(MOD, "cannot make %s private (mode %04o): %s", path, (unsigned)want,
                 strerror(errno));
    return 0;
}

static void tighten_data_dir(const char *dir)
{
    if (nftw(dir, tighten_one, 32, FTW_PHYS) < 0)
        LOG_WARN(MOD, "cannot walk %s to make it private: %s", dir, strerror(errno));
}

/* Raises the descriptor limit as far as the hard limit allows and derives
 * the connection limits from it: connections take at most what leaves
 * room for the registry, the instances' sockets and shared regions and the
 * templates' pipes (1024 descriptors, or half of a small limit). */
static void set_conn_limits(server *s, const server_opts *o)
{
    struct rlimit rl;
    rlim_t before = 0;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        before = rl.rlim_cur;
        if (rl.rlim_cur < rl.rlim_max) {
            rlim_t cur = rl.rlim_cur;
            rl.rlim_cur = rl.rlim_max;
            if (setrlimit(RLIMIT_NOFILE, &rl) < 0) rl.rlim_cur = cur;
        }
    } else {
        rl.rlim_cur = 1024;
    }
    long fds = rl.rlim_cur > (rlim_t)(1 << 24) ? 1 << 24 : (long)rl.rlim_cur;
    long room = fds >= 4096 ? fds - 1024 : fds / 2;
    if (room > 1 << 20) room = 1 << 20;
    s->max_conns = o->max_connections > 0 ? o->max_connections : (int)room;
    if (o->max_connections > room)
        LOG_WARN(MOD, "--max-connections %d leaves fewer than 1024 of %ld descriptors for the rest",
                 o->max_connections, fds);
    s->max_per_client = o->max_conns_per_client < 0    ? 0
                        : o->max_conns_per_client == 0 ? ROUSE_MAX_CONNS_PER_CLIENT_DEFAULT
                                                       : (unsigned)o->max_conns_per_client;
    s->idle_timeout_ns = (uint64_t)(o->idle_timeout_ms > 0 ? o->idle_timeout_ms
                                                          : ROUSE_IDLE_TIMEOUT_MS_DEFAULT) *
                         1000000ull;
    char per[32] = "no limit";
    if (s->max_per_client) snprintf(per, sizeof(per), "%u", s->max_per_client);
    LOG_INFO(MOD,
             "descriptors: %ld (%s %llu); connections: at most %d, per client %s, idle ones "
             "closed after %llu s",
             fds, (rlim_t)fds > before ? "raised from" : "limit", (unsigned long long)before,
             s->max_conns, per, (unsigned long long)(s->idle_timeout_ns / 1000000000ull));
}

static int ep_add(int epfd, int fd, ep_tag *tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* The pool's hooks: what functions' processes say goes to their logs. */
static void on_fn_output(void *user, const char *name, int64_t version, int pid, int fd)
{
    server *s = user;
    if (fnlog_add_pipe(s->logs, name, version, pid, fd) < 0)
        LOG_WARN(MOD, "function %s: cannot watch the output of template %d", name, pid);
}

static void on_fn_ended(void *user, const char *name, int64_t version, int pid, const char *what)
{
    server *s = user;
    fnlog_append(s->logs, name, version, pid, "crash", what, strlen(what));
}

int server_create(const server_opts *o, server **out, rouse_errbuf *eb)
{
    server *s = calloc(1, sizeof(*s));
    if (!s) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    s->opts = *o;
    s->listen_fd = s->epfd = s->sigfd = s->lock_fd = s->gc_timer_fd = -1;
    s->metrics_fd = -1;
    auth_table_init(&s->keys);
    s->keep_epfd = -1;
    s->tag_mhd.kind = EP_MHD;
    s->tag_sig.kind = EP_SIGNAL;
    s->rng = rouse_now_ns() | 1;
    s->req_id_base = (uint32_t)(server_random(s) * 4294967296.0);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    s->max_instances = cores > 0 ? (int)(2 * cores) : 4;
    if (s->max_instances < 4) s->max_instances = 4;
    if (o->max_instances > 0) s->max_instances = o->max_instances;
    snprintf(s->plan_dir, sizeof(s->plan_dir), "%s/plans", o->data_dir);
    snprintf(s->exe, sizeof(s->exe), "%s", o->exe_path);
    LOG_DEBUG(MOD, "model processes run %s", s->exe);
    snprintf(s->data_dir, sizeof(s->data_dir), "%s", o->data_dir);
    snprintf(s->log_level, sizeof(s->log_level), "%s", rouse_log_level_name(o->log_level));
    s->opts.exe_path = s->exe;
    s->opts.data_dir = s->data_dir;

    int rc;
    /* Without access control anyone who reaches the port owns every
     * function: only this machine may. */
    struct in_addr bind_in;
    if (!o->auth && (inet_pton(AF_INET, o->bind, &bind_in) != 1 ||
                     (ntohl(bind_in.s_addr) >> 24) != 127)) {
        rc = rouse_err_set(eb, ROUSE_EINVAL,
                           "refusing to listen on %s without access control: anyone who can "
                           "reach it could deploy, delete and call every function; use --auth "
                           "(API keys, docs/security.md) or bind a loopback address (127.0.0.1)",
                           o->bind);
        goto out_free;
    }
    umask(077); /* see tighten_data_dir */
    set_conn_limits(s, o);
    if (mkdir(o->data_dir, 0700) < 0 && errno != EEXIST) {
        rc = rouse_err_set(eb, ROUSE_EIO, "cannot create data directory %s: %s", o->data_dir,
                           strerror(errno));
        goto out_free;
    }
    if ((rc = lock_data_dir(s, eb)) < 0) goto out_free;
    tighten_data_dir(s->data_dir);
    if (mkdir(s->plan_dir, 0700) < 0 && errno != EEXIST) {
        rc = rouse_err_set(eb, ROUSE_EIO, "cannot create plan directory %s: %s", s->plan_dir,
                           strerror(errno));
        goto out_free;
    }
    if ((rc = gc_clean_temporaries(s->plan_dir, eb)) < 0) goto out_free;
    /* Instances are forked by templates (twice over) and so reparented to
     * us: we reap them and learn how they ended. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "prctl(PR_SET_CHILD_SUBREAPER): %s", strerror(errno));
        goto out_free;
    }
    /* The isolation tier: chosen once, for every template. Its probe
     * forks a child that starts a thread: that is safe only while serve
     * has a single thread, before the registry sync and every other
     * thread starts (a lock another thread held at the fork stays held in
     * the child; AddressSanitizer's thread registry is one). */
    if ((rc = isolation_choose(&s->iso, o->isolation, eb)) < 0) goto out_free;
    if ((rc = store_open(o->data_dir, &s->st, eb)) < 0) goto out_iso;
    if ((rc = shared_state_start(s, eb)) < 0) goto out_store;
    if ((rc = blob_open(o->data_dir, &s->blobs, eb)) < 0) goto out_store;
    if ((rc = auth_start(s, eb)) < 0) goto out_blobs;

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    s->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->sigfd < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "signalfd: %s", strerror(errno));
        goto out_blobs;
    }
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "epoll_create1: %s", strerror(errno));
        goto out_sigfd;
    }
    if (!(s->clients = conn_table_create())) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out_epoll;
    }
    if (o->tls_cert && (rc = tls_create(o->tls_cert, o->tls_key, &s->tls, eb)) < 0)
        goto out_clients;
    if (s->tls) LOG_INFO(MOD, "TLS: %s", tls_describe(s->tls));
    if (o->cluster_key_file &&
        (rc = cluster_key_load(o->cluster_key_file, &s->cluster_key, eb)) < 0)
        goto out_tls;
    if ((rc = make_listen_socket(o->bind, o->port, &s->listen_fd, &s->port, eb)) < 0)
        goto out_tls;
    if (o->metrics_bind) {
        char addr[64];
        const char *colon = strrchr(o->metrics_bind, ':');
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || (size_t)(colon - o->metrics_bind) >= sizeof(addr) || !end || *end ||
            colon[1] == '\0' || port < 0 || port > 65535) {
            rc = rouse_err_set(eb, ROUSE_EINVAL, "--metrics-bind: expected ADDR:PORT, got %s",
                               o->metrics_bind);
            goto out_listen;
        }
        snprintf(addr, sizeof(addr), "%.*s", (int)(colon - o->metrics_bind), o->metrics_bind);
        if ((rc = make_listen_socket(addr, (int)port, &s->metrics_fd, &s->metrics_port, eb)) < 0)
            goto out_listen;
        struct in_addr ma;
        inet_pton(AF_INET, addr, &ma);
        s->metrics_addr = ma.s_addr;
    }
    int mhd_ep = http_start(s, eb);
    if (mhd_ep < 0) {
        rc = mhd_ep;
        goto out_listen;
    }
    s->tag_listen.kind = EP_LISTEN;
    s->tag_metrics.kind = EP_LISTEN;
    if (ep_add(s->epfd, mhd_ep, &s->tag_mhd) < 0 || ep_add(s->epfd, s->sigfd, &s->tag_sig) < 0 ||
        ep_add(s->epfd, s->listen_fd, &s->tag_listen) < 0 ||
        (s->metrics_fd >= 0 && ep_add(s->epfd, s->metrics_fd, &s->tag_metrics) < 0)) {
        rc = rouse_err_set(eb, ROUSE_EIO, "epoll_ctl: %s", strerror(errno));
        goto out_http;
    }
    /* Weights in huge pages: chosen once, for every template. */
    rouse_weight_pages wp;
    if ((rc = rouse_weight_pages_choose(o->weight_pages ? o->weight_pages : "auto", &wp, eb)) < 0)
        goto out_http;
    s->weight_pages = (int)wp;
    /* Text generators read every weight for each token: with auto and
     * no reserved huge pages, theirs are copied into transparent huge
     * pages (a private copy in the zygote, made at deploy), whose first
     * pass costs a new instance 7-11 ms of CPU against 95-115 over the
     * file mapping (GPT-2 small, measured on this project's machines). */
    rouse_weight_pages gen_wp = wp;
    bool is_auto = !o->weight_pages || strcmp(o->weight_pages, "auto") == 0;
    rouse_errbuf thp_eb;
    if (is_auto && wp == ROUSE_WEIGHT_PAGES_4K &&
        rouse_weight_pages_choose("thp", &gen_wp, &thp_eb) < 0)
        gen_wp = wp;
    LOG_INFO(MOD, "weights in %s pages, text generators' in %s (--weight-pages %s)",
             rouse_weight_pages_name(wp), rouse_weight_pages_name(gen_wp),
             o->weight_pages ? o->weight_pages : "auto");
    if ((rc = durable_start(s, eb)) < 0) goto out_http;
    if ((rc = blob_fetch_start(s, eb)) < 0) goto out_fetch;
    if ((rc = shared_state_watch(s, eb)) < 0) goto out_fetch;
    if ((rc = gc_start(s, eb)) < 0) goto out_fetch;
    if ((rc = observe_start(s, eb)) < 0) goto out_gc;
    if ((rc = usage_start(s, eb)) < 0) goto out_observe;
    if ((rc = fnlog_create(s->epfd, &s->logs, eb)) < 0) goto out_usage;
    /* Templates are forked by the pool's zygote from now on (exec'd
     * without it). */
    pool_opts po = {.epfd = s->epfd,
                    .exe = s->exe,
                    .plan_dir = s->plan_dir,
                    .log_level = s->log_level,
                    .max_instances = s->max_instances,
                    .weight_pages = s->weight_pages,
                    .gen_weight_pages = (int)gen_wp,
                    .iso = &s->iso,
                    .st = s->st,
                    .blobs = s->blobs,
                    .remote = s->remote,
                    .keepalive_minute_ms = o->keepalive_minute_ms,
                    .output = on_fn_output,
                    .ended = on_fn_ended,
                    .hooks_user = s};
    if ((rc = pool_create(&po, &s->pool, eb)) < 0) goto out_logs;
    if ((rc = async_start(s, eb)) < 0) {
        pool_destroy(s->pool);
        goto out_logs;
    }
    /* This node's name, and with --bus the bus, membership and forwarding:
     * after the isolation probe and the zygote are forked, since libnats
     * and libcurl start threads that may hold locks (the allocator's) a
     * child forked then would wait for forever. */
    if ((rc = cluster_start(s, eb)) < 0) {
        pool_destroy(s->pool);
        async_stop(s);
        goto out_logs;
    }
    /* Warm what `min` asks for, as before a restart. A failure here is
     * logged per function and never stops the daemon. */
    rouse_errbuf restore_eb;
    rouse_errbuf_clear(&restore_eb);
    if (pool_restore(s->pool, &restore_eb) < 0)
        LOG_ERROR(MOD, "restoring warm instances: %s", restore_eb.msg);
    *out = s;
    return 0;

out_logs:
    fnlog_destroy(s->logs);
out_usage:
    usage_stop(s);
out_observe:
    observe_stop(s);
out_gc:
    gc_stop(s);
out_fetch:
    blob_fetch_stop(s);
    durable_stop(s);
    usage_finish(s);
out_http:
    http_stop(s);
out_listen:
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->metrics_fd >= 0) close(s->metrics_fd);
out_tls:
    cluster_key_destroy(s->cluster_key);
    tls_destroy(s->tls);
out_clients:
    conn_table_destroy(s->clients);
out_epoll:
    close(s->epfd);
out_sigfd:
    close(s->sigfd);
out_blobs:
    blob_close(s->blobs);
out_store:
    shared_state_stop(s);
    store_close(s->st);
out_iso:
    isolation_fini(&s->iso);
out_free:
    if (s->lock_fd >= 0) close(s->lock_fd);
    auth_table_fini(&s->keys);
    free(s);
    return rc;
}

int server_port(const server *s)
{
    return s->port;
}

static void begin_shutdown(server *s)
{
    if (s->stopping) return;
    s->stopping = true;
    s->stop_deadline_ns = rouse_now_ns() + (uint64_t)s->opts.grace_ms * 1000000ull;
    http_stop_accepting(s);
    pool_stopping(s->pool);
    async_begin_stop(s);
    fnlog_end_all(s->logs); /* log followers end now, not at the grace period's */
    LOG_INFO(MOD, "shutting down: %d request(s) in progress", s->n_reqs);
}

/* SIGHUP: the access log reopens its file, and the TLS certificate and
 * key are read again (connections accepted from now on get them). */
static void on_hangup(server *s)
{
    observe_reopen(s);
    if (!s->tls) return;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    if (tls_reload(s->tls, &eb) < 0)
        LOG_ERROR(MOD, "TLS certificate not reloaded, the previous one stays: %s", eb.msg);
    else
        LOG_INFO(MOD, "TLS certificate reloaded: %s", tls_describe(s->tls));
}

static void on_signal(server *s)
{
    struct signalfd_siginfo si;
    while (read(s->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGCHLD)
            pool_reap(s->pool);
        else if (si.ssi_signo == SIGHUP)
            on_hangup(s);
        else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
            begin_shutdown(s);
    }
}

/* The loop thread's CPU time so far. */
static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* epoll_wait that first polls while a fast reply is due (pool_reply_due_ns),
 * yielding the CPU between polls, and only then sleeps. The polling's CPU
 * time goes to the pool when a batching version's reply is due: it is
 * part of what a message costs, which a batch divides among its calls
 * (two system calls, only around a poll, itself spent CPU). */
static int wait_events(server *s, struct epoll_event *evs, int cap, int timeout)
{
    if (timeout != 0) {
        uint64_t until = pool_reply_due_ns(s->pool);
        if (rouse_now_ns() < until) {
            uint64_t cpu0 = pool_poll_timed(s->pool) ? thread_cpu_ns() : 0;
            int n = 0;
            while (rouse_now_ns() < until) {
                if ((n = epoll_wait(s->epfd, evs, cap, 0)) != 0) break;
                sched_yield();
            }
            if (cpu0) pool_note_poll(s->pool, thread_cpu_ns() - cpu0);
            if (n != 0) return n;
        }
    }
    return epoll_wait(s->epfd, evs, cap, timeout);
}

/* The loop thread's voluntary context switches so far. */
static long thread_nvcsw(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nvcsw : 0;
}

static int min_timeout(int a, int b)
{
    if (a < 0) return b;
    if (b < 0) return a;
    return a < b ? a : b;
}

int server_run(server *s, rouse_errbuf *eb)
{
    (void)eb;
    struct epoll_event evs[64];
    bool failed_rest = false;
    uint64_t woke_ns = 0; /* when epoll_wait last returned */
    long woke_nvcsw = 0;  /* the thread's voluntary context switches then */
    for (;;) {
        int timeout = min_timeout(http_timeout_ms(s), pool_tick(s->pool));
        timeout = min_timeout(timeout, http_tick(s));
        timeout = min_timeout(timeout, usage_tick(s));
        timeout = min_timeout(timeout, async_loop_tick(s));
        timeout = min_timeout(timeout, fnlog_tick(s->logs));
        timeout = min_timeout(timeout, cluster_tick(s));
        if (s->mhd_kick) timeout = 0;
        if (s->stopping) {
            uint64_t now = rouse_now_ns();
            int left = now >= s->stop_deadline_ns
                           ? 0
                           : (int)((s->stop_deadline_ns - now) / 1000000ull) + 1;
            timeout = min_timeout(timeout, left > 100 ? 100 : left);
        }
        if (woke_ns) {
            uint64_t busy = rouse_now_ns() - woke_ns;
            if (busy > s->loop_stall_max_ns) s->loop_stall_max_ns = busy;
            if (busy > s->loop_lag_scrape_ns) s->loop_lag_scrape_ns = busy;
            /* An iteration in which the thread went to sleep (a voluntary
             * context switch: an fsync, a wait for another process, a page
             * read from disk) blocked; one that was only preempted did not. */
            if (busy > s->loop_block_max_ns && thread_nvcsw() != woke_nvcsw)
                s->loop_block_max_ns = busy;
            s->loop_iterations++;
        }
        int n = wait_events(s, evs, 64, timeout);
        woke_ns = rouse_now_ns();
        woke_nvcsw = thread_nvcsw();
        if (n < 0 && errno != EINTR) {
            LOG_ERROR(MOD, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            ep_tag *tag = evs[i].data.ptr;
            if (tag->kind == EP_SIGNAL)
                on_signal(s);
            else if (tag->kind == EP_PROC || tag->kind == EP_ZYGOTE || tag->kind == EP_BATCH_TIMER)
                pool_on_event(s->pool, tag, evs[i].events);
            else if (tag->kind == EP_CLIENT)
                http_on_client_event(tag);
            else if (tag->kind == EP_WRITER)
                store_writer_complete(((ep_writer *)tag)->w);
            else if (tag->kind == EP_REGSYNC)
                shared_state_on_event(s);
            else if (tag->kind == EP_LISTEN)
                http_gate_accept(s);
            else if (tag->kind == EP_TIMER)
                gc_on_timer(s);
            else if (tag->kind == EP_CALLBACK)
                async_on_callbacks(s);
            else if (tag->kind == EP_GATE)
                http_gate_on_conn(s, (struct gate_conn *)tag, evs[i].events);
            else if (tag->kind == EP_KEEP_SET)
                http_gate_poll(s);
            else if (tag->kind == EP_OUTPUT)
                fnlog_on_event(s->logs, tag);
            else if (tag->kind == EP_BLOB_REMOTE)
                blob_fetch_on_event(s);
            else if (tag->kind == EP_BUS)
                cluster_on_event(s, tag);
        }
        http_gate_reap(s);
        pool_collect(s->pool);
        s->mhd_kick = false;
        http_run(s);
        pool_check(s->pool);
        if (s->stopping) {
            if (s->n_reqs == 0 && pool_pending(s->pool) == 0 && async_loop_pending(s) == 0) {
                LOG_INFO(MOD, "every request is answered");
                break;
            }
            uint64_t now = rouse_now_ns();
            if (now >= s->stop_deadline_ns && !failed_rest) {
                LOG_WARN(MOD, "grace period over: %d request(s) still waiting get 503",
                         pool_pending(s->pool));
                pool_fail_all(s->pool, "server is shutting down");
                failed_rest = true;
            }
            /* Whatever MHD still holds after the grace period plus a second is
             * a connection that stopped reading: give up on it. */
            if (now >= s->stop_deadline_ns + 1000000000ull) {
                LOG_WARN(MOD, "grace period over: leaving %d connection(s) behind", s->n_reqs);
                break;
            }
        }
    }
    pool_stop_all(s->pool);
    LOG_INFO(MOD, "stopped");
    return 0;
}

void server_destroy(server *s)
{
    if (!s) return;
    pool_stop_all(s->pool);
    http_stop_accepting(s);
    http_gate_close_all(s);
    fnlog_end_all(s->logs); /* MHD must have no suspended follower when it stops */
    http_run(s);
    http_stop(s);
    pool_destroy(s->pool);
    isolation_fini(&s->iso); /* every instance is gone */
    async_stop(s); /* before the writer: its changes in flight are dropped with it */
    fnlog_destroy(s->logs);
    close(s->epfd);
    close(s->sigfd);
    gc_stop(s);
    cluster_stop(s); /* after MHD: no request waits for a peer any more */
    usage_stop(s);   /* after MHD: every request's record is in the buffer */
    durable_stop(s); /* after MHD: no request waits for a write any more */
    usage_finish(s); /* after the writer: ships its last usage records */
    blob_fetch_stop(s); /* after MHD: no request waits for a transfer any more */
    shared_state_stop(s); /* after the writer, which shares its health */
    observe_stop(s); /* after MHD: no request ends any more */
    route_cache_clear(s);
    blob_close(s->blobs);
    store_close(s->st);
    tls_destroy(s->tls); /* after MHD: no handshake any more */
    cluster_key_destroy(s->cluster_key);
    conn_table_destroy(s->clients);
    if (s->lock_fd >= 0) close(s->lock_fd);
    auth_table_fini(&s->keys);
    free(s);
    nats_Close(); /* libnats's own threads and memory, once every part closed its connection */
}
