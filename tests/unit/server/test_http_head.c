/*
 * The request-head check of new connections, from a table of heads and the
 * verdict each must get.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_wire_length),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_line_and_fields),
        cmocka_unit_test(test_methods),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
