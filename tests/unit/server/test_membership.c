/*
 * Membership documents and the table of nodes (server/membership.h): what
 * a document must hold, ages and expiry on a clock the test moves, rank for
 * the spread of min, calls in flight counted against a peer's load, and
 * GET /v1/cluster's list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "server/membership.h"
#include "server/regevent.h"

#define MS 1000000ull

static const char *doc_b =
    "{\"node\":\"b\",\"url\":\"http://10.0.0.2:8080\",\"slots_free\":3,\"functions\":["
    "{\"fn\":\"digits\",\"version\":1,\"instances\":2,\"idle\":1,\"busy\":1,\"startable\":1,"
    "\"free\":3,\"queued\":0}]}";

static int put(membership *m, const char *key, const char *doc, uint64_t now)
{
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    return membership_on_put(m, key, doc, strlen(doc), now, &eb);
}

static void test_parse(void **state)
{
    (void)state;
    member mb;
    rouse_errbuf eb;
    rouse_errbuf_clear(&eb);
    assert_int_equal(member_parse(doc_b, strlen(doc_b), &mb, &eb), 0);
    assert_string_equal(mb.name, "b");
    assert_int_equal(mb.slots_free, 3);
    assert_int_equal(mb.n_fns, 1);
    assert_int_equal(mb.fns[0].load.idle, 1);
    assert_true(mb.fns[0].load.known);
    member_fini(&mb);
    static const char *bad[] = {
        "", "{}", "[1]", "{\"node\":\"B\",\"url\":\"http://x\",\"slots_free\":1,\"functions\":[]}",
        "{\"node\":\"b\",\"url\":\"ftp://x\",\"slots_free\":1,\"functions\":[]}",
        "{\"node\":\"b\",\"url\":\"http://x\",\"slots_free\":-1,\"functions\":[]}",
        "{\"node\":\"b\",\"url\":\"http://x\",\"slots_free\":1,\"functions\":{}}",
        "{\"node\":\"b\",\"url\":\"http://x\",\"slots_free\":1,\"functions\":[{\"fn\":\"f\"}]}",
        "{\"node\":\"b\",\"url\":\"http://x\",\"slots_free\":1,\"functions\":[{\"fn\":\"f\","
        "\"version\":0,\"instances\":0,\"idle\":0,\"startable\":0,\"free\":0,\"queued\":0}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rouse_errbuf_clear(&eb);
        if (member_parse(bad[i], strlen(bad[i]), &mb, &eb) == 0) fail_msg("accepted: %s", bad[i]);
        assert_true(eb.msg[0] != '\0');
    }
}

static void test_table(void **state)
{
    (void)state;
    membership *m;
    rouse_errbuf eb;
    assert_int_equal(membership_create("a", &m, &eb), 0);
    const char *doc_c = "{\"node\":\"c\",\"url\":\"http://10.0.0.3:8080\",\"slots_free\":4,"
                        "\"functions\":[]}";
    const char *doc_a = "{\"node\":\"a\",\"url\":\"http://10.0.0.1:8080\",\"slots_free\":0,"
                        "\"functions\":[]}";
    assert_int_equal(put(m, "node.c", doc_c, 100 * MS), 0);
    assert_int_equal(put(m, "node.b", doc_b, 200 * MS), 0);
    assert_int_equal(put(m, "node.a", doc_a, 200 * MS), 0); /* this node: not a peer */
    assert_int_equal(put(m, "node.x", doc_b, 200 * MS), ROUSE_EFORMAT); /* key and name differ */
    member *peers;
    assert_int_equal(membership_peers(m, &peers), 2);
    assert_string_equal(peers[0].name, "b"); /* in name order */
    assert_string_equal(peers[1].name, "c");
    /* Rank among the fresh nodes: a, b, c. */
    int rank, n;
    membership_rank(m, 250 * MS, &rank, &n);
    assert_int_equal(rank, 0);
    assert_int_equal(n, 3);
    membership_rank(m, 1150 * MS, &rank, &n); /* c is older than a second */
    assert_int_equal(n, 2);
    /* Calls in flight count against the load until they end. */
    route_load l = member_load(&peers[0], "digits", 1);
    assert_int_equal(l.idle, 1);
    uint64_t gen = member_note_sent(&peers[0], "digits", 1);
    l = member_load(&peers[0], "digits", 1);
    assert_int_equal(l.idle, 0);
    assert_int_equal(l.free, 2);
    membership_note_done(m, "b", gen, "digits", 1);
    assert_int_equal(member_load(&peers[0], "digits", 1).idle, 1);
    /* Sent against an older document: the new one counts it already. */
    gen = member_note_sent(&peers[0], "digits", 1);
    assert_int_equal(put(m, "node.b", doc_b, 300 * MS), 0);
    membership_note_done(m, "b", gen, "digits", 1);
    assert_int_equal(membership_peers(m, &peers), 2);
    assert_int_equal(member_load(&peers[0], "digits", 1).idle, 1);
    assert_false(member_load(&peers[0], "other", 1).known);
    /* The list, this node among them. */
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(membership_write_json(m, 400 * MS, &b), 0);
    const char *a_at = strstr(b.data, "\"name\":\"a\""), *b_at = strstr(b.data, "\"name\":\"b\""),
               *c_at = strstr(b.data, "\"name\":\"c\"");
    assert_true(a_at && b_at && c_at && a_at < b_at && b_at < c_at);
    assert_non_null(strstr(c_at, "\"age_ms\":300,\"fresh\":true"));
    rouse_buf_fini(&b);
    /* Not heard for three seconds: forgotten. */
    membership_expire(m, 3200 * MS);
    assert_int_equal(membership_peers(m, &peers), 1);
    assert_string_equal(peers[0].name, "b");
    membership_destroy(m);
}

static void test_regevent(void **state)
{
    (void)state;
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(regevent_format("n1", "acme:digits", 42, &b), 0);
    regevent ev;
    rouse_errbuf eb;
    assert_int_equal(regevent_parse(b.data, b.len, &ev, &eb), 0);
    assert_string_equal(ev.node, "n1");
    assert_string_equal(ev.fn, "acme:digits");
    assert_int_equal(ev.seq, 42);
    rouse_buf_fini(&b);
    const char *bad = "{\"node\":\"n1\",\"fn\":\"x\",\"seq\":-1}";
    assert_int_equal(regevent_parse(bad, strlen(bad), &ev, &eb), ROUSE_EFORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_regevent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
