/*
 * The HTTP layer as seen by the event loop (server/loop.c): the daemon's
 * life cycle, its timeouts, and the events of clients it watches.
 */
#ifndef ROUSE_SERVER_HTTP_H
#define ROUSE_SERVER_HTTP_H

#include "rouse/err.h"
#include "server/ep.h"

struct server;

/* Starts MHD on srv->listen_fd in external epoll mode. Returns MHD's epoll
 * descriptor (to watch for EPOLLIN) or a negative code. */
int http_start(struct server *srv, rouse_errbuf *eb);
/* Lets MHD do whatever is ready (accept, read, call handlers, write). */
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

#endif
