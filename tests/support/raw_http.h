/*
 * Test support: HTTP/1.1 over plain sockets, for tests that need what a
 * client library hides: a chosen source address on loopback (127.0.0.2 is
 * another client than 127.0.0.1), half-sent heads, many connections held
 * open, and whether serve closed one.
 * Test code: failures return -1.
 */
#ifndef ROUSE_TESTS_RAW_HTTP_H
#define ROUSE_TESTS_RAW_HTTP_H

#include <stdbool.h>
#include <stddef.h>

/* A blocking TCP connection to 127.0.0.1:port from src (NULL: any), or -1. */
int raw_connect(const char *src, int port);

/* Writes all of s; -1 when the connection is gone. */
int raw_send(int fd, const char *s, size_t len);

/* Reads one response (head and its Content-Length body, or up to the
 * peer's close) into buf (NUL-terminated), waiting at most timeout_ms for
 * each piece. Its status, 0 when the connection closed with nothing sent,
 * -1 on a timeout or error. */
int raw_response(int fd, char *buf, size_t len, int timeout_ms);

/* True when serve has closed the connection (a read returns the end or a
 * reset) within timeout_ms; what it sent first is discarded. */
bool raw_closed(int fd, int timeout_ms);

/* One request on a new connection from src: "GET path", the status (or
 * -1/0 as raw_response), the response in buf when given. */
int raw_get(const char *src, int port, const char *path, char *buf, size_t len, int timeout_ms);

#endif
