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
 * Later requests on a kept-alive connection, and the bodies of all of
 * them: MHD reads them through serve's framing of the connection's stream
 * (http_wire.c, attached when MHD takes the connection), which refuses a
 * bad request with the same JSON error however it arrives (pipelined,
 * split across packets, after a chunked body). Over TLS the stream is
 * ciphertext: MHD and http.c's hooks alone check those requests (a NUL in
 * the path and an unsupported Transfer-Encoding are refused there; a
 * malformed Content-Length gets MHD's HTML page). A connection that sends
 * no complete first head within GATE_TIMEOUT_NS is closed.
 *
 * Each connection MHD holds has a gate_keep, registered once
 * (EPOLLRDHUP, edge-triggered) in the gate's own epoll set, which serve's
 * set watches. It watches the client of a suspended request for a hang-up
 * (http_gate_keep_watch), as epoll takes one registration per descriptor.
 *
 * Connection limits, applied as connections are accepted: at most
 * max_conns at once (those at the gate and those MHD holds; the default
 * stays below the descriptor limit, see loop.c), and at most
 * max_per_client from one client address (conn_table.h). When serve is
 * full, the idlest connection makes room: the one at the gate waiting
 * longest for its first head, or the one MHD holds that has been idle
 * longest between requests (never one with a request in progress). When
 * none is idle, or the client has its share already, the new connection
 * gets a 503 and is closed. A connection MHD holds that begins no request
 * within the idle timeout is closed too, which also ends a later head
 * trickled in byte by byte. Over TLS the gate reads nothing (the bytes
 * are ciphertext): connections go to MHD at once, which does the
 * handshake, and their heads are checked by MHD and http.c's hooks alone.
 *
 * Invariants: every gate_conn is on s->gate_conns (newest first, so in
 * the order of their deadlines from the tail, s->gate_tail) and
 * registered in the epoll set under its tag until it is closed or handed
 * to MHD, which then owns the socket (one closed to make room for an
 * accept stays allocated on s->gate_gone until the loop has handed out
 * that wait's events, as its own may be among them). n_gate + n_keep_live <= max_conns
 * after every accept; each gate_conn and each live gate_keep counts once
 * for its client in s->clients. A gate_keep is on the idle list (oldest
 * idle first) exactly while it is live and has no request in progress. A gate_keep
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
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "server/conn_table.h"
#include "server/http.h"
#include "server/http_head.h"
#include "server/http_wire.h"
#include "server/server_int.h"
#include "server/tls.h"

#define MOD "http"
#define GATE_TIMEOUT_NS (10ull * 1000000000ull)

struct gate_conn {
    ep_tag tag; /* EP_GATE */
    int fd;
    uint64_t deadline_ns;
    conn_key client;
    gate_conn *prev, *next;
};

struct gate_keep {
    ep_tag tag;       /* EP_KEEP */
    server *s;
    int fd;           /* MHD's socket, or -1 when not registered */
    int sock;         /* MHD's socket (also when not registered) */
    bool live;        /* counted in n_keep_live and s->clients; false once evicted */
    bool idle;        /* on the idle list: no request in progress */
    uint64_t idle_since_ns;
    gate_keep *iprev, *inext;
    conn_key client;
    tls_ref tls;     /* the certificates current when it opened (TLS only) */
    http_wire *wire; /* its stream, read before MHD (plain HTTP only), or NULL */
    ep_tag *watch;   /* a suspended request's client tag, watched for a hang-up */
};

static void unlink_conn(server *s, gate_conn *g)
{
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, g->fd, NULL);
    if (g->prev)
        g->prev->next = g->next;
    else
        s->gate_conns = g->next;
    if (g->next)
        g->next->prev = g->prev;
    else
        s->gate_tail = g->prev;
    s->n_gate--;
}

static void drop(server *s, gate_conn *g)
{
    unlink_conn(s, g);
    conn_table_del(s->clients, &g->client);
    close(g->fd);
    free(g);
}

/* drop for a connection other than the one whose event is being handled:
 * its own event may still wait among those of the same wait, so the memory
 * stays, tagged EP_GONE (which the loop skips), until http_gate_reap. */
static void drop_later(server *s, gate_conn *g)
{
    unlink_conn(s, g);
    conn_table_del(s->clients, &g->client);
    close(g->fd);
    g->tag.kind = EP_GONE;
    g->prev = NULL;
    g->next = s->gate_gone;
    s->gate_gone = g;
}

void http_gate_reap(server *s)
{
    while (s->gate_gone) {
        gate_conn *g = s->gate_gone;
        s->gate_gone = g->next;
        free(g);
    }
}

static void idle_remove(server *s, gate_keep *k)
{
    if (!k->idle) return;
    k->idle = false;
    if (k->iprev)
        k->iprev->inext = k->inext;
    else
        s->idle_head = k->inext;
    if (k->inext)
        k->inext->iprev = k->iprev;
    else
        s->idle_tail = k->iprev;
    k->iprev = k->inext = NULL;
}

static void idle_append(server *s, gate_keep *k)
{
    if (!k->live || k->idle) return;
    k->idle = true;
    k->idle_since_ns = rouse_now_ns();
    k->inext = NULL;
    k->iprev = s->idle_tail;
    if (s->idle_tail)
        s->idle_tail->inext = k;
    else
        s->idle_head = k;
    s->idle_tail = k;
}

/* Stops counting k and shuts its socket down both ways: MHD reads the end
 * of the stream, sends nothing more, and closes and frees the connection
 * itself on its next run (http_gate_keep_close then frees k). */
static void keep_evict(server *s, gate_keep *k)
{
    if (!k->live) return;
    idle_remove(s, k);
    k->live = false;
    s->n_keep_live--;
    conn_table_del(s->clients, &k->client);
    shutdown(k->sock, SHUT_RDWR);
    s->mhd_kick = true;
}

static void answer_and_close(server *s, gate_conn *g, int status, const char *msg)
{
    http_wire_answer(g->fd, status, msg, s->node_name);
    shutdown(g->fd, SHUT_WR);
    drop(s, g);
}

static void hand_to_mhd(server *s, gate_conn *g)
{
    unlink_conn(s, g);
    conn_table_del(s->clients, &g->client); /* its gate_keep counts it from here */
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

/* Makes room for one more connection when serve holds max_conns: closes
 * the idlest one. False when every connection has a request in progress. */
static bool make_room(server *s)
{
    if (s->n_gate + s->n_keep_live < s->max_conns) return true;
    /* The oldest at the gate has waited longest for a head; compare it with
     * the connection idle longest between requests. */
    gate_conn *g = s->gate_tail; /* the oldest: the list is newest first */
    gate_keep *k = s->idle_head;
    uint64_t g_since = g ? g->deadline_ns - GATE_TIMEOUT_NS : UINT64_MAX;
    uint64_t k_since = k ? k->idle_since_ns : UINT64_MAX;
    if (!g && !k) return false;
    s->n_evicted++;
    if (g && g_since <= k_since)
        drop_later(s, g);
    else
        keep_evict(s, k);
    return true;
}

/* Answers a connection that is not taken (plain HTTP only: over TLS the
 * client would read a 503 as a broken handshake) and closes it. */
static void refuse(server *s, int fd, const char *msg)
{
    s->n_refused++;
    if (!s->tls) {
        http_wire_answer(fd, 503, msg, s->node_name);
        shutdown(fd, SHUT_WR);
    }
    close(fd);
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
        struct sockaddr_storage sa;
        socklen_t sl = sizeof(sa);
        int fd = accept4(lfd, (struct sockaddr *)&sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN) LOG_WARN(MOD, "accept: %s", strerror(errno));
            if (++which > 1) return;
            continue;
        }
        conn_key client;
        conn_key_of((struct sockaddr *)&sa, sl, &client);
        char msg[160];
        if (s->max_per_client > 0 && conn_table_count(s->clients, &client) >= s->max_per_client) {
            char who[64];
            conn_key_format(&client, who, sizeof(who));
            snprintf(msg, sizeof(msg), "too many connections from %s (at most %u per client)", who,
                     s->max_per_client);
            refuse(s, fd, msg);
            continue;
        }
        if (!make_room(s)) {
            snprintf(msg, sizeof(msg),
                     "serve holds its limit of %d connections, each with a request in progress",
                     s->max_conns);
            refuse(s, fd, msg);
            continue;
        }
        if (s->tls) {
            /* MHD does the handshake; its connection notice counts it. */
            if (!http_add_connection(s, fd, (struct sockaddr *)&sa, sl))
                LOG_DEBUG(MOD, "MHD did not take a connection: %s", strerror(errno));
            continue;
        }
        gate_conn *g = calloc(1, sizeof(*g));
        if (!g || conn_table_add(s->clients, &client) < 0) {
            free(g);
            close(fd);
            continue;
        }
        g->tag.kind = EP_GATE;
        g->fd = fd;
        g->client = client;
        g->deadline_ns = rouse_now_ns() + GATE_TIMEOUT_NS;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = &g->tag};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            conn_table_del(s->clients, &client);
            close(fd);
            free(g);
            continue;
        }
        g->next = s->gate_conns;
        if (g->next)
            g->next->prev = g;
        else
            s->gate_tail = g;
        s->gate_conns = g;
        s->n_gate++;
    }
}

int http_gate_tick(server *s)
{
    uint64_t now = rouse_now_ns(), next = 0;
    /* Deadlines follow the order of accepts: the oldest, at the tail, first. */
    gate_conn *g;
    while ((g = s->gate_tail) && now >= g->deadline_ns) {
        s->n_timed_out++;
        drop(s, g);
    }
    if (g) next = g->deadline_ns;
    /* Idle kept-alive connections, oldest first. */
    gate_keep *k;
    while ((k = s->idle_head) && now - k->idle_since_ns >= s->idle_timeout_ns) {
        s->n_timed_out++;
        keep_evict(s, k);
    }
    if (k && (!next || k->idle_since_ns + s->idle_timeout_ns < next))
        next = k->idle_since_ns + s->idle_timeout_ns;
    return next ? (int)((next - now) / 1000000ull) + 1 : -1;
}

void http_gate_close_all(server *s)
{
    while (s->gate_conns)
        drop(s, s->gate_conns);
    http_gate_reap(s);
}

/* --- later requests on a connection MHD holds ------------------------------ */

#define KEEP_EVENTS (EPOLLRDHUP | EPOLLET)

gate_keep *http_gate_keep_open(server *s, int fd)
{
    gate_keep *k = calloc(1, sizeof(*k));
    if (!k) return NULL;
    k->tag.kind = EP_KEEP;
    k->s = s;
    k->fd = fd;
    k->sock = fd;
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&sa, &sl) < 0) sl = 0;
    conn_key_of(sl ? (struct sockaddr *)&sa : NULL, sl, &k->client);
    if (conn_table_add(s->clients, &k->client) == 0) {
        k->live = true;
        s->n_keep_live++;
        /* A plain connection comes with its first head, which MHD reads on
         * its next run; a TLS one is idle until its first request begins
         * (the handshake first). */
        if (s->tls) idle_append(s, k);
    }
    if (s->tls)
        k->tls = tls_conn_open(s->tls); /* ciphertext: nothing for the wire to read */
    else if (fd >= 0 && !(k->wire = http_wire_attach(fd)))
        LOG_DEBUG(MOD, "a connection goes unchecked: out of memory or descriptors");
    struct epoll_event ev = {.events = KEEP_EVENTS, .data.ptr = &k->tag};
    if (fd < 0 || epoll_ctl(s->keep_epfd, EPOLL_CTL_ADD, fd, &ev) < 0) k->fd = -1;
    return k;
}

void http_gate_keep_close(server *s, gate_keep *k)
{
    if (!k) return;
    assert(!k->watch); /* the watching request ended before its connection */
    if (k->fd >= 0) epoll_ctl(s->keep_epfd, EPOLL_CTL_DEL, k->fd, NULL);
    http_wire_detach(k->wire);
    if (k->live) {
        idle_remove(s, k);
        s->n_keep_live--;
        conn_table_del(s->clients, &k->client);
    }
    if (s->tls) tls_conn_close(s->tls, k->tls);
    free(k);
}

void http_gate_keep_request(gate_keep *k)
{
    if (k) idle_remove(k->s, k);
}

void http_gate_keep_idle(gate_keep *k)
{
    if (!k) return;
    idle_append(k->s, k);
    /* A request refused while this one was in progress is answered now. */
    if (http_wire_request_done(k->wire)) k->s->mhd_kick = true;
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

static void on_keep(gate_keep *k, uint32_t events)
{
    if (k->watch && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        http_on_client_event(k->watch); /* unwatches */
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
