/*
 * The HTTP daemon's life cycle as seen by the event loop (server/loop.c).
 */
#ifndef ROUSE_SERVER_HTTP_H
#define ROUSE_SERVER_HTTP_H

#include "rouse/err.h"

struct server;

/* Starts MHD on srv->listen_fd in external epoll mode. Returns MHD's epoll
 * descriptor (to watch for EPOLLIN) or a negative code. */
int http_start(struct server *srv, rouse_errbuf *eb);
/* Lets MHD do whatever is ready (accept, read, call handlers, write). */
void http_run(struct server *srv);
/* ms until MHD needs to run for its own timeouts, or -1. */
int http_timeout_ms(struct server *srv);
/* Closes the listening socket; existing connections continue. */
void http_stop_accepting(struct server *srv);
void http_stop(struct server *srv);

#endif
