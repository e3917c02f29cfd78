/*
 * Function logs (src/server/fnlog.c): the ring stays within its bounds
 * with sequence numbers that only grow, since= filters by time, a pipe is
 * read into lines (a partial last line at its end too), followers are woken
 * and read Server-Sent Events in order, and forgetting a function or
 * stopping ends them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/json.h"
#include "server/fnlog.h"

static int count_lines(fnlog *l, const char *name, int64_t since, int64_t *first_seq, char *last,
                       size_t cap)
{
    rouse_buf b;
    rouse_buf_init(&b);
    assert_int_equal(fnlog_write_json(l, name, since, &b), 0);
    rouse_arena a;
    rouse_arena_init(&a, 0);
    json_value *v;
    assert_int_equal(json_parse(b.data, b.len, &a, &v, NULL), 0);
    const json_value *ls = json_get(v, "lines");
    assert_non_null(ls);
    int n = (int)ls->u.arr.n;
    if (n && first_seq) json_as_int64(json_get(ls->u.arr.items[0], "seq"), first_seq);
    if (n && last) snprintf(last, cap, "%s", json_as_string(json_get(ls->u.arr.items[n - 1], "text")));
    rouse_arena_fini(&a);
    rouse_buf_fini(&b);
    return n;
}

static void test_ring_bounds(void **state)
{
    (void)state;
    fnlog *l;
    assert_int_equal(fnlog_create(-1, &l, NULL), 0);
    char line[64];
    for (int i = 1; i <= FNLOG_MAX_LINES + 500; i++) {
        int n = snprintf(line, sizeof(line), "line %d\n", i);
        fnlog_append(l, "a", 1, 42, "output", line, (size_t)n);
    }
    fnlog_append(l, "b", 2, 43, "crash", "instance 43 ended (signal 11)", 29);
    int64_t first = 0;
    char last[64];
    assert_int_equal(count_lines(l, "a", 0, &first, last, sizeof(last)), FNLOG_MAX_LINES);
    assert_int_equal(first, 501); /* the oldest went first */
    assert_string_equal(last, "line 2500"); /* newline stripped */
    assert_int_equal(count_lines(l, "b", 0, NULL, last, sizeof(last)), 1);
    assert_string_equal(last, "instance 43 ended (signal 11)");
    assert_int_equal(count_lines(l, "nope", 0, NULL, NULL, 0), 0);
    /* since: in the future, nothing */
    assert_int_equal(count_lines(l, "a", INT64_MAX / 2, NULL, NULL, 0), 0);
    /* Bytes bound: long lines are cut to FNLOG_LINE_MAX, the ring to FNLOG_MAX_BYTES. */
    char *big = malloc(FNLOG_LINE_MAX * 2);
    memset(big, 'x', FNLOG_LINE_MAX * 2);
    for (int i = 0; i < 200; i++)
        fnlog_append(l, "c", 1, 1, "output", big, FNLOG_LINE_MAX * 2);
    int n = count_lines(l, "c", 0, NULL, NULL, 0);
    assert_true(n >= 1 && (size_t)n * FNLOG_LINE_MAX <= FNLOG_MAX_BYTES);
    free(big);
    fnlog_destroy(l);
}

static void test_pipe(void **state)
{
    (void)state;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    assert_true(ep >= 0);
    fnlog *l;
    assert_int_equal(fnlog_create(ep, &l, NULL), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(fnlog_add_pipe(l, "p", 3, 77, fds[0]), 0);
    const char *text = "first\nsecond\npartial";
    assert_int_equal(write(fds[1], text, strlen(text)), (ssize_t)strlen(text));
    close(fds[1]); /* the end: the partial line is flushed, the pipe closed */
    for (int i = 0; i < 4; i++) {
        struct epoll_event ev;
        if (epoll_wait(ep, &ev, 1, 100) != 1) break;
        fnlog_on_event(l, ev.data.ptr);
    }
    char last[64];
    assert_int_equal(count_lines(l, "p", 0, NULL, last, sizeof(last)), 3);
    assert_string_equal(last, "partial");
    struct epoll_event ev;
    assert_int_equal(epoll_wait(ep, &ev, 1, 0), 0); /* unregistered */
    fnlog_destroy(l);
    close(ep);
}

static int g_woken;
static void wake(void *user)
{
    (void)user;
    g_woken++;
}

static void test_follow(void **state)
{
    (void)state;
    fnlog *l;
    assert_int_equal(fnlog_create(-1, &l, NULL), 0);
    fnlog_append(l, "f", 1, 5, "output", "before", 6);
    fnlog_follower *f;
    g_woken = 0;
    assert_int_equal(fnlog_follow(l, "f", 0, wake, NULL, &f), 0);
    char buf[4096];
    bool ended;
    size_t n = fnlog_follower_read(f, buf, sizeof(buf) - 1, &ended);
    buf[n] = '\0';
    assert_false(ended);
    assert_non_null(strstr(buf, "id: 1\ndata: {\"seq\":1,"));
    assert_non_null(strstr(buf, "\"text\":\"before\"}\n\n"));
    assert_int_equal(fnlog_follower_read(f, buf, sizeof(buf), &ended), 0);
    fnlog_append(l, "other", 1, 5, "output", "x", 1);
    assert_int_equal(g_woken, 0); /* not its function */
    fnlog_append(l, "f", 1, 5, "crash", "gone", 4);
    assert_int_equal(g_woken, 1);
    /* Small reads take an event in pieces, in order. */
    char whole[4096] = "";
    while ((n = fnlog_follower_read(f, buf, 7, &ended)) > 0)
        strncat(whole, buf, n);
    assert_non_null(strstr(whole, "id: 2\n"));
    assert_non_null(strstr(whole, "\"stream\":\"crash\",\"text\":\"gone\"}\n\n"));
    fnlog_forget(l, "f");
    assert_int_equal(g_woken, 2);
    assert_int_equal(fnlog_follower_read(f, buf, sizeof(buf), &ended), 0);
    assert_true(ended);
    fnlog_unfollow(f);
    /* Stopping ends every follower. */
    assert_int_equal(fnlog_follow(l, "g", 0, wake, NULL, &f), 0);
    fnlog_end_all(l);
    assert_int_equal(fnlog_follower_read(f, buf, sizeof(buf), &ended), 0);
    assert_true(ended);
    fnlog_unfollow(f);
    fnlog_destroy(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_bounds),
        cmocka_unit_test(test_pipe),
        cmocka_unit_test(test_follow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
