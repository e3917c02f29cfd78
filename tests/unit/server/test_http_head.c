/*
 * The request-head check of new connections, from a table of heads and the
 * verdict each must get; the framing of a connection's stream (requests
 * after requests, Content-Length and chunked bodies), from a table of
 * streams fed whole and in every split into two pieces and byte by byte.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_head.h"

static void test_table(void **state)
{
    (void)state;
    static const struct {
        const char *head;
        http_head_verdict verdict;
        int status;
        const char *needle;
    } cases[] = {
        {"GET /v2/health/live HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_HEAD_OK, 0, NULL},
        {"GET / HTTP/1.0\n\n", HTTP_HEAD_OK, 0, NULL},
        {"\r\nGET / HTTP/1.1\r\n\r\n", HTTP_HEAD_OK, 0, NULL},
        {"POST /v1/blobs HTTP/1.1\r\nContent-Length: 12\r\n\r\nbody", HTTP_HEAD_OK, 0, NULL},
        {"POST /v1/blobs HTTP/1.1\r\ncontent-length:  7 \r\nContent-Length: 7\r\n\r\n",
         HTTP_HEAD_OK, 0, NULL},
        {"POST /x HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", HTTP_HEAD_OK, 0, NULL},
        {"GET /v1/functions?q=%00 HTTP/1.1\r\n\r\n", HTTP_HEAD_OK, 0, NULL},
        {"GET / HTTP/1.1\r\nHost: a\r\n", HTTP_HEAD_MORE, 0, NULL},
        {"GET / HT", HTTP_HEAD_MORE, 0, NULL},
        {"", HTTP_HEAD_MORE, 0, NULL},
        {"HELLO\r\n\r\n", HTTP_HEAD_REJECT, 400, "request line"},
        {"\x01\x02 / HTTP/1.1\r\n\r\n", HTTP_HEAD_REJECT, 400, "request line"},
        {"GET  HTTP/1.1\r\n\r\n", HTTP_HEAD_REJECT, 400, "request line"},
        {"GET / FTP/1.0\r\n\r\n", HTTP_HEAD_REJECT, 400, "request line"},
        {"GET / HTTP/2.0\r\n\r\n", HTTP_HEAD_REJECT, 505, "HTTP/1.1"},
        {"PUT /v1/functions/a%00b HTTP/1.1\r\n\r\n", HTTP_HEAD_REJECT, 400, "%00"},
        {"PUT /x HTTP/1.1\r\nContent-Length: abc\r\n\r\n", HTTP_HEAD_REJECT, 400, "Content-Length"},
        {"PUT /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HTTP_HEAD_REJECT, 400, "Content-Length"},
        {"PUT /x HTTP/1.1\r\nContent-Length:\r\n\r\n", HTTP_HEAD_REJECT, 400, "Content-Length"},
        {"PUT /x HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", HTTP_HEAD_REJECT, 400,
         "Content-Length"},
        {"PUT /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", HTTP_HEAD_REJECT, 400,
         "Content-Length"},
        {"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_HEAD_REJECT, 501,
         "Transfer-Encoding"},
        {"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HTTP_HEAD_REJECT, 501,
         "Transfer-Encoding"},
        {"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
         HTTP_HEAD_REJECT, 400, "together"},
        {"GET / HTTP/1.1\r\nno colon here\r\n\r\n", HTTP_HEAD_REJECT, 400, "header field"},
        {"GET / HTTP/1.1\r\n: empty name\r\n\r\n", HTTP_HEAD_REJECT, 400, "header field"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http_head_check c;
        http_head_inspect(cases[i].head, strlen(cases[i].head), &c);
        if (c.verdict != cases[i].verdict || c.status != cases[i].status ||
            (cases[i].needle && !strstr(c.msg, cases[i].needle)))
            fail_msg("case %zu: verdict %d status %d msg '%s'", i, c.verdict, c.status, c.msg);
    }
}

/* A head that never ends is cut at HTTP_HEAD_MAX: 431. */
static void test_too_long(void **state)
{
    (void)state;
    size_t n = HTTP_HEAD_MAX + 1;
    char *buf = malloc(n);
    assert_non_null(buf);
    memcpy(buf, "GET / HTTP/1.1\r\n", 16);
    memset(buf + 16, 'a', n - 16);
    http_head_check c;
    http_head_inspect(buf, n, &c);
    assert_int_equal(c.verdict, HTTP_HEAD_REJECT);
    assert_int_equal(c.status, 431);
    http_head_inspect(buf, HTTP_HEAD_MAX, &c);
    assert_int_equal(c.verdict, HTTP_HEAD_MORE);
    free(buf);
}

/* A request line past HTTP_REQUEST_LINE_MAX is 414 (also before its end
 * arrived); more than HTTP_HEADER_FIELDS_MAX fields are 431. */
static void test_line_and_fields(void **state)
{
    (void)state;
    size_t n = HTTP_REQUEST_LINE_MAX + 64;
    char *buf = malloc(n + 64);
    assert_non_null(buf);
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', n - 5);
    http_head_check c;
    http_head_inspect(buf, n, &c);
    assert_int_equal(c.verdict, HTTP_HEAD_REJECT);
    assert_int_equal(c.status, 414);
    assert_non_null(strstr(c.msg, "request line"));
    /* Exactly at the limit, complete: accepted. */
    size_t at = HTTP_REQUEST_LINE_MAX - 9; /* " HTTP/1.1" */
    memcpy(buf + at, " HTTP/1.1\r\n\r\n", 13);
    http_head_inspect(buf, at + 13, &c);
    assert_int_equal(c.verdict, HTTP_HEAD_OK);
    free(buf);

    char head[HTTP_HEAD_MAX];
    for (int fields = HTTP_HEADER_FIELDS_MAX; fields <= HTTP_HEADER_FIELDS_MAX + 1; fields++) {
        size_t len = (size_t)snprintf(head, sizeof(head), "GET / HTTP/1.1\r\n");
        for (int i = 0; i < fields; i++)
            len += (size_t)snprintf(head + len, sizeof(head) - len, "X-%d: v\r\n", i);
        len += (size_t)snprintf(head + len, sizeof(head) - len, "\r\n");
        http_head_inspect(head, len, &c);
        if (fields <= HTTP_HEADER_FIELDS_MAX) {
            assert_int_equal(c.verdict, HTTP_HEAD_OK);
        } else {
            assert_int_equal(c.verdict, HTTP_HEAD_REJECT);
            assert_int_equal(c.status, 431);
            assert_non_null(strstr(c.msg, "header fields"));
        }
    }
}

/* An accepted head says how many bytes it and its body take on the wire,
 * so that the check of a later request knows where that request starts. */
static void test_wire_length(void **state)
{
    (void)state;
    static const struct {
        const char *head;
        size_t head_len;
        unsigned long long body_len;
        int chunked;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\nGET", 18, 0, 0},
        {"\r\nGET / HTTP/1.1\r\n\r\n", 20, 0, 0},
        {"GET / HTTP/1.0\n\n", 16, 0, 0},
        {"POST /x HTTP/1.1\r\nContent-Length: 12\r\n\r\nbody", 40, 12, 0},
        {"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n", 48, 0, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http_head_check c;
        http_head_inspect(cases[i].head, strlen(cases[i].head), &c);
        if (c.verdict != HTTP_HEAD_OK || c.head_len != cases[i].head_len ||
            c.body_len != cases[i].body_len || c.chunked != cases[i].chunked)
            fail_msg("case %zu: verdict %d head %zu body %llu chunked %d", i, c.verdict, c.head_len,
                     c.body_len, c.chunked);
    }
}

static void test_methods(void **state)
{
    (void)state;
    assert_true(http_method_valid("GET"));
    assert_true(http_method_valid("M-SEARCH"));
    assert_false(http_method_valid(""));
    assert_false(http_method_valid("\x01\x02"));
    assert_false(http_method_valid("GE T"));
    assert_false(http_method_valid("AVERYLONGMETHODNAME"));
}

/* Feeds s through a fresh framing in pieces of at most `piece` bytes (the
 * way serve does: unaccepted bytes are given again with the next ones);
 * the bytes accepted in all. */
static size_t frame_feed(http_frame *f, const char *s, size_t len, size_t piece)
{
    memset(f, 0, sizeof(*f));
    size_t acc = 0, have = 0;
    while (have < len && f->state != HTTP_FRAME_REJECTED) {
        have = have + piece < len ? have + piece : len;
        acc += http_frame_scan(f, s + acc, have - acc);
    }
    return acc;
}

static void test_frame(void **state)
{
    (void)state;
    static const struct {
        const char *stream;
        size_t accepted;         /* bytes accepted (the whole stream: strlen) */
        unsigned long long reqs; /* heads accepted */
        http_frame_state end;
        int status;
        const char *needle;
        int cut_body;
    } cases[] = {
        /* Pipelined requests, the last one incomplete. */
        {"GET / HTTP/1.1\r\n\r\nGET /a HTTP/1.1\r\n\r\nGET /b HT", 37, 2, HTTP_FRAME_HEAD, 0, NULL,
         0},
        /* A Content-Length body, the next head inside it is body. */
        {"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nHELLOGET / HTTP/1.1\r\n\r\n", 0, 2,
         HTTP_FRAME_HEAD, 0, NULL, 0},
        /* Chunked, with a trailer, then another request. */
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nA\r\n0123456789\r\n"
         "0\r\nX-Sum: 1\r\n\r\nGET / HTTP/1.1\r\n\r\n",
         0, 2, HTTP_FRAME_HEAD, 0, NULL, 0},
        /* Bare LFs, as in heads. */
        {"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n1\nx\n0\n\n", 0, 1, HTTP_FRAME_HEAD, 0,
         NULL, 0},
        /* Refusals: the bytes before the refused request are accepted. */
        {"GET / HTTP/1.1\r\n\r\nHELLO\r\n\r\n", 18, 1, HTTP_FRAME_REJECTED, 400, "request line", 0},
        {"GET / HTTP/1.1\r\n\r\nPUT / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 18, 1,
         HTTP_FRAME_REJECTED, 400, "Content-Length", 0},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
         "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
         52, 1, HTTP_FRAME_REJECTED, 501, "Transfer-Encoding", 0},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 47, 1, HTTP_FRAME_REJECTED,
         400, "chunk size", 1},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n", 47, 1,
         HTTP_FRAME_REJECTED, 400, "extensions", 1},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", 47, 1,
         HTTP_FRAME_REJECTED, 400, "chunk size", 1},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 53, 1,
         HTTP_FRAME_REJECTED, 400, "CRLF", 1},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", 50, 1,
         HTTP_FRAME_REJECTED, 400, "trailer", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *s = cases[i].stream;
        size_t len = strlen(s), want = cases[i].accepted ? cases[i].accepted : len;
        for (size_t piece = 1; piece <= len; piece++) {
            http_frame f;
            size_t acc = frame_feed(&f, s, len, piece);
            if (acc != want || f.requests != cases[i].reqs || f.state != cases[i].end)
                fail_msg("stream %zu in pieces of %zu: accepted %zu of %zu (want %zu), %llu "
                         "requests (want %llu), state %d (want %d)",
                         i, piece, acc, len, want, f.requests, cases[i].reqs, (int)f.state,
                         (int)cases[i].end);
            if (cases[i].end == HTTP_FRAME_REJECTED &&
                (f.status != cases[i].status || !strstr(f.msg, cases[i].needle) ||
                 f.cut_body != cases[i].cut_body))
                fail_msg("stream %zu in pieces of %zu: refused %d '%s' (cut body %d)", i, piece,
                         f.status, f.msg, f.cut_body);
        }
    }
}

/* A chunk line or trailer past its bound is refused, not waited for. */
static void test_frame_bounds(void **state)
{
    (void)state;
    char s[4096];
    int n = snprintf(s, sizeof(s), "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    memset(s + n, '0', sizeof(s) - (size_t)n);
    http_frame f;
    frame_feed(&f, s, sizeof(s), sizeof(s));
    assert_int_equal(f.state, HTTP_FRAME_REJECTED);
    assert_int_equal(f.status, 400);
    /* The largest body a head may announce (19 digits) is counted. */
    const char *big = "POST / HTTP/1.1\r\nContent-Length: 9999999999999999999\r\n\r\nabc";
    frame_feed(&f, big, strlen(big), strlen(big));
    assert_int_equal(f.state, HTTP_FRAME_BODY);
    assert_true(f.remain == 9999999999999999999ull - 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_wire_length),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_line_and_fields),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_frame),
        cmocka_unit_test(test_frame_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
