/*
 * Test support: a throwaway NATS server with JetStream (`nats-server -js`)
 * for the tests of several nodes (`rouse serve --bus nats://...`), on a
 * free port with its store in a temporary directory.
 * Test code: failures return -1 with a line on stderr.
 */
#ifndef ROUSE_TESTS_NATS_SERVER_H
#define ROUSE_TESTS_NATS_SERVER_H

#include <stddef.h>
#include <sys/types.h>

typedef struct nats_server {
    pid_t pid;
    char root[512]; /* temporary directory: the JetStream store, the log */
    char listen[64];
    int port;
    char url[128]; /* nats://HOST:PORT */
} nats_server;

/* Starts nats-server -js on `listen` (NULL = "127.0.0.1") and a free port.
 * 0 when it accepts connections, 1 when nats-server is not installed (why
 * says so: the caller skips), -1 on failure. */
int nats_server_start(nats_server *n, const char *listen, char *why, size_t why_len);

/* Stops it (SIGTERM) keeping its store, and starts it again on the same
 * port: JetStream's streams and their messages survive. */
int nats_server_pause(nats_server *n);
int nats_server_resume(nats_server *n);

/* Stops it and removes its directory. Safe to call twice. */
void nats_server_stop(nats_server *n);

#endif
