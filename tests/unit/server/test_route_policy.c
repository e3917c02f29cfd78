/*
 * The routing policy of several nodes from tables of (this node's load,
 * the peers' load) -> where the call runs, and the spread of min.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/route_policy.h"

#define NONE {false, 0, 0, 0, 0, 0}
/* known, instances, idle, startable, free, queued */
#define L(inst, idle, start, free, q) {true, inst, idle, start, free, q}

static void test_decide(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        bool forwarded;
        int slots_free;
        route_load local;
        int n_peers;
        route_peer peers[3];
        int want_peer;
        route_why want_why;
    } cases[] = {
        {"forwarded runs here, even busy", true, 0, L(1, 0, 0, 0, 5), 1,
         {{10, 4, L(1, 1, 3, 4, 0)}}, -1, ROUTE_FORWARDED},
        {"no peer", false, 0, L(1, 0, 0, 0, 5), 0, {{0}}, -1, ROUTE_ALONE},
        {"only stale peers", false, 0, L(1, 0, 0, 0, 5), 2,
         {{1001, 4, L(1, 1, 3, 4, 0)}, {5000, 4, L(1, 1, 3, 4, 0)}}, -1, ROUTE_ALONE},
        {"zero anywhere: here on a tie", false, 4, NONE, 1, {{10, 4, NONE}}, -1,
         ROUTE_FROM_ZERO},
        {"zero anywhere: the least loaded peer", false, 1, NONE, 2,
         {{10, 3, NONE}, {10, 6, NONE}}, 1, ROUTE_FROM_ZERO},
        {"zero anywhere: a stale peer does not count", false, 1, NONE, 2,
         {{10, 3, NONE}, {2000, 6, NONE}}, 0, ROUTE_FROM_ZERO},
        {"zero here, known elsewhere, free here: start here", false, 2, NONE, 1,
         {{10, 4, L(1, 0, 3, 3, 0)}}, -1, ROUTE_START},
        {"warm here", false, 0, L(1, 1, 0, 1, 0), 1, {{10, 4, L(1, 2, 3, 5, 0)}}, -1,
         ROUTE_WARM},
        {"can start here", false, 2, L(1, 0, 1, 2, 0), 1, {{10, 4, L(1, 2, 3, 5, 0)}}, -1,
         ROUTE_START},
        {"could start here but calls wait: warm peer", false, 2, L(1, 0, 1, 2, 1), 1,
         {{10, 4, L(1, 2, 3, 5, 0)}}, 0, ROUTE_WARM},
        {"busy here: the peer with most idle", false, 0, L(1, 0, 0, 1, 0), 3,
         {{10, 4, L(1, 1, 0, 1, 0)}, {10, 4, L(2, 2, 0, 2, 0)}, {10, 4, L(1, 0, 3, 5, 0)}}, 1,
         ROUTE_WARM},
        {"busy here: a stale warm peer is skipped", false, 0, L(1, 0, 0, 1, 0), 2,
         {{1500, 4, L(1, 3, 0, 3, 0)}, {10, 4, L(1, 0, 2, 4, 0)}}, 1, ROUTE_CAPACITY},
        {"busy here: the peer with most free capacity", false, 0, L(1, 0, 0, 1, 0), 2,
         {{10, 4, L(1, 0, 1, 2, 0)}, {10, 4, L(1, 0, 2, 3, 0)}}, 1, ROUTE_CAPACITY},
        {"busy here: a peer without the version takes one", false, 0, L(1, 0, 0, 1, 0), 1,
         {{10, 2, NONE}}, 0, ROUTE_CAPACITY},
        {"busy everywhere: queue here", false, 0, L(1, 0, 0, 1, 3), 2,
         {{10, 0, L(1, 0, 0, 0, 2)}, {10, 0, NONE}}, -1, ROUTE_QUEUE},
        {"busy everywhere, no instance here: the shortest queue per instance", false, 0,
         L(0, 0, 0, 0, 0), 3,
         {{10, 0, L(1, 0, 0, 0, 3)}, {10, 0, L(2, 0, 0, 0, 4)}, {2000, 0, L(4, 0, 0, 0, 0)}}, 1,
         ROUTE_QUEUE},
        {"busy everywhere, no instance here: wait at the peer's", false, 0, NONE, 1,
         {{10, 0, L(1, 0, 0, 0, 0)}}, 0, ROUTE_QUEUE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        route_input in = {.forwarded = cases[i].forwarded,
                          .slots_free = cases[i].slots_free,
                          .local = cases[i].local,
                          .peers = cases[i].peers,
                          .n_peers = cases[i].n_peers,
                          .max_age_ms = 1000};
        route_decision d = route_decide(&in);
        if (d.peer != cases[i].want_peer || d.why != cases[i].want_why)
            fail_msg("case %zu (%s): got peer %d (%s), want %d (%s)", i, cases[i].what, d.peer,
                     route_why_name(d.why), cases[i].want_peer, route_why_name(cases[i].want_why));
    }
}

static void test_min_share(void **state)
{
    (void)state;
    static const struct {
        int min, rank, n, want;
    } cases[] = {
        {0, 0, 3, 0}, {1, 0, 1, 1}, {5, 0, 1, 5}, {1, 0, 3, 1}, {1, 1, 3, 0}, {1, 2, 3, 0},
        {2, 0, 3, 1}, {2, 1, 3, 1}, {2, 2, 3, 0}, {3, 2, 3, 1}, {4, 0, 3, 2}, {4, 1, 3, 1},
        {4, 2, 3, 1}, {7, 0, 2, 4}, {7, 1, 2, 3}, {3, 0, 0, 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = route_min_share(cases[i].min, cases[i].rank, cases[i].n);
        if (got != cases[i].want)
            fail_msg("min %d rank %d of %d: got %d want %d", cases[i].min, cases[i].rank,
                     cases[i].n, got, cases[i].want);
    }
    /* The shares add up to min for every n. */
    for (int min = 0; min < 20; min++)
        for (int n = 1; n < 7; n++) {
            int sum = 0;
            for (int r = 0; r < n; r++)
                sum += route_min_share(min, r, n);
            assert_int_equal(sum, min);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_min_share),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
