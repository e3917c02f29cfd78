/*
 * The gate in front of libmicrohttpd: serve accepts connections itself and
 * reads (without consuming: MSG_PEEK) the head of each connection's first
 * request. A head that http_head_inspect accepts goes to MHD with the
 * connection (MHD_add_connection), untouched; one it rejects is answered
 * here with a JSON error and the connection closed. So a garbage request
 * line or an unsupported Transfer-Encoding gets an answer instead of
 * silence, and a malformed Content-Length gets one JSON error instead of
 * MHD's HTML page with its status line and headers sent twice.
 *
 * Later requests on a kept-alive connection: MHD reads them, but each
 * connection MHD holds has a gate_keep, registered once (EPOLLIN |
 * EPOLLRDHUP, edge-triggered: no system call per request to arm it) in the
 * gate's own epoll set, which serve's set watches. Once a request's reply
 * is queued (http_gate_keep_done), the next arrival of bytes is peeked at
 * here before MHD can read it: the loop hands out every event before it
 * runs MHD, and http_run polls the gate's set alone before each further
 * run of MHD in the same iteration (http_gate_poll). A head that
 * http_head_inspect rejects is answered with the same JSON error; the
 * socket is then shut down in both directions, so MHD reads the end of the
 * stream, sends nothing more, and closes and frees the connection itself.
 * The peek knows that it sees the start of a request because the gate
 * counts the bytes of every request MHD has begun on the connection (its
 * head as MHD measured it, plus the Content-Length body;
 * http_gate_keep_request) and, before it answers, compares them with the
 * bytes MHD has read (TCP_INFO's bytes received minus what still waits in
 * the socket): when they differ, MHD holds bytes of the next request
 * already and the gate leaves that request to MHD. After a chunked body
 * the count is unknown and the connection is left to MHD for good.
 *
 * Limits (what MHD alone still reads, as before): a later request whose
 * bytes MHD had read before the previous one completed (pipelining), a
 * later head that arrives in several pieces (the first piece is not a
 * complete head: MHD reads it), one that arrives while MHD runs and is
 * read in that same run (a client answering a reply within microseconds
 * on a busy server: under wrk on a loaded 2-core machine, 9 % of requests
 * at 4 connections and 14 % at 32 went unchecked), and every request
 * after a chunked body. A NUL in
 * their path and an unsupported Transfer-Encoding are still refused by
 * http.c's hooks; a malformed Content-Length there gets MHD's HTML page
 * (status line sent twice) and a garbage request line no answer. A
 * connection that sends no complete first head within GATE_TIMEOUT_NS is
 * closed.
 *
 * The same registration watches the client of a suspended request for a
 * hang-up (http_gate_keep_watch), as epoll takes one registration per
 * descriptor.
 *
 * Invariants: every gate_conn is on s->gate_conns and registered in the
 * epoll set under its tag until it is closed or handed to MHD, which then
 * owns the socket; at most GATE_MAX connections wait here. A gate_keep
 * lives exactly as long as MHD's connection (MHD's connection notices
 * open and free it) and is registered while its socket is open, so no
 * system call of the gate ever names a closed (and maybe reused)
 * descriptor.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <linux/tcp.h> /* tcp_info with tcpi_bytes_received (Linux 4.1) */
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "server/http.h"
#include "server/http_head.h"
#include "server/server_int.h"

#define MOD "http"
#define GATE_TIMEOUT_NS (10ull * 1000000000ull)
#define GATE_MAX 1024

struct gate_conn {
    ep_tag tag; /* EP_GATE */
    int fd;
    uint64_t deadline_ns;
    gate_conn *prev, *next;
};

struct gate_keep {
    ep_tag tag;       /* EP_KEEP */
    int fd;           /* MHD's socket, or -1 when not registered */
    bool between;     /* a reply is queued: the next bytes to arrive start the next request */
    bool lost;        /* the byte count is unknown (a chunked body): leave it all to MHD */
    uint64_t counted; /* bytes of the requests MHD has begun: heads and bodies */
    ep_tag *watch;    /* a suspended request's client tag, watched for a hang-up */
};

static void unlink_conn(server *s, gate_conn *g)
{
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, g->fd, NULL);
    if (g->prev)
        g->prev->next = g->next;
    else
        s->gate_conns = g->next;
    if (g->next) g->next->prev = g->prev;
    s->n_gate--;
}

static void drop(server *s, gate_conn *g)
{
    unlink_conn(s, g);
    close(g->fd);
    free(g);
}

static const char *reason(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

/* Answers status with {"error": msg} on fd: reads what the client sent
 * first, so that closing does not reset the connection under the answer. */
static void answer(int fd, int status, const char *msg)
{
    char sink[4096];
    while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
    }
    rouse_buf body, out;
    rouse_buf_init(&body);
    rouse_buf_init(&out);
    rouse_buf_append_str(&body, "{\"error\":");
    json_write_string(&body, msg, strlen(msg));
    rouse_buf_append_str(&body, "}\n");
    int rc = rouse_buf_appendf(&out,
                               "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                               "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                               status, reason(status), body.len);
    if (rc == 0) rc = rouse_buf_append(&out, body.data, body.len);
    if (rc == 0 && send(fd, out.data, out.len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        LOG_DEBUG(MOD, "cannot answer a rejected request: %s", strerror(errno));
    rouse_buf_fini(&body);
    rouse_buf_fini(&out);
    LOG_DEBUG(MOD, "%d before MHD: %s", status, msg);
}

static void answer_and_close(server *s, gate_conn *g, int status, const char *msg)
{
    answer(g->fd, status, msg);
    shutdown(g->fd, SHUT_WR);
    drop(s, g);
}

static void hand_to_mhd(server *s, gate_conn *g)
{
    unlink_conn(s, g);
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    if (getpeername(g->fd, (struct sockaddr *)&sa, &sl) < 0 ||
        !http_add_connection(s, g->fd, (struct sockaddr *)&sa, sl))
        LOG_DEBUG(MOD, "MHD did not take a connection: %s", strerror(errno));
    free(g); /* MHD owns (or closed) the socket */
}

void http_gate_on_conn(server *s, gate_conn *g, uint32_t events)
{
    char buf[HTTP_HEAD_MAX + 1]; /* 16 KiB of the loop thread's stack */
    ssize_t n = recv(g->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        drop(s, g); /* gone before it asked anything */
        return;
    }
    if (n < 0) {
        if (events & (EPOLLHUP | EPOLLERR)) drop(s, g);
        return;
    }
    http_head_check c;
    http_head_inspect(buf, (size_t)n, &c);
    if (c.verdict == HTTP_HEAD_REJECT)
        answer_and_close(s, g, c.status, c.msg);
    else if (c.verdict == HTTP_HEAD_OK)
        hand_to_mhd(s, g);
    else if (events & (EPOLLHUP | EPOLLRDHUP))
        drop(s, g); /* half a head and the client stopped sending */
}

/* Accepts on both listeners (the API's and --metrics-bind's): both are
 * non-blocking, so the idle one costs one EAGAIN. */
void http_gate_accept(server *s)
{
    int which = 0;
    for (;;) {
        int lfd = which == 0 ? s->listen_fd : s->metrics_fd;
        if (lfd < 0) {
            if (++which > 1) return;
            continue;
        }
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN) LOG_WARN(MOD, "accept: %s", strerror(errno));
            if (++which > 1) return;
            continue;
        }
        gate_conn *g = s->n_gate < GATE_MAX ? calloc(1, sizeof(*g)) : NULL;
        if (!g) {
            close(fd);
            continue;
        }
        g->tag.kind = EP_GATE;
        g->fd = fd;
        g->deadline_ns = rouse_now_ns() + GATE_TIMEOUT_NS;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = &g->tag};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(g);
            continue;
        }
        g->next = s->gate_conns;
        if (g->next) g->next->prev = g;
        s->gate_conns = g;
        s->n_gate++;
    }
}

int http_gate_tick(server *s)
{
    uint64_t now = rouse_now_ns(), next = 0;
    for (gate_conn *g = s->gate_conns, *nx; g; g = nx) {
        nx = g->next;
        if (now >= g->deadline_ns) {
            drop(s, g);
            continue;
        }
        if (!next || g->deadline_ns < next) next = g->deadline_ns;
    }
    return next ? (int)((next - now) / 1000000ull) + 1 : -1;
}

void http_gate_close_all(server *s)
{
    while (s->gate_conns)
        drop(s, s->gate_conns);
}

/* --- later requests on a connection MHD holds ------------------------------ */

#define KEEP_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLET)

gate_keep *http_gate_keep_open(server *s, int fd)
{
    gate_keep *k = calloc(1, sizeof(*k));
    if (!k) return NULL;
    k->tag.kind = EP_KEEP;
    k->fd = fd;
    /* An event for the first head, already there, comes at once and is
     * ignored: no reply is queued yet. */
    struct epoll_event ev = {.events = KEEP_EVENTS, .data.ptr = &k->tag};
    if (fd < 0 || epoll_ctl(s->keep_epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        LOG_DEBUG(MOD, "a connection goes unchecked: %s", strerror(errno));
        k->fd = -1;
        k->lost = true;
    }
    return k;
}

void http_gate_keep_close(server *s, gate_keep *k)
{
    if (!k) return;
    assert(!k->watch); /* the watching request ended before its connection */
    if (k->fd >= 0) epoll_ctl(s->keep_epfd, EPOLL_CTL_DEL, k->fd, NULL);
    free(k);
}

void http_gate_keep_request(gate_keep *k, size_t head_len, const char *content_length, bool chunked)
{
    if (!k) return;
    k->between = false;
    unsigned long long body = 0;
    if (content_length) {
        char *end;
        errno = 0;
        body = strtoull(content_length, &end, 10);
        if (errno || end == content_length || *end) chunked = true; /* unknown: the same */
    }
    if (chunked || body > UINT64_MAX - k->counted - head_len)
        k->lost = true;
    else
        k->counted += head_len + body;
}

void http_gate_keep_done(gate_keep *k)
{
    if (k && !k->lost) k->between = true;
}

bool http_gate_keep_watch(server *s, gate_keep *k, ep_tag *client)
{
    if (!k || k->fd < 0) return false;
    /* Edge-triggered: re-arming makes a hang-up that happened already
     * report now. */
    struct epoll_event ev = {.events = KEEP_EVENTS, .data.ptr = &k->tag};
    if (epoll_ctl(s->keep_epfd, EPOLL_CTL_MOD, k->fd, &ev) < 0) return false;
    k->watch = client;
    return true;
}

void http_gate_keep_unwatch(gate_keep *k)
{
    if (k) k->watch = NULL;
}

/* True when MHD has read exactly the bytes of the requests counted so far:
 * what waits in the socket is where the next request starts. */
static bool at_request_start(const gate_keep *k)
{
    struct tcp_info ti;
    socklen_t tl = sizeof(ti);
    int inq;
    if (getsockopt(k->fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0 ||
        tl < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received) ||
        ioctl(k->fd, FIONREAD, &inq) < 0 || inq < 0)
        return false;
    uint64_t received = ti.tcpi_bytes_received;
    /* The client's FIN counts as one byte received and none waiting (8:
     * TCP_CLOSE_WAIT, which this header does not name). */
    if (ti.tcpi_state == 8 && received > 0) received--;
    return received >= (uint64_t)inq && received - (uint64_t)inq == k->counted;
}

static void on_keep(gate_keep *k, uint32_t events)
{
    if (k->watch && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        http_on_client_event(k->watch); /* unwatches */
    if (!k->between || !(events & EPOLLIN)) return;
    char buf[HTTP_HEAD_MAX + 1]; /* 16 KiB of the loop thread's stack */
    ssize_t n = recv(k->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) return;  /* nothing after all: wait for the next arrival */
    k->between = false; /* one look per request: a head in pieces is MHD's */
    if (n == 0) return; /* the end of the stream: MHD closes */
    http_head_check c;
    http_head_inspect(buf, (size_t)n, &c);
    if (c.verdict != HTTP_HEAD_REJECT || !at_request_start(k)) return;
    k->lost = true;
    answer(k->fd, c.status, c.msg);
    shutdown(k->fd, SHUT_RDWR);
}

void http_gate_poll(server *s)
{
    struct epoll_event evs[64];
    int n;
    do {
        n = epoll_wait(s->keep_epfd, evs, 64, 0);
        for (int i = 0; i < n; i++)
            on_keep(evs[i].data.ptr, evs[i].events);
    } while (n == 64);
}
