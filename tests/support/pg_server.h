/*
 * Test support: a throwaway PostgreSQL server for the tests of the shared
 * state (`rouse serve --state postgres://...`): initdb in a temporary
 * directory, the server on a free port, removed again by pg_server_stop.
 * Run as root, the cluster belongs to the `postgres` system user that
 * Debian's package creates (PostgreSQL refuses to run as root); otherwise
 * to the caller. Trust authentication for the role "rouse" on the
 * addresses it listens on, so the URL needs no password.
 * Test code: failures return -1 with a line on stderr.
 */
#ifndef ROUSE_TESTS_PG_SERVER_H
#define ROUSE_TESTS_PG_SERVER_H

#include <stddef.h>

typedef struct pg_server {
    char bin[256];  /* the server's bin directory (initdb, pg_ctl) */
    char root[512]; /* temporary directory: data/, sock/, log */
    char listen[128];
    int port;
    char url[256]; /* postgres://rouse@HOST:PORT/postgres */
    int running;
} pg_server;

/* Starts a new server listening on `listen` (comma-separated addresses;
 * NULL = "127.0.0.1") on a free port. Returns 0 when it accepts
 * connections, 1 when PostgreSQL is not installed here (why says so: the
 * caller skips), -1 on failure. */
int pg_server_start(pg_server *p, const char *listen, char *why, size_t why_len);

/* Stops the server (fast shutdown) and starts it again on the same port
 * and data: what a restart of the database under load looks like. */
int pg_server_restart(pg_server *p);

/* Stops it (fast shutdown) without removing anything; pg_server_resume
 * starts it again. For tests of a database that is away for a while. */
int pg_server_pause(pg_server *p);
int pg_server_resume(pg_server *p);

/* Stops the server and removes its directory. Safe to call twice. */
void pg_server_stop(pg_server *p);

/* Runs one SQL statement through psql against the server; its output
 * (unaligned, tuples only) into out when out is not NULL. 0 or -1. */
int pg_server_sql(const pg_server *p, const char *sql, char *out, size_t out_len);

#endif
