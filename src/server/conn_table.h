/*
 * Connections per client: a count for each client address, so that one
 * client cannot hold every connection serve takes (http_gate.c asks before
 * it accepts one more). A client is an IPv4 address, or the /64 prefix of
 * an IPv6 address (one host is usually given a whole /64). An open-address
 * hash table with linear probing, grown at 3/4 full; an entry leaves it
 * when its count drops to 0, so its size follows the clients connected
 * now, not every client ever seen. Pure data: tested from a table.
 */
#ifndef ROUSE_SERVER_CONN_TABLE_H
#define ROUSE_SERVER_CONN_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct conn_key {
    uint8_t b[16]; /* IPv4 as ::ffff:a.b.c.d; IPv6 with its last 64 bits zero */
} conn_key;

/* The client of a peer address; an unknown family (or NULL) is the zero key. */
void conn_key_of(const struct sockaddr *sa, socklen_t sl, conn_key *out);

/* "a.b.c.d" or "x:x:x:x::/64", for messages. */
void conn_key_format(const conn_key *k, char *buf, size_t len);

typedef struct conn_table conn_table;

/* Owned: free with conn_table_destroy. NULL when out of memory. */
conn_table *conn_table_create(void);
void conn_table_destroy(conn_table *t);

/* The count of k (0 when absent). */
uint32_t conn_table_count(const conn_table *t, const conn_key *k);
/* Counts one more connection of k: 0, or ROUSE_ENOMEM (nothing changed). */
int conn_table_add(conn_table *t, const conn_key *k);
/* Counts one fewer; k must have been added. */
void conn_table_del(conn_table *t, const conn_key *k);
/* Clients with at least one connection. */
size_t conn_table_clients(const conn_table *t);

#endif
