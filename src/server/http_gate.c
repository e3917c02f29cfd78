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
 * Limits: later requests on a kept-alive connection are read by MHD alone
 * (a NUL in their path is still refused by http.c's URI hook). A
 * connection that sends no complete head within GATE_TIMEOUT_NS is closed.
 *
 * Invariants: every gate_conn is on s->gate_conns and registered in the
 * epoll set under its tag until it is closed or handed to MHD, which then
 * owns the socket; at most GATE_MAX connections wait here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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

/* Answers status with {"error": msg} and closes: reads what the client
 * sent first, so that closing does not reset the connection under the
 * answer. */
static void answer_and_close(server *s, gate_conn *g, int status, const char *msg)
{
    char sink[4096];
    while (recv(g->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
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
    if (rc == 0 && send(g->fd, out.data, out.len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        LOG_DEBUG(MOD, "cannot answer a rejected request: %s", strerror(errno));
    rouse_buf_fini(&body);
    rouse_buf_fini(&out);
    shutdown(g->fd, SHUT_WR);
    LOG_DEBUG(MOD, "%d before MHD: %s", status, msg);
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

void http_gate_accept(server *s)
{
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN) LOG_WARN(MOD, "accept: %s", strerror(errno));
            return;
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
