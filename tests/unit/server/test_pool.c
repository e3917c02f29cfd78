/*
 * The pool without a daemon and without processes: the pool's parts as they
 * are (registry sync over a real store in a temporary directory, scheduling,
 * lifecycle, the instance protocol, statistics), with the system calls that
 * start, signal and reap processes (zygote_proc.c) replaced by fakes. The
 * test plays each template and instance itself on the other end of its real
 * socket, speaking worker/ipc.h, moves a fake clock, and delivers process
 * ends when it likes. pool_check() runs after every step.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "../store/testdir.h"
#include "server/pool.h"
#include "server/zygote_proc.h"
#include "store/blob.h"
#include "store/store.h"
#include "worker/ipc.h"

/* --- fake processes: the part of zygote_proc.c the pool uses ------------- */

#define FAKE_MAX 64

typedef struct fake_proc {
    pid_t pid;
    int fd;        /* the process's end of its control socket */
    int region_fd; /* an instance's shared region, once sent */
    bool spare_wanted; /* a template told to keep a spare (IPC_SPARE) */
    bool region_ahead; /* an instance was passed its region before a request (IPC_REGION) */
    bool is_template;
    bool killed;
} fake_proc;

static struct {
    fake_proc procs[FAKE_MAX];
    int n;
    pid_t next_pid;
    /* Ends to deliver at the next proc_reap_one: pid and wait status. */
    pid_t reap_pid[FAKE_MAX];
    int reap_status[FAKE_MAX];
    int n_reap;
} fk;

int proc_fork_exec(const char *exe, char *const argv[], int child_fd, int extra_fd, pid_t *pid,
                   rouse_errbuf *eb)
{
    (void)exe;
    (void)extra_fd;
    (void)eb;
    assert_true(fk.n < FAKE_MAX);
    fake_proc *f = &fk.procs[fk.n++];
    f->pid = fk.next_pid++;
    f->fd = fcntl(child_fd, F_DUPFD_CLOEXEC, 0);
    f->is_template = strcmp(argv[1], "__template") == 0;
    f->killed = false;
    f->region_fd = -1;
    *pid = f->pid;
    return 0;
}

static void fake_end(pid_t pid, int wstatus)
{
    fk.reap_pid[fk.n_reap] = pid;
    fk.reap_status[fk.n_reap] = wstatus;
    fk.n_reap++;
}

void proc_kill_pid(pid_t pid)
{
    for (int i = 0; i < fk.n; i++)
        if (fk.procs[i].pid == pid && !fk.procs[i].killed) {
            fk.procs[i].killed = true;
            fake_end(pid, SIGKILL); /* a wait status for "killed by signal 9" */
        }
}

pid_t proc_reap_one(zygote_proc *z, int *wstatus)
{
    (void)z;
    if (fk.n_reap == 0) return -1;
    pid_t pid = fk.reap_pid[0];
    *wstatus = fk.reap_status[0];
    fk.n_reap--;
    memmove(fk.reap_pid, fk.reap_pid + 1, (size_t)fk.n_reap * sizeof(pid_t));
    memmove(fk.reap_status, fk.reap_status + 1, (size_t)fk.n_reap * sizeof(int));
    return pid;
}

/* No zygote: every template is "exec'd" (proc_fork_exec). */
void zygote_init(zygote_proc *z, int epfd, const char *exe, const char *log_level)
{
    memset(z, 0, sizeof(*z));
    z->epfd = epfd;
    z->exe = exe;
    z->log_level = log_level;
    z->sock = z->warm_sock = -1;
}
void zygote_start(zygote_proc *z)
{
    (void)z;
}
bool zygote_submit(zygote_proc *z, void *owner, int argc, char *const argv[], int child_fd,
                   uint64_t now)
{
    (void)z, (void)owner, (void)argc, (void)argv, (void)child_fd, (void)now;
    return false;
}
bool zygote_poll(zygote_proc *z, uint64_t now, zygote_outcome *out)
{
    (void)z, (void)now, (void)out;
    return false;
}
int zygote_timeout_ms(const zygote_proc *z, uint64_t now)
{
    (void)z, (void)now;
    return -1;
}
void zygote_warm(zygote_proc *z, int argc, char *const argv[])
{
    (void)z, (void)argc, (void)argv;
}
bool zygote_reaped(zygote_proc *z, pid_t pid, int wstatus)
{
    (void)z, (void)pid, (void)wstatus;
    return false;
}
void zygote_stop(zygote_proc *z)
{
    (void)z;
}

/* --- the world around the pool --------------------------------------------- */

typedef struct result {
    bool done;
    int status;
    char error[256];
    char body[256];
    char start[16];
    int64_t version;
} result;

typedef struct world {
    char dir[256];
    store *st;
    blobstore *blobs;
    int epfd;
    uint64_t now;
    pool *p;
    char digest[80];
} world;

static uint64_t fake_clock(void *user)
{
    return ((world *)user)->now;
}

static void on_done(void *user, pool_result *res)
{
    result *r = user;
    assert_false(r->done); /* exactly once */
    r->done = true;
    r->status = res->status;
    r->version = res->version;
    snprintf(r->error, sizeof(r->error), "%s", res->error ? res->error : "");
    snprintf(r->start, sizeof(r->start), "%s", res->start ? res->start : "");
    if (res->fd >= 0) {
        ssize_t n = pread(res->fd, r->body, sizeof(r->body) - 1, 0);
        r->body[n > 0 ? n : 0] = '\0';
        close(res->fd);
    } else if (res->body) {
        size_t n = res->len < sizeof(r->body) - 1 ? (size_t)res->len : sizeof(r->body) - 1;
        memcpy(r->body, res->body, n);
        r->body[n] = '\0';
    }
    free(res->body);
}

/* Delivers every event waiting in the pool's epoll, as serve's loop does;
 * each round takes 100 us of the fake clock. */
static void run(world *w)
{
    w->now += 100000ull;
    for (;;) {
        struct epoll_event evs[16];
        int n = epoll_wait(w->epfd, evs, 16, 0);
        if (n <= 0) break;
        for (int i = 0; i < n; i++)
            pool_on_event(w->p, evs[i].data.ptr, evs[i].events);
        pool_collect(w->p);
    }
    pool_reap(w->p);
    pool_tick(w->p);
    pool_collect(w->p);
    pool_check(w->p);
}

static void deploy(world *w, const char *name, const char *scaling, int64_t timeout_ms)
{
    char cfg[512];
    snprintf(cfg, sizeof(cfg), "{\"model\":\"%s\",\"timeout_ms\":%lld,\"scaling\":{%s}}",
             w->digest, (long long)timeout_ms, scaling);
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int64_t version;
    bool created;
    assert_int_equal(store_deploy(w->st, name, w->digest, cfg, &version, &created, &eb), 0);
    pool_deployed(w->p, name, version);
}

static int setup(void **state)
{
    memset(&fk, 0, sizeof(fk));
    fk.next_pid = 1000;
    world *w = calloc(1, sizeof(*w));
    testdir_make(w->dir, sizeof(w->dir));
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    assert_int_equal(store_open(w->dir, &w->st, &eb), 0);
    assert_int_equal(blob_open(w->dir, &w->blobs, &eb), 0);
    blob_writer *bw;
    uint64_t size;
    assert_int_equal(blob_write_begin(w->blobs, 1 << 20, &bw, &eb), 0);
    assert_int_equal(blob_write(bw, "not a model: nothing loads it here", 34, &eb), 0);
    assert_int_equal(blob_write_commit(bw, w->digest, &size, &eb), 0);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->now = 1000000000ull;
    pool_opts o = {.epfd = w->epfd,
                   .exe = "/nonexistent/rouse",
                   .plan_dir = w->dir,
                   .log_level = "error",
                   .max_instances = 4,
                   .st = w->st,
                   .blobs = w->blobs,
                   .clock = fake_clock,
                   .clock_user = w};
    assert_int_equal(pool_create(&o, &w->p, &eb), 0);
    *state = w;
    return 0;
}

static int teardown(void **state)
{
    world *w = *state;
    pool_destroy(w->p);
    for (int i = 0; i < fk.n; i++) {
        if (fk.procs[i].fd >= 0) close(fk.procs[i].fd);
        if (fk.procs[i].region_fd >= 0) close(fk.procs[i].region_fd);
    }
    close(w->epfd);
    blob_close(w->blobs);
    store_close(w->st);
    testdir_remove(w->dir);
    free(w);
    return 0;
}

/* --- playing the processes --------------------------------------------------- */

static fake_proc *newest(bool is_template)
{
    for (int i = fk.n - 1; i >= 0; i--)
        if (fk.procs[i].is_template == is_template) return &fk.procs[i];
    return NULL;
}

static void send_msg(int fd, ipc_msg *m, int body_fd)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    assert_int_equal(ipc_send(fd, m, body_fd, &eb), 0);
}

/* The template says it loaded. */
static void template_ready(world *w, fake_proc *t)
{
    ipc_msg m;
    ipc_msg_init(&m, IPC_READY, 0);
    m.pid = (uint32_t)t->pid;
    send_msg(t->fd, &m, -1);
    run(w);
}

/* The template receives one spawn request and forks: a new fake process
 * whose socket is the one serve passed. Returns it; *spawn_id the request. */
static fake_proc *template_take_spawn(fake_proc *t, uint64_t *spawn_id)
{
    ipc_msg m;
    int fd = -1;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    /* serve also tells the template whether to keep a spare: noted. */
    for (;;) {
        assert_int_equal(ipc_recv_nowait(t->fd, &m, &fd, &eb), 0);
        if (m.type != IPC_SPARE) break;
        t->spare_wanted = m.status != 0;
    }
    assert_int_equal(m.type, IPC_SPAWN);
    assert_true(fd >= 0);
    fake_proc *f = &fk.procs[fk.n++];
    f->pid = fk.next_pid++;
    f->fd = fd;
    f->region_fd = -1;
    f->is_template = false;
    *spawn_id = m.id;
    return f;
}

static void template_answer_spawn(fake_proc *t, uint64_t spawn_id, pid_t pid)
{
    ipc_msg m;
    ipc_msg_init(&m, IPC_REPLY, spawn_id);
    m.pid = (uint32_t)pid;
    send_msg(t->fd, &m, -1);
}

static void instance_ready(world *w, fake_proc *i)
{
    ipc_msg m;
    ipc_msg_init(&m, IPC_READY, 0);
    m.pid = (uint32_t)i->pid;
    send_msg(i->fd, &m, -1);
    run(w);
}

/* Template start, READY, one spawn, the instance's READY: returns it. */
static fake_proc *start_one(world *w)
{
    fake_proc *t = newest(true);
    assert_non_null(t);
    template_ready(w, t);
    uint64_t id;
    fake_proc *i = template_take_spawn(t, &id);
    template_answer_spawn(t, id, i->pid);
    run(w);
    instance_ready(w, i);
    return i;
}

/* The instance reads one request; returns its id (and checks the body). */
static uint64_t instance_take(fake_proc *i, const char *want_body)
{
    ipc_msg m;
    int fd = -1;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    assert_int_equal(ipc_recv_nowait(i->fd, &m, &fd, &eb), 0);
    if (m.type == IPC_REGION) { /* passed ahead: the same region comes with the request */
        assert_true(fd >= 0 && (m.flags & IPC_F_REGION));
        close(fd);
        fd = -1;
        i->region_ahead = true;
        assert_int_equal(ipc_recv_nowait(i->fd, &m, &fd, &eb), 0);
    }
    assert_int_equal(m.type, IPC_INFER);
    if (m.flags & IPC_F_REGION) { /* the first request that uses the region passes it */
        assert_true(fd >= 0);
        if (i->region_fd >= 0) close(i->region_fd);
        i->region_fd = fd;
        fd = -1;
    }
    int from = m.flags & IPC_F_IN_REGION ? i->region_fd : fd;
    assert_true(from >= 0);
    char got[64] = "";
    ssize_t n = pread(from, got, sizeof(got) - 1, 0);
    got[n > 0 ? n : 0] = '\0';
    assert_int_equal(m.body_len, strlen(want_body));
    assert_memory_equal(got, want_body, m.body_len);
    if (fd >= 0) close(fd);
    return m.id;
}

static void instance_reply(world *w, fake_proc *i, uint64_t id, const char *body)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    int fd;
    assert_int_equal(ipc_memfd_from(body, strlen(body), &fd, &eb), 0);
    ipc_msg m;
    ipc_msg_init(&m, IPC_REPLY, id);
    m.status = 200;
    m.body_len = strlen(body);
    snprintf(m.content_type, sizeof(m.content_type), "application/json");
    send_msg(i->fd, &m, fd);
    close(fd);
    run(w);
}

static pool_call *submit_as(world *w, const char *name, const char *body, result *r,
                            bool background)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    pool_request rq = {.name = name,
                       .background = background,
                       .version = 1,
                       .type = IPC_INFER,
                       .body = strdup(body),
                       .body_fd = -1,
                       .body_len = strlen(body),
                       .json_len = -1,
                       .done = on_done,
                       .user = r};
    pool_call *c = NULL;
    int retry = 0;
    assert_int_equal(pool_submit(w->p, &rq, &c, &retry, &eb), 0);
    run(w);
    return c;
}

static pool_call *submit(world *w, const char *name, const char *body, result *r)
{
    return submit_as(w, name, body, r, false);
}

/* True when the process's end of its socket sees end of stream. */
static bool closed_by_serve(const fake_proc *f)
{
    char b;
    ssize_t n = recv(f->fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
    return n == 0;
}

/* --- tests -------------------------------------------------------------------- */

/* A call from zero: the template is started, forks an instance, the call
 * goes to it through the shared region, and the reply comes back. */
static void test_queue_and_dispatch(void **state)
{
    world *w = *state;
    deploy(w, "f", "\"max\":2", 5000);
    result r = {0};
    submit(w, "f", "{\"in\":1}", &r);
    assert_false(r.done);
    assert_int_equal(pool_pending(w->p), 1);
    fake_proc *i = start_one(w);
    uint64_t id = instance_take(i, "{\"in\":1}");
    assert_false(r.done);
    instance_reply(w, i, id, "{\"out\":2}");
    assert_true(r.done);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"out\":2}");
    assert_string_equal(r.start, "zero");
    assert_int_equal(r.version, 1);
    assert_int_equal(pool_pending(w->p), 0);
    /* The next one is warm and reuses the instance. */
    result r2 = {0};
    submit(w, "f", "{\"in\":3}", &r2);
    id = instance_take(i, "{\"in\":3}");
    instance_reply(w, i, id, "{\"out\":4}");
    assert_true(r2.done);
    assert_string_equal(r2.start, "warm");
    assert_int_equal(fk.n, 2); /* no other process was started */
}

/* Background calls (asynchronous jobs): a version at zero has room for
 * one, which starts it; they wait behind synchronous calls and take none
 * of the queue room (queue_depth 1 here: the synchronous call still fits);
 * while a synchronous call waits, the free capacity is 0. */
static void test_background_behind_sync(void **state)
{
    world *w = *state;
    deploy(w, "f", "\"max\":1,\"queue_depth\":1", 5000);
    assert_int_equal(pool_free_capacity(w->p, "f", 1), 1);
    result bg = {0}, sync = {0};
    submit_as(w, "f", "{\"bg\":1}", &bg, true);
    assert_int_equal(pool_free_capacity(w->p, "f", 1), 0); /* the one starting is taken */
    submit(w, "f", "{\"sync\":1}", &sync);
    assert_int_equal(pool_free_capacity(w->p, "f", 1), 0);
    fake_proc *i = start_one(w);
    uint64_t id = instance_take(i, "{\"sync\":1}"); /* the synchronous call first */
    instance_reply(w, i, id, "{\"out\":1}");
    assert_true(sync.done);
    assert_false(bg.done);
    id = instance_take(i, "{\"bg\":1}");
    instance_reply(w, i, id, "{\"out\":2}");
    assert_true(bg.done);
    assert_int_equal(bg.status, 200);
    /* Idle with a free slot: room for one, and one to wait behind it. */
    assert_int_equal(pool_free_capacity(w->p, "f", 1), 2);
}

/* A call that waits past timeout_ms gets 504 from the tick. */
static void test_deadline(void **state)
{
    world *w = *state;
    deploy(w, "f", "\"max\":1", 1000);
    result r = {0};
    submit(w, "f", "{}", &r);
    assert_int_equal(pool_tick(w->p) > 0, 1); /* a deadline is coming */
    w->now += 999ull * 1000000ull;
    run(w);
    assert_false(r.done);
    w->now += 2ull * 1000000ull;
    run(w);
    assert_true(r.done);
    assert_int_equal(r.status, 504);
    assert_non_null(strstr(r.error, "timeout_ms"));
    assert_int_equal(pool_pending(w->p), 0);
}

/* A cancelled queued call is dropped and its callback never runs; a call
 * cancelled in flight finishes and its reply is discarded. */
static void test_cancel(void **state)
{
    world *w = *state;
    deploy(w, "f", "\"max\":1", 5000);
    result r1 = {0}, r2 = {0};
    pool_call *c1 = submit(w, "f", "one", &r1);
    pool_call *c2 = submit(w, "f", "two", &r2);
    assert_true(pool_call_queued(c2));
    pool_cancel(w->p, c2);
    assert_int_equal(pool_pending(w->p), 1);
    fake_proc *i = start_one(w);
    uint64_t id = instance_take(i, "one");
    assert_false(pool_call_queued(c1));
    pool_cancel(w->p, c1);
    instance_reply(w, i, id, "{}");
    assert_false(r1.done);
    assert_false(r2.done);
    assert_int_equal(pool_pending(w->p), 0);
    /* The instance is idle again and serves the next call. */
    result r3 = {0};
    submit(w, "f", "three", &r3);
    id = instance_take(i, "three");
    instance_reply(w, i, id, "{}");
    assert_true(r3.done);
}

/* An instance that crashes with a call in flight: the call gets 500 naming
 * the signal, the next call gets a new instance from the template. */
static void test_instance_crash(void **state)
{
    world *w = *state;
    deploy(w, "f", "\"max\":1", 5000);
    result r = {0};
    submit(w, "f", "x", &r);
    fake_proc *i = start_one(w);
    instance_take(i, "x");
    close(i->fd);
    i->fd = -1;
    fake_end(i->pid, SIGSEGV);
    run(w);
    assert_true(r.done);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.error, "signal 11"));
    result r2 = {0};
    submit(w, "f", "y", &r2);
    fake_proc *t = newest(true);
    uint64_t sid;
    fake_proc *i2 = template_take_spawn(t, &sid);
    template_answer_spawn(t, sid, i2->pid);
    instance_ready(w, i2);
    uint64_t id = instance_take(i2, "y");
    instance_reply(w, i2, id, "{}");
    assert_true(r2.done);
    assert_int_equal(r2.status, 200);
    assert_string_equal(r2.start, "template");
}

/* A late pid: the instance's process ends (and is reaped) before serve has
 * read the template's answer that names it. The pid is kept as an orphan
 * and matched when the answer comes: the start fails and the waiting call
 * is answered, nothing leaks or waits forever. */
static void test_late_pid(void **state)
{
    world *w = *state;
    deploy(w, "f", "\"max\":1", 5000);
    result r = {0};
    submit(w, "f", "x", &r);
    fake_proc *t = newest(true);
    template_ready(w, t);
    uint64_t sid;
    fake_proc *i = template_take_spawn(t, &sid);
    fake_end(i->pid, SIGKILL);
    pool_reap(w->p); /* the template has not answered yet: an orphan */
    pool_check(w->p);
    assert_false(r.done);
    template_answer_spawn(t, sid, i->pid);
    run(w);
    assert_true(r.done);
    assert_int_equal(r.status, 500);
    assert_non_null(strstr(r.error, "failed to start"));
    assert_int_equal(pool_pending(w->p), 0);
}

/* min keeps instances warm without a request; idle ones beyond min stop
 * after idle_timeout_ms; the template stops after template_ttl_ms. */
static void test_min_and_idle(void **state)
{
    world *w = *state;
    deploy(w, "f", "\"min\":1,\"max\":2,\"idle_timeout_ms\":1000,\"template_ttl_ms\":5000", 5000);
    run(w);
    fake_proc *warm = start_one(w);
    /* A burst of two: one warm, one more started. */
    result r1 = {0}, r2 = {0};
    submit(w, "f", "a", &r1);
    submit(w, "f", "b", &r2);
    fake_proc *t = newest(true);
    uint64_t sid;
    fake_proc *extra = template_take_spawn(t, &sid);
    template_answer_spawn(t, sid, extra->pid);
    instance_ready(w, extra);
    instance_reply(w, warm, instance_take(warm, "a"), "{}");
    instance_reply(w, extra, instance_take(extra, "b"), "{}");
    assert_true(r1.done && r2.done);
    /* Idle timeout: the one beyond min stops, min stays. */
    w->now += 1001ull * 1000000ull;
    run(w);
    int n_closed = closed_by_serve(warm) + closed_by_serve(extra);
    assert_int_equal(n_closed, 1);
    w->now += 10000ull * 1000000ull;
    run(w);
    assert_int_equal(closed_by_serve(warm) + closed_by_serve(extra), 1);
    assert_true(closed_by_serve(t)); /* template_ttl_ms */
    /* The stopped processes exit; reaping them settles everything. */
    if (closed_by_serve(warm)) fake_end(warm->pid, 0);
    if (closed_by_serve(extra)) fake_end(extra->pid, 0);
    fake_end(t->pid, 0);
    run(w);
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(pool_describe(w->p, "f", &b), 0);
    assert_non_null(strstr(b.data, "\"state\":\"idle\""));
    assert_non_null(strstr(b.data, "\"templates\":[]"));
    rouse_buf_fini(&b);
}

/* What the template has been told since it last read: the number of
 * spawns (their requests dropped) and whether the last IPC_SPARE said
 * keep one (-1: no IPC_SPARE came). */
static int template_told(fake_proc *t, int *spare)
{
    int spawns = 0;
    *spare = -1;
    for (;;) {
        ipc_msg m;
        int fd = -1;
        rouse_errbuf eb;
        rouse_errbuf_clear(&eb);
        if (ipc_recv_nowait(t->fd, &m, &fd, &eb) != 0) break;
        if (fd >= 0) close(fd);
        if (m.type == IPC_SPARE) *spare = m.status != 0;
        if (m.type == IPC_SPAWN) spawns++;
    }
    return spawns;
}

/* The template's spare says it is warm (on the template's socket, as a
 * spare does); serve connects it ahead of need with a spawn of its own,
 * which the template answers by handing it the socket. Returns it. */
static fake_proc *spare_warm_and_held(world *w, fake_proc *t)
{
    ipc_msg m;
    ipc_msg_init(&m, IPC_READY, 0);
    m.flags = IPC_F_SPARE;
    m.pid = (uint32_t)fk.next_pid; /* the pid template_take_spawn gives it */
    send_msg(t->fd, &m, -1);
    run(w);
    uint64_t sid;
    fake_proc *sp = template_take_spawn(t, &sid);
    assert_int_equal(sp->pid, (pid_t)m.pid);
    template_answer_spawn(t, sid, sp->pid);
    run(w);
    instance_ready(w, sp);
    return sp;
}

/* A warm spare is held: connected to serve ahead of need, counted as a
 * spare and not as an instance. A request with no instance goes straight
 * down its socket (no spawn, no hand-off through the template) and is
 * reported from template; serve then tells the template to keep no spare,
 * and asks again once that first call is answered. A held spare that
 * ends on its own, or whose template stops, goes with nothing lost. */
static void test_held_spare(void **state)
{
    world *w = *state;
    deploy(w, "f", "\"max\":2,\"idle_timeout_ms\":1000,\"template_ttl_ms\":60000", 5000);
    result r = {0};
    submit(w, "f", "a", &r);
    fake_proc *i = start_one(w);
    fake_proc *t = newest(true);
    instance_reply(w, i, instance_take(i, "a"), "{}");
    assert_true(r.done);
    int spare;
    assert_int_equal(template_told(t, &spare), 0);
    assert_int_equal(spare, -1); /* not while the reply is on its way */
    w->now += 5ull * 1000000ull;
    run(w);
    assert_int_equal(template_told(t, &spare), 0);
    assert_int_equal(spare, 1); /* its first call answered: keep a spare */
    fake_proc *sp = spare_warm_and_held(w, t);
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(pool_describe(w->p, "f", &b), 0);
    char want[64];
    snprintf(want, sizeof(want), "\"pid\":%d,\"state\":\"warm\",\"connected\":true",
             (int)sp->pid);
    assert_non_null(strstr(b.data, want));
    assert_null(strstr(b.data, "\"state\":\"starting\""));
    rouse_buf_clear(&b);
    /* The instance goes idle and stops: the function has no instance. */
    w->now += 1001ull * 1000000ull;
    run(w);
    assert_true(closed_by_serve(i));
    assert_false(closed_by_serve(sp)); /* a held spare is no idle instance */
    fake_end(i->pid, 0);
    run(w);
    /* A request: straight to the held spare, no spawn. */
    result r2 = {0};
    submit(w, "f", "b", &r2);
    uint64_t id = instance_take(sp, "b");
    assert_true(sp->region_ahead);
    assert_false(i->region_ahead); /* an instance forked for a request gets it with that */
    assert_int_equal(template_told(t, &spare), 0);
    assert_int_equal(spare, 0); /* taken: the template keeps no other for now */
    instance_reply(w, sp, id, "{\"b\":1}");
    assert_true(r2.done);
    assert_int_equal(r2.status, 200);
    assert_string_equal(r2.start, "template");
    assert_string_equal(r2.body, "{\"b\":1}");
    w->now += 5ull * 1000000ull;
    run(w);
    assert_int_equal(template_told(t, &spare), 0);
    assert_int_equal(spare, 1); /* answered: the next spare */
    /* The next spare is held, then ends on its own: no spare is counted,
     * and the template is asked for another. */
    fake_proc *sp2 = spare_warm_and_held(w, t);
    close(sp2->fd);
    sp2->fd = -1;
    fake_end(sp2->pid, SIGKILL);
    run(w);
    assert_int_equal(pool_describe(w->p, "f", &b), 0);
    snprintf(want, sizeof(want), "\"pid\":%d", (int)sp2->pid);
    assert_null(strstr(b.data, want));
    assert_non_null(strstr(b.data, "\"pid\":0,\"state\":\"starting\",\"connected\":false"));
    rouse_buf_clear(&b);
    assert_int_equal(template_told(t, &spare), 0);
    assert_int_equal(spare, 1); /* dropped, then asked for again */
    /* A third, held; the template is scaled to zero: the spare goes too. */
    fake_proc *sp3 = spare_warm_and_held(w, t);
    ipc_msg m;
    int fd = -1;
    rouse_errbuf eb;
    assert_int_equal(ipc_recv_nowait(sp3->fd, &m, &fd, &eb), 0);
    assert_int_equal(m.type, IPC_REGION); /* its region, ahead */
    close(fd);
    assert_int_equal(pool_scale_to_zero(w->p, "f"), 2); /* the instance and the template */
    run(w);
    assert_true(closed_by_serve(sp3));
    assert_true(closed_by_serve(t));
    fake_end(sp3->pid, 0);
    fake_end(sp->pid, 0);
    fake_end(t->pid, 0);
    run(w);
    assert_int_equal(pool_describe(w->p, "f", &b), 0);
    assert_non_null(strstr(b.data, "\"spares\":[]"));
    assert_non_null(strstr(b.data, "\"templates\":[]"));
    rouse_buf_fini(&b);
}

/* From zero, the waiting call goes down the new instance's socket right
 * behind its spawn (primed): it is there before the instance says READY,
 * and is answered as a start from zero. */
static void test_zero_primed(void **state)
{
    world *w = *state;
    deploy(w, "f", "\"max\":1", 5000);
    result r = {0};
    submit(w, "f", "z", &r);
    fake_proc *t = newest(true);
    template_ready(w, t);
    uint64_t sid;
    fake_proc *i = template_take_spawn(t, &sid);
    uint64_t id = instance_take(i, "z"); /* before the spawn's answer and READY */
    template_answer_spawn(t, sid, i->pid);
    run(w);
    instance_ready(w, i);
    instance_reply(w, i, id, "{}");
    assert_true(r.done);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.start, "zero");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_and_dispatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_behind_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instance_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_pid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_min_and_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_spare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_primed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
