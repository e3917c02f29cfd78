/*
 * The byte stream of each plain-HTTP connection libmicrohttpd holds, read
 * by serve before libmicrohttpd sees it (http_wire.c): every request of a
 * kept-alive connection, pipelined, split across packets or after a
 * chunked body, is framed and checked (http_frame_scan), and one that is
 * refused gets one JSON error and the connection closed, never
 * libmicrohttpd's HTML page or silence.
 */
#ifndef ROUSE_SERVER_HTTP_WIRE_H
#define ROUSE_SERVER_HTTP_WIRE_H

#include <stdbool.h>

typedef struct http_wire http_wire;

/* Makes room for connections on descriptors below max_fd (the descriptor
 * limit): the first call, before the first attach; the table stays for
 * the process's life. 0, or -1 when out of memory. */
int http_wire_init(int max_fd);

/* Reads fd's stream from here on (its first byte is the first request's):
 * NULL when it cannot (out of memory, fd past the limit given to
 * http_wire_init), and the connection then goes unchecked. */
http_wire *http_wire_attach(int fd);
/* Before the descriptor is closed. NULL is ignored. */
void http_wire_detach(http_wire *w);

/* libmicrohttpd completed a request on the connection (its reply is out).
 * True when that answered a request refused while it was in progress: the
 * connection is shut down and libmicrohttpd must run to close it. */
bool http_wire_request_done(http_wire *w);

/* Answers status with {"error": msg} and "Connection: close" on fd (what
 * the client sent first is read and dropped, so that closing does not
 * reset the connection under the answer); node: Rouse-Node, or NULL. */
void http_wire_answer(int fd, int status, const char *msg, const char *node);

#endif
