/*
 * The access log's queue and writer thread (access_log.h).
 *
 * Invariants: only the loop thread pushes (access_log_claim/publish) and
 * only the writer thread pops; the writer owns the file descriptor and is
 * the only one to reopen it (the loop just raises `reopen`); at destroy
 * the writer drains the queue before it exits, so that a clean stop loses
 * no line.
 */
#include "server/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/spsc.h"

#define MOD "access-log"
#define QUEUE_SLOTS 8192u
/* The writer wakes this often by itself; the loop kicks it sooner only
 * when the queue is half full, so that a busy loop makes no system call
 * per line. Lines reach the file within this time. Each wake costs the
 * thread a cold start on a busy machine: fewer of them, more lines each. */
#define FLUSH_MS 200
#define WRITE_CHUNK (64u * 1024u)

struct access_log {
    spsc q;
    access_log_format fmt;
    char *path; /* NULL: stderr */
    int fd;
    int efd; /* wakes the writer */
    pthread_t thread;
    _Atomic bool stop, reopen, kicked;
    uint64_t dropped; /* loop thread only */
};

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

/* RFC 3339 UTC with microseconds; the date and time of the last second
 * seen are kept (one writer thread formats the lines). */
static void format_ts(int64_t ts_us, char out[40])
{
    static _Thread_local int64_t cached_sec = -1;
    static _Thread_local char cached[24];
    int64_t sec = ts_us / 1000000;
    if (sec != cached_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = sec;
    }
    int us = (int)(ts_us % 1000000);
    size_t n = strlen(cached);
    memcpy(out, cached, n);
    out[n++] = '.';
    for (int i = 5; i >= 0; i--, us /= 10)
        out[n + (size_t)i] = (char)('0' + us % 10);
    n += 6;
    out[n++] = 'Z';
    out[n] = '\0';
}

/* Plain appends and hand-made integers: this runs per line, and printf
 * (which rouse_buf_appendf calls twice) was most of its cost. */
typedef struct lw {
    rouse_buf *b;
    int rc;
} lw;

static void put(lw *w, const char *s, size_t n)
{
    if (w->rc == 0) w->rc = rouse_buf_append(w->b, s, n);
}
#define LIT(w, s) put((w), (s), sizeof(s) - 1)

static void put_str(lw *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_u64(lw *w, uint64_t v)
{
    if (w->rc == 0) w->rc = rouse_buf_append_u64(w->b, v);
}

static void put_i64(lw *w, int64_t v)
{
    if (w->rc == 0) w->rc = rouse_buf_append_i64(w->b, v);
}

static void put_json(lw *w, const char *s)
{
    if (w->rc == 0) w->rc = json_write_string(w->b, s, strlen(s));
}

/* A field of a text line: bytes that would split or forge a line (space,
 * controls, DEL, '%') percent-encoded, "-" for an empty one. Paths and
 * names come from clients (libmicrohttpd decoded the path's escapes). */
static void put_text(lw *w, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    LIT(w, " ");
    if (!*s) LIT(w, "-");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || *p == '%') {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            put(w, e, 3);
        } else {
            put(w, (const char *)p, 1);
        }
    }
}

int access_log_format_line(access_log_format fmt, const access_rec *r, rouse_buf *out)
{
    const invocation *inv = &r->inv;
    char ts[40];
    format_ts(inv->ts_us, ts);
    const char *start = inv_start_name(inv->start);
    lw w = {.b = out};
    if (fmt == ACCESS_LOG_TEXT) {
        put_str(&w, ts);
        LIT(&w, " ");
        put_str(&w, inv->request_id[0] ? inv->request_id : "-");
        LIT(&w, " ");
        put_str(&w, inv->trace_id[0] ? inv->trace_id : "-");
        LIT(&w, " ");
        put_str(&w, r->method);
        put_text(&w, r->path);
        LIT(&w, " ");
        put_i64(&w, inv->status);
        if (r->is_invocation) {
            put_text(&w, inv->function);
            LIT(&w, " v");
            put_i64(&w, inv->version);
            LIT(&w, " ");
            put_str(&w, start[0] ? start : "-");
            LIT(&w, " queue_us=");
            put_u64(&w, inv->queue_us);
            LIT(&w, " start_us=");
            put_u64(&w, inv->start_us);
            LIT(&w, " run_us=");
            put_u64(&w, inv->run_us);
        }
        LIT(&w, " total_us=");
        put_u64(&w, inv->total_us);
        LIT(&w, " in=");
        put_u64(&w, inv->bytes_in);
        LIT(&w, " out=");
        put_u64(&w, inv->bytes_out);
        LIT(&w, "\n");
        return w.rc;
    }
    LIT(&w, "{\"ts\":\"");
    put_str(&w, ts);
    LIT(&w, "\",\"request_id\":\"");
    put_str(&w, inv->request_id);
    LIT(&w, "\",\"trace_id\":\"");
    put_str(&w, inv->trace_id);
    LIT(&w, "\",\"method\":\"");
    put_str(&w, r->method);
    LIT(&w, "\",\"path\":");
    put_json(&w, r->path);
    LIT(&w, ",\"status\":");
    put_i64(&w, inv->status);
    if (r->is_invocation) {
        LIT(&w, ",\"function\":");
        put_json(&w, inv->function);
        LIT(&w, ",\"version\":");
        put_i64(&w, inv->version);
        LIT(&w, ",\"error\":\"");
        put_str(&w, inv_error_name(inv->error));
        LIT(&w, "\",\"start\":\"");
        put_str(&w, start);
        LIT(&w, "\",\"queue_us\":");
        put_u64(&w, inv->queue_us);
        LIT(&w, ",\"start_us\":");
        put_u64(&w, inv->start_us);
        LIT(&w, ",\"run_us\":");
        put_u64(&w, inv->run_us);
    }
    LIT(&w, ",\"total_us\":");
    put_u64(&w, inv->total_us);
    LIT(&w, ",\"bytes_in\":");
    put_u64(&w, inv->bytes_in);
    LIT(&w, ",\"bytes_out\":");
    put_u64(&w, inv->bytes_out);
    LIT(&w, "}\n");
    return w.rc;
}

static void write_all(access_log *al, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(al->fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            /* Nowhere to report but serve's own log; the lines are lost. */
            LOG_WARN(MOD, "cannot write the access log: %s", strerror(errno));
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void do_reopen(access_log *al)
{
    if (!al->path) return;
    int fd = open_log(al->path);
    if (fd < 0) {
        LOG_WARN(MOD, "cannot reopen %s: %s (still writing to the old file)", al->path,
                 strerror(errno));
        return;
    }
    close(al->fd);
    al->fd = fd;
}

static void *writer_main(void *arg)
{
    access_log *al = arg;
    rouse_buf b;
    rouse_buf_init(&b);
    for (;;) {
        struct pollfd pfd = {.fd = al->efd, .events = POLLIN};
        if (poll(&pfd, 1, FLUSH_MS) > 0) {
            uint64_t v;
            if (read(al->efd, &v, sizeof(v)) < 0) { /* nothing to do: woken anyway */
            }
        }
        atomic_store(&al->kicked, false);
        bool stopping = atomic_load(&al->stop);
        if (atomic_exchange(&al->reopen, false)) do_reopen(al);
        const access_rec *r;
        while ((r = spsc_peek(&al->q))) {
            access_log_format_line(al->fmt, r, &b);
            spsc_release(&al->q);
            if (b.len >= WRITE_CHUNK) {
                write_all(al, b.data, b.len);
                rouse_buf_clear(&b);
            }
        }
        if (b.len) write_all(al, b.data, b.len);
        rouse_buf_clear(&b);
        if (stopping) break; /* drained after the stop was seen: nothing is left */
    }
    rouse_buf_fini(&b);
    return NULL;
}

int access_log_create(const char *path, access_log_format fmt, access_log **out, rouse_errbuf *eb)
{
    access_log *al = calloc(1, sizeof(*al));
    if (!al) return rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
    al->fmt = fmt;
    al->fd = 2;
    al->efd = -1;
    int rc;
    if (spsc_init(&al->q, sizeof(access_rec), QUEUE_SLOTS) < 0) {
        rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
        goto out_free;
    }
    if (path) {
        if (!(al->path = strdup(path))) {
            rc = rouse_err_set(eb, ROUSE_ENOMEM, "out of memory");
            goto out_queue;
        }
        if ((al->fd = open_log(path)) < 0) {
            rc = rouse_err_set(eb, ROUSE_EIO, "--access-log: cannot open %s: %s", path,
                               strerror(errno));
            goto out_path;
        }
    }
    if ((al->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "eventfd: %s", strerror(errno));
        goto out_close;
    }
    if ((errno = pthread_create(&al->thread, NULL, writer_main, al)) != 0) {
        rc = rouse_err_set(eb, ROUSE_EIO, "cannot start the access log's thread: %s",
                           strerror(errno));
        goto out_efd;
    }
    pthread_setname_np(al->thread, "rouse-accesslog");
    *out = al;
    return 0;

out_efd:
    close(al->efd);
out_close:
    if (al->path) close(al->fd);
out_path:
    free(al->path);
out_queue:
    spsc_fini(&al->q);
out_free:
    free(al);
    return rc;
}

static void kick(access_log *al)
{
    uint64_t one = 1;
    if (write(al->efd, &one, sizeof(one)) < 0) { /* already pending: fine */
    }
}

void access_log_destroy(access_log *al)
{
    if (!al) return;
    atomic_store(&al->stop, true);
    kick(al);
    pthread_join(al->thread, NULL);
    close(al->efd);
    if (al->path) close(al->fd);
    free(al->path);
    spsc_fini(&al->q);
    free(al);
}

access_rec *access_log_claim(access_log *al)
{
    access_rec *r = spsc_claim(&al->q);
    if (!r) al->dropped++;
    return r;
}

void access_log_publish(access_log *al)
{
    spsc_publish(&al->q);
    if (spsc_used(&al->q) >= QUEUE_SLOTS / 2 && !atomic_exchange(&al->kicked, true)) kick(al);
}

void access_log_reopen(access_log *al)
{
    atomic_store(&al->reopen, true);
    kick(al);
}

uint64_t access_log_dropped(const access_log *al)
{
    return al->dropped;
}
