/*
 * Test support: a small private network for tests of several nodes. Each
 * node gets a network namespace of its own (`ip netns`), joined to a bridge
 * in the test's namespace by a veth pair; the bridge has the first address
 * of a /24 that the test picks (10.231.X.0/24), node i the address .(10+i).
 * Servers the nodes share (PostgreSQL, NATS) listen on the bridge's
 * address. Only those addresses and each namespace's loopback are used.
 * Needs root and iproute2; test_net_create returns 1 (with the reason in
 * why: the caller skips) where namespaces cannot be made.
 * Test code: failures return -1 with a line on stderr.
 */
#ifndef ROUSE_TESTS_TEST_NET_H
#define ROUSE_TESTS_TEST_NET_H

#include <stddef.h>

#define TEST_NET_MAX 4

typedef struct test_net {
    int n;
    char bridge[16];
    char host_addr[16]; /* the bridge's address, e.g. 10.231.7.1 */
    char ns[TEST_NET_MAX][24];
    char addr[TEST_NET_MAX][16];
    char veth[TEST_NET_MAX][16];
} test_net;

int test_net_create(test_net *t, int n, char *why, size_t why_len);

/* The path of node i's namespace (for setns, serve_proc_start_in). */
void test_net_ns_path(const test_net *t, int i, char *out, size_t cap);

/* Cuts node i off the bridge (its link down) or joins it again: a node that
 * the others cannot reach while it still runs. */
int test_net_link(const test_net *t, int i, int up);

/* Removes the namespaces, the veth pairs and the bridge. Safe twice. */
void test_net_destroy(test_net *t);

#endif
