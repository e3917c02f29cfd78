/*
 * Connections per client (conn_table.h): keys of IPv4 and IPv6 peers (a
 * /64 is one client), and counts through many adds and deletes checked
 * against a plain array, across growth and backward-shift deletion.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "server/conn_table.h"

static void key4(const char *ip, conn_key *k)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(1234)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    conn_key_of((struct sockaddr *)&sa, sizeof(sa), k);
}

static void key6(const char *ip, conn_key *k)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(1234)};
    inet_pton(AF_INET6, ip, &sa.sin6_addr);
    conn_key_of((struct sockaddr *)&sa, sizeof(sa), k);
}

static void test_keys(void **state)
{
    (void)state;
    conn_key a, b;
    char s[64];
    key4("127.0.0.1", &a);
    conn_key_format(&a, s, sizeof(s));
    assert_string_equal(s, "127.0.0.1");
    key6("::ffff:127.0.0.1", &b); /* the same client over a v4-mapped socket */
    assert_memory_equal(&a, &b, sizeof(a));
    key6("2001:db8:1:2:aaaa::1", &a);
    key6("2001:db8:1:2:bbbb::2", &b);
    assert_memory_equal(&a, &b, sizeof(a)); /* one /64 */
    conn_key_format(&a, s, sizeof(s));
    assert_string_equal(s, "2001:db8:1:2::/64");
    key6("2001:db8:1:3::1", &b);
    assert_memory_not_equal(&a, &b, sizeof(a));
    conn_key_of(NULL, 0, &a);
    conn_key z;
    memset(&z, 0, sizeof(z));
    assert_memory_equal(&a, &z, sizeof(a));
}

/* 3000 clients in a pseudo-random order of adds and deletes. */
static void test_counts(void **state)
{
    (void)state;
    enum { N = 3000 };
    static uint32_t want[N];
    memset(want, 0, sizeof(want));
    conn_table *t = conn_table_create();
    assert_non_null(t);
    uint64_t x = 88172645463325252ull;
    size_t clients = 0;
    for (int step = 0; step < 200000; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int i = (int)(x % N);
        conn_key k;
        char ip[32];
        snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        key4(ip, &k);
        if ((x >> 32) % 3 != 0 || want[i] == 0) {
            assert_int_equal(conn_table_add(t, &k), 0);
            if (want[i]++ == 0) clients++;
        } else {
            conn_table_del(t, &k);
            if (--want[i] == 0) clients--;
        }
        assert_int_equal(conn_table_count(t, &k), want[i]);
        if (step % 5000 == 0) {
            for (int j = 0; j < N; j++) {
                snprintf(ip, sizeof(ip), "10.%d.%d.%d", j >> 16, (j >> 8) & 255, j & 255);
                key4(ip, &k);
                assert_int_equal(conn_table_count(t, &k), want[j]);
            }
        }
        assert_int_equal(conn_table_clients(t), clients);
    }
    conn_table_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
