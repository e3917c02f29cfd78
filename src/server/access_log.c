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
 * per line. Lines reach the file within this time. */
#define FLUSH_MS 50
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

/* RFC 3339 UTC with microseconds. */
static void format_ts(int64_t ts_us, char out[40])
{
    time_t secs = (time_t)(ts_us / 1000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%06dZ", (int)(ts_us % 1000000));
}

/* A field of a text line: bytes that would split or forge a line (space,
 * controls, DEL, '%') percent-encoded, "-" for an empty one. Paths and
 * names come from clients (libmicrohttpd decoded the path's escapes). */
static int put_text(rouse_buf *out, const char *s)
{
    if (!*s) return rouse_buf_append_str(out, " -");
    int rc = rouse_buf_append_byte(out, ' ');
    for (const unsigned char *p = (const unsigned char *)s; rc == 0 && *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || *p == '%')
            rc = rouse_buf_appendf(out, "%%%02X", *p);
        else
            rc = rouse_buf_append_byte(out, *p);
    }
    return rc;
}

int access_log_format_line(access_log_format fmt, const access_rec *r, rouse_buf *out)
{
    const invocation *inv = &r->inv;
    char ts[40];
    format_ts(inv->ts_us, ts);
    const char *start = inv_start_name(inv->start);
    if (fmt == ACCESS_LOG_TEXT) {
        int rc = rouse_buf_appendf(out, "%s %s %s %s", ts,
                                   inv->request_id[0] ? inv->request_id : "-",
                                   inv->trace_id[0] ? inv->trace_id : "-", r->method);
        if (rc == 0) rc = put_text(out, r->path);
        if (rc == 0) rc = rouse_buf_appendf(out, " %d", inv->status);
        if (rc == 0 && r->is_invocation) rc = put_text(out, inv->function);
        if (rc == 0 && r->is_invocation)
            rc = rouse_buf_appendf(out,
                                   " v%" PRId64 " %s queue_us=%" PRIu64 " start_us=%" PRIu64
                                   " run_us=%" PRIu64,
                                   inv->version, start[0] ? start : "-", inv->queue_us,
                                   inv->start_us, inv->run_us);
        if (rc == 0)
            rc = rouse_buf_appendf(out, " total_us=%" PRIu64 " in=%" PRIu64 " out=%" PRIu64 "\n",
                                   inv->total_us, inv->bytes_in, inv->bytes_out);
        return rc;
    }
    int rc = rouse_buf_appendf(out, "{\"ts\":\"%s\",\"request_id\":\"%s\",\"trace_id\":\"%s\","
                                    "\"method\":\"%s\",\"path\":",
                               ts, inv->request_id, inv->trace_id, r->method);
    if (rc == 0) rc = json_write_string(out, r->path, strlen(r->path));
    if (rc == 0) rc = rouse_buf_appendf(out, ",\"status\":%d", inv->status);
    if (rc == 0 && r->is_invocation) {
        rc = rouse_buf_append_str(out, ",\"function\":");
        if (rc == 0) rc = json_write_string(out, inv->function, strlen(inv->function));
        if (rc == 0)
            rc = rouse_buf_appendf(out,
                                   ",\"version\":%" PRId64 ",\"error\":\"%s\",\"start\":\"%s\","
                                   "\"queue_us\":%" PRIu64 ",\"start_us\":%" PRIu64
                                   ",\"run_us\":%" PRIu64,
                                   inv->version, inv_error_name(inv->error), start, inv->queue_us,
                                   inv->start_us, inv->run_us);
    }
    if (rc == 0)
        rc = rouse_buf_appendf(out,
                               ",\"total_us\":%" PRIu64 ",\"bytes_in\":%" PRIu64
                               ",\"bytes_out\":%" PRIu64 "}\n",
                               inv->total_us, inv->bytes_in, inv->bytes_out);
    return rc;
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
