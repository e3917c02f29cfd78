/*
 * Serve reads every byte of a plain-HTTP connection before libmicrohttpd
 * does. libmicrohttpd (0.9.75, a shared library) reads its sockets with
 * recv(2) and offers no hook of its own for it; serve defines recv, which
 * the dynamic linker binds libmicrohttpd's calls to (the executable comes
 * first in symbol lookup). For a descriptor attached here, recv reads the
 * socket itself and runs the bytes through the connection's framing
 * (http_frame_scan), and gives libmicrohttpd only what the framing
 * accepted: whole request heads, body bytes, whole chunk-size and trailer
 * lines. Every other descriptor (the gate's, TLS connections, clients of
 * libcurl) goes straight to the kernel (recvfrom), as do calls with flags.
 *
 * The stream of one connection: with nothing buffered, the kernel's bytes
 * are read into libmicrohttpd's buffer directly (no copy) and framed
 * there; bytes of a head or chunk line not yet complete move to the wire's
 * buffer (at most HTTP_HEAD_MAX bytes) and wait there for the rest, and go
 * to libmicrohttpd from there once accepted. A request the framing refuses (malformed head,
 * unsupported Transfer-Encoding, bad chunk line) dooms the connection: libmicrohttpd gets the
 * accepted bytes before it, then nothing more (EAGAIN). The refusal is answered with one JSON error
 * (http_wire_answer) once no request is in progress: at once when libmicrohttpd has completed every
 * request it began (recv then returns 0, the end of the stream, and
 * libmicrohttpd closes the connection), else when the last of them
 * completes (http_wire_request_done, after its reply is out; the socket is
 * then shut down, which wakes libmicrohttpd to read that end). A request
 * whose body is cut short by a bad chunk line is answered at once, as
 * libmicrohttpd cannot complete it (it sees the end of the stream and
 * drops the request; a reply the handler queued before the body ended
 * would then be cut off by the close). So the replies to pipelined requests keep their
 * order, and the refusal comes last, alone, followed by the close.
 *
 * Limits: the answer is sent without waiting (MSG_DONTWAIT); a client that
 * reads nothing while it pipelines requests can fill the socket's buffer
 * and get the answer cut short before the close.
 *
 * Threads: only the loop thread attaches, detaches and reads attached
 * descriptors (libmicrohttpd runs on it); other threads' recv calls look
 * their descriptor up in the table (atomic loads) and find nothing.
 * Invariants: start <= ok <= end <= WIRE_BUF; [start, ok) is accepted and
 * not yet given to libmicrohttpd, [ok, end) waits for the framing; once
 * doomed, end == ok (the refused bytes are dropped); done <=
 * frame.requests.
 */
#undef _FORTIFY_SOURCE /* this file defines recv, which fortified headers inline */
#include "server/http_wire.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/log.h"
#include "server/http_head.h"

#define MOD "http"
#define WIRE_BUF (HTTP_HEAD_MAX + 1)

struct http_wire {
    int fd;
    http_frame frame;
    char *buf; /* WIRE_BUF bytes */
    size_t start, ok, end;
    unsigned long long done; /* requests libmicrohttpd completed */
    bool doomed;             /* a request was refused: frame says why */
    bool answered;           /* the refusal is sent: recv returns 0 */
};

static http_wire **g_tab;
static int g_n;

int http_wire_init(int max_fd)
{
    if (g_tab) return 0;
    if (max_fd < 1024) max_fd = 1024;
    http_wire **t = calloc((size_t)max_fd, sizeof(*t));
    if (!t) return -1;
    __atomic_store_n(&g_n, max_fd, __ATOMIC_RELAXED);
    __atomic_store_n(&g_tab, t, __ATOMIC_RELEASE);
    return 0;
}

static http_wire *lookup(int fd)
{
    http_wire **t = __atomic_load_n(&g_tab, __ATOMIC_ACQUIRE);
    if (!t || fd < 0 || fd >= __atomic_load_n(&g_n, __ATOMIC_RELAXED)) return NULL;
    return __atomic_load_n(&t[fd], __ATOMIC_ACQUIRE);
}

http_wire *http_wire_attach(int fd)
{
    if (!g_tab || fd < 0 || fd >= g_n) return NULL;
    http_wire *w = calloc(1, sizeof(*w));
    if (!w || !(w->buf = malloc(WIRE_BUF))) {
        free(w);
        return NULL;
    }
    w->fd = fd;
    __atomic_store_n(&g_tab[fd], w, __ATOMIC_RELEASE);
    return w;
}

void http_wire_detach(http_wire *w)
{
    if (!w) return;
    __atomic_store_n(&g_tab[w->fd], NULL, __ATOMIC_RELEASE);
    free(w->buf);
    free(w);
}

static ssize_t kernel_recv(int fd, void *buf, size_t len, int flags)
{
    return recvfrom(fd, buf, len, flags, NULL, NULL);
}

static const char *reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

void http_wire_answer(int fd, int status, const char *msg, const char *node)
{
    char sink[4096];
    while (kernel_recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
    }
    rouse_buf body, out;
    rouse_buf_init(&body);
    rouse_buf_init(&out);
    rouse_buf_append_str(&body, "{\"error\":");
    json_write_string(&body, msg, strlen(msg));
    rouse_buf_append_str(&body, "}\n");
    int rc = rouse_buf_appendf(&out,
                               "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                               "Content-Length: %zu\r\nConnection: close\r\n%s%s%s\r\n",
                               status, reason(status), body.len, node ? "Rouse-Node: " : "",
                               node ? node : "", node ? "\r\n" : "");
    if (rc == 0) rc = rouse_buf_append(&out, body.data, body.len);
    if (rc == 0 && send(fd, out.data, out.len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        LOG_DEBUG(MOD, "cannot answer a rejected request: %s", strerror(errno));
    rouse_buf_fini(&body);
    rouse_buf_fini(&out);
    LOG_DEBUG(MOD, "%d before MHD: %s", status, msg);
}

/* Sends the refusal and ends the stream: libmicrohttpd reads its end next. */
static void answer(http_wire *w)
{
    w->answered = true;
    http_wire_answer(w->fd, w->frame.status, w->frame.msg, NULL);
    shutdown(w->fd, SHUT_RDWR);
}

/* No request in progress: libmicrohttpd completed every one it was given. */
static bool idle(const http_wire *w)
{
    return w->done >= w->frame.requests;
}

bool http_wire_request_done(http_wire *w)
{
    if (!w) return false;
    if (w->done < w->frame.requests) w->done++;
    if (!w->doomed || w->answered || !idle(w) || w->start < w->ok) return false;
    answer(w);
    return true;
}

/* The framing refused a request: the bytes from there go nowhere. */
static void doom(http_wire *w)
{
    w->doomed = true;
    w->end = w->ok;
    /* A body cut short: libmicrohttpd, given the bytes before the refusal
     * in a read shorter than it asked for, takes the socket for drained and
     * waits for an event before it reads again; shutting reading down makes
     * one, and its next read answers. */
    if (w->frame.cut_body) shutdown(w->fd, SHUT_RD);
}

/* Runs the buffered bytes not yet framed through the framing. */
static void frame_buffered(http_wire *w)
{
    w->ok += http_frame_scan(&w->frame, w->buf + w->ok, w->end - w->ok);
    if (w->frame.state == HTTP_FRAME_REJECTED) doom(w);
}

/* Frames n bytes read into libmicrohttpd's buffer at p, with nothing
 * buffered: the count it may have; the rest (an incomplete head or line)
 * moves to the wire's buffer. */
static size_t frame_direct(http_wire *w, const char *p, size_t n)
{
    size_t took = http_frame_scan(&w->frame, p, n);
    if (w->frame.state == HTTP_FRAME_REJECTED) {
        doom(w);
    } else if (took < n) {
        /* The framing decides with fewer bytes than WIRE_BUF. */
        assert(n - took < WIRE_BUF);
        memcpy(w->buf, p + took, n - took);
        w->end = n - took;
    }
    return took;
}

/* Copies accepted bytes to out[*got..len). */
static void give(http_wire *w, char *out, size_t len, size_t *got)
{
    size_t n = w->ok - w->start < len - *got ? w->ok - w->start : len - *got;
    memcpy(out + *got, w->buf + w->start, n);
    w->start += n;
    *got += n;
}

/* recv for an attached descriptor (flags 0): see the file's comment.
 * libmicrohttpd takes a read shorter than it asked for to mean that the
 * socket is drained, and waits for its next event before it reads again;
 * so a short count is returned only when the kernel's last read was short
 * too, or the stream ends or stops at a refusal. */
static ssize_t wire_recv(http_wire *w, char *out, size_t len)
{
    size_t got = 0;
    for (;;) {
        give(w, out, len, &got);
        if (got == len || w->answered) return (ssize_t)got;
        if (w->doomed) {
            if (got > 0) return (ssize_t)got;
            /* In a head: every request before it is libmicrohttpd's to
             * complete first. In a body: that request can never complete. */
            if (idle(w) || w->frame.cut_body) {
                answer(w);
                return 0;
            }
            errno = EAGAIN;
            return -1;
        }
        ssize_t n;
        size_t asked;
        if (w->start == w->end) {
            /* Nothing buffered: read into libmicrohttpd's buffer (no copy). */
            w->start = w->ok = w->end = 0;
            asked = len - got;
            n = kernel_recv(w->fd, out + got, asked, 0);
            if (n > 0) got += frame_direct(w, out + got, (size_t)n);
        } else {
            /* An incomplete head or line waits: keep it, read behind it. */
            memmove(w->buf, w->buf + w->start, w->end - w->start);
            w->end -= w->start;
            w->ok -= w->start;
            w->start = 0;
            assert(w->end < WIRE_BUF);
            asked = WIRE_BUF - w->end;
            n = kernel_recv(w->fd, w->buf + w->end, asked, 0);
            if (n > 0) {
                w->end += (size_t)n;
                frame_buffered(w);
            }
        }
        if (n < 0) return got > 0 ? (ssize_t)got : -1; /* EAGAIN, or an error */
        if (n == 0) return (ssize_t)got;               /* the end of the stream (again next time) */
        if ((size_t)n < asked) {
            /* The kernel has no more: give what is accepted, and stop. */
            give(w, out, len, &got);
            if (got > 0) return (ssize_t)got;
            if (!w->doomed) {
                errno = EAGAIN;
                return -1;
            }
        }
    }
}

/* libmicrohttpd's recv (see the file's comment). */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    http_wire *w = flags == 0 ? lookup(fd) : NULL;
    if (!w) return kernel_recv(fd, buf, len, flags);
    return wire_recv(w, buf, len);
}
