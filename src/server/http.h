/*
 * The HTTP layer as seen by the event loop (server/loop.c): the daemon's
 * life cycle, its timeouts, and the events of clients it watches.
 */
#ifndef ROUSE_SERVER_HTTP_H
#define ROUSE_SERVER_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "rouse/err.h"
#include "server/ep.h"

struct server;

/* Starts MHD in external epoll mode without a listening socket of its own
 * (the gate hands it connections). Returns MHD's epoll descriptor (to watch
 * for EPOLLIN) or a negative code. */
int http_start(struct server *srv, rouse_errbuf *eb);
/* Lets MHD do whatever is ready (read, call handlers, write). */
void http_run(struct server *srv);
/* ms until MHD needs to run for its own timeouts, or -1. */
int http_timeout_ms(struct server *srv);
/* Watches the clients of requests suspended for WATCH_AFTER_NS; returns ms
 * until the next one is due, or -1. */
int http_tick(struct server *srv);
/* An EP_CLIENT event: the client of a suspended request hung up. */
void http_on_client_event(ep_tag *tag);
/* Closes the listening socket; existing connections continue. */
void http_stop_accepting(struct server *srv);
void http_stop(struct server *srv);
/* Gives MHD a connection the gate let through (MHD owns fd from here,
 * also when this fails). */
bool http_add_connection(struct server *srv, int fd, const struct sockaddr *sa, socklen_t sl);

/* The gate (http_gate.c): serve accepts connections on srv->listen_fd and
 * checks each first request head before MHD sees it. */
struct gate_conn;
void http_gate_accept(struct server *srv);
void http_gate_on_conn(struct server *srv, struct gate_conn *g, uint32_t events);
/* Closes connections that sent no head in time; ms to the next such
 * deadline, or -1. */
int http_gate_tick(struct server *srv);
/* Frees the gate's connections closed while the loop handed out one
 * wait's events (an accept makes room by closing one whose event may still
 * be among them): the loop calls it after the last of them. */
void http_gate_reap(struct server *srv);
void http_gate_close_all(struct server *srv);

/* The gate's record of a connection MHD holds (see http_gate.c): one
 * gate_keep per connection, opened and closed by MHD's connection notices
 * (keep_open returns NULL when out of memory: the connection then goes
 * unchecked and uncounted). */
struct gate_keep;
struct gate_keep *http_gate_keep_open(struct server *srv, int fd);
void http_gate_keep_close(struct server *srv, struct gate_keep *k);
/* MHD began a request on the connection: it is not idle. */
void http_gate_keep_request(struct gate_keep *k);
/* Its request completed (the reply is out): the connection is idle until
 * the next request begins, and may be closed first when serve is full; a
 * later request refused meanwhile is answered now (http_wire.c). */
void http_gate_keep_idle(struct gate_keep *k);
/* Handles what the gate's set of MHD connections reports (an EP_KEEP_SET
 * event): clients of suspended requests that hung up. */
void http_gate_poll(struct server *srv);
/* Watches the connection for a hang-up, reported as an EP_CLIENT event
 * to http_on_client_event(client); false when the connection has no
 * registration to do it with. */
bool http_gate_keep_watch(struct server *srv, struct gate_keep *k, ep_tag *client);
void http_gate_keep_unwatch(struct gate_keep *k);

#endif
